"""One control group per sandbox call (survey §4, code generation): a memory limit that counts all memory, the
OOM counter the ``memory`` status comes from, the CPU time the ``timeout`` status can rely on, and a list of
every process the call ever started.

``CallCgroup.create(memory_mb)`` makes a child of the caller's own memory cgroup (and, on cgroup v1, of its
``cpuacct`` cgroup), named ``rlgen-sandbox-<pid>-<random>``, with the limit at ``memory_mb``. The kernel charges
it with every page its processes use: anonymous memory, shared memory (SysV, ``memfd``), page cache and tmpfs
pages, kernel memory such as page tables and pipe buffers. Past the limit it reclaims what it can and then
kills a process of the group (``oom_kill`` counts it); the caller's own cgroup is never charged for them.
The launcher (``launcher_argv``) is a ``/bin/sh`` that writes itself into the groups and then ``exec``s
bubblewrap, so the sandbox's first process is already inside. ``remove()`` kills whatever is left in the
groups and removes them. Where no group can be made (no writable memory controller: an unprivileged caller
on cgroup v1, an undelegated cgroup v2), ``create`` raises ``CgroupUnavailable`` saying why.
"""
from __future__ import annotations

import os
import signal
import time

__all__ = ["CallCgroup", "CgroupUnavailable", "cgroup_layout"]

_LAUNCHER = 'while [ "$1" != -- ]; do echo 0 > "$1" || exit 125; shift; done; shift; exec "$@"'
_LAYOUT: dict = {}


class CgroupUnavailable(RuntimeError):
    """No per-call cgroup can be made here; the message says why."""


def _mounts() -> list:
    """[(mount point, fs type, super options)] of the cgroup filesystems."""
    found = []
    try:
        with open("/proc/self/mountinfo") as handle:
            for line in handle:
                left, right = line.split(" - ", 1)
                fstype, _source, options = right.split()[:3]
                if fstype in ("cgroup", "cgroup2"):
                    found.append((left.split()[4], fstype, set(options.split(","))))
    except (OSError, ValueError):
        pass
    return found


def cgroup_layout() -> tuple:
    """("v1", memory dir, cpuacct dir or None) or ("v2", dir, None) of the caller's own groups; cached.
    Raises CgroupUnavailable when there is no memory controller to use."""
    if "layout" not in _LAYOUT:
        _LAYOUT["layout"] = _find_layout()
    layout = _LAYOUT["layout"]
    if isinstance(layout, str):
        raise CgroupUnavailable(layout)
    return layout


def _find_layout():
    try:
        with open("/proc/self/cgroup") as handle:
            own = [line.rstrip("\n").split(":", 2) for line in handle if line.count(":") >= 2]
    except OSError as exc:
        return f"no /proc/self/cgroup ({exc.strerror})"
    mounts = _mounts()
    v1 = {}
    for _hier, controllers, path in own:
        for name in controllers.split(","):
            for point, fstype, options in mounts:
                if fstype == "cgroup" and name in options and name in ("memory", "cpuacct"):
                    v1.setdefault(name, os.path.join(point, path.lstrip("/")))
    if "memory" in v1:
        return ("v1", v1["memory"], v1.get("cpuacct"))
    unified = [os.path.join(p, path.lstrip("/")) for _h, c, path in own if c == ""
               for p, fstype, _o in mounts if fstype == "cgroup2"]
    for path in unified:
        try:
            with open(os.path.join(path, "cgroup.controllers")) as handle:
                if "memory" in handle.read().split():
                    return ("v2", path, None)
        except OSError:
            continue
    return "no memory cgroup controller is mounted for this process (cgroup v1 'memory' or v2 with 'memory')"


