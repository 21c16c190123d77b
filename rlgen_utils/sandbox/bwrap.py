"""bubblewrap's command line for the sandbox (survey §4, code generation), and the three ways to start it.

- ``"userns"``: a caller that is not root runs bubblewrap as itself with ``--unshare-user --disable-userns``.
- ``"userns-fresh"``: a root caller runs bubblewrap *unprivileged*, as the call's fresh uid (``setpriv``
  switches to it between the launcher and bubblewrap), with ``--unshare-user --disable-userns``. It needs the
  interpreter's files to be reachable by that uid (not under a 0700 ``/root``).
- ``"root"``: otherwise a root caller runs bubblewrap privileged, without a user namespace, keeping only what
  the bootstrap needs to drop to the fresh uid (it then has no capability left); the seccomp filter, not a
  user namespace, then denies nested namespaces.
"""
from __future__ import annotations

import functools
import os
import shutil
import sys

__all__ = ["bwrap_argv", "interpreter", "candidate_modes", "ancestors"]

ENV = {"HOME": "/tmp", "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin", "TMPDIR": "/tmp"}
CWD = "/tmp"  # bubblewrap also sets PWD to it


@functools.lru_cache(maxsize=1)
def interpreter() -> tuple[str, list[str]]:
    """The caller's interpreter binary (venv symlinks resolved) and the directories it needs."""
    exe = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    roots = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix), os.path.dirname(exe)}
    keep = sorted(r for r in roots if not any(r != o and r.startswith(o + os.sep) for o in roots))
    return exe, tuple(keep)


def candidate_modes() -> list:
    """The ways to try on this machine, preferred first, each with the setpriv path where one is needed."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        return [("userns", None)]
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")
    return ([("userns-fresh", setpriv)] if setpriv else []) + [("root", None)]


def ancestors(path: str) -> list:
    """'/a/b/c' -> ['/a', '/a/b'] (outermost first)."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def bwrap_argv(bwrap: str, roots: list, mode: str, tmpfs_mb: int, fds: dict) -> list:
    """bwrap's command line up to (not including) the program: namespaces, the filesystem view, and the
    descriptors in ``fds`` (``info``: where bwrap writes the namespace's init pid; ``seccomp``: the filter)."""
    argv = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--hostname", "sandbox", "--clearenv"]
    for key, value in ENV.items():
        argv += ["--setenv", key, value]
    if mode == "root":  # privileged bwrap: the bootstrap needs these two to drop to its uid, then has none
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user", "--disable-userns"]
    if "info" in fds:
        argv += ["--info-fd", str(fds["info"])]
    if "seccomp" in fds:
        argv += ["--seccomp", str(fds["seccomp"])]
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    made = {"/", "/usr"}
    for root in roots:  # parents made traversable (bwrap would copy a 0700 /root) before the read-only bind
        parents = [p for p in ancestors(root) if p not in made and not p.startswith("/usr/")]
        for parent in parents:
            argv += ["--perms", "0755", "--dir", parent]
        made.update(parents)
        argv += ["--ro-bind", root, root]
    return argv + ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev", "--perms", "1777", "--size", str(tmpfs_mb << 20),
                   "--tmpfs", "/tmp", "--chdir", "/tmp", "--remount-ro", "/"]