class CallCgroup:
    """The groups of one call. ``procs_files``: where the launcher writes itself."""

    def __init__(self, version: str, dirs: list):
        self.version, self.dirs = version, dirs
        self.memory_dir, self.cpu_dir = dirs[0], (dirs[1] if len(dirs) > 1 else None)
        self.procs_files = [os.path.join(d, "cgroup.procs") for d in dirs]

    @classmethod
    def create(cls, memory_mb: int) -> "CallCgroup":
        version, memory_parent, cpu_parent = cgroup_layout()
        name = f"rlgen-sandbox-{os.getpid()}-{os.urandom(4).hex()}"
        made = []
        try:
            if version == "v2":
                _enable_memory_below(memory_parent)
            for parent in (memory_parent, cpu_parent):
                if parent is not None:
                    os.mkdir(os.path.join(parent, name), 0o700)
                    made.append(os.path.join(parent, name))
            group = cls(version, made)
            limit = str(memory_mb << 20)
            if version == "v1":
                group._write("memory.limit_in_bytes", limit)
                group._write("memory.swappiness", "0", required=False)
                try:  # no swap for the group either, where swap accounting exists
                    group._write("memory.memsw.limit_in_bytes", limit)
                except OSError:
                    pass
            else:
                group._write("memory.max", limit)
                group._write("memory.swap.max", "0", required=False)  # (no memory.oom.group: as on v1, the
                # OOM killer takes one process, so a harness survives a candidate that blew the limit)
            return group
        except OSError as exc:
            for path in reversed(made):
                try:
                    os.rmdir(path)
                except OSError:
                    pass
            raise CgroupUnavailable(f"cannot make a memory cgroup below {memory_parent}: {exc.strerror}") from None

    def _write(self, name: str, value: str, required: bool = True) -> None:
        try:
            with open(os.path.join(self.memory_dir, name), "w") as handle:
                handle.write(value)
        except OSError:
            if required:
                raise

    def _read(self, directory: str | None, name: str) -> str:
        if directory is None:
            return ""
        try:
            with open(os.path.join(directory, name)) as handle:
                return handle.read()
        except OSError:
            return ""

    def launcher_argv(self) -> list:
        """The command line prefix that moves the sandbox's first process into the groups before bwrap."""
        return ["/bin/sh", "-c", _LAUNCHER, "sh"] + self.procs_files + ["--"]

    def oom_kills(self) -> int:
        """How many processes the kernel killed in this group for memory (v1 memory.oom_control, v2 events)."""
        text = self._read(self.memory_dir, "memory.oom_control" if self.version == "v1" else "memory.events")
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) of every process the group ever held, or None when not accounted."""
        if self.version == "v1":
            text = self._read(self.cpu_dir, "cpuacct.usage").strip()
            return int(text) / 1e9 if text else None
        for line in self._read(self.memory_dir, "cpu.stat").splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) / 1e6
        return None

    def peak_bytes(self) -> int | None:
        text = self._read(self.memory_dir, "memory.max_usage_in_bytes" if self.version == "v1" else "memory.peak")
        return int(text) if text.strip().isdigit() else None

    def pids(self) -> list:
        return sorted({int(p) for d in self.dirs for p in self._read(d, "cgroup.procs").split() if p.isdigit()})

    def remove(self, limit_s: float = 5.0) -> bool:
        """Kill every process still in the groups, then remove them; True when nothing was left running."""
        left = self.pids()
        end = time.monotonic() + limit_s
        while True:
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            gone = True
            for path in reversed(self.dirs):
                try:
                    if os.path.isdir(path):
                        os.rmdir(path)
                except OSError:
                    gone = False
            if gone or time.monotonic() > end:
                return not left
            time.sleep(0.002)


def _enable_memory_below(parent: str) -> None:
    """cgroup v2: the memory controller must be on in the parent's subtree_control (fails where the parent
    holds processes and is not the root: the "no internal processes" rule)."""
    with open(os.path.join(parent, "cgroup.subtree_control")) as handle:
        if "memory" in handle.read().split():
            return
    with open(os.path.join(parent, "cgroup.subtree_control"), "w") as handle:
        handle.write("+memory")
