"""The sandbox's seccomp filter (survey §4, code generation), written as classic BPF without libseccomp.

``build_filter()`` returns the raw ``struct sock_filter`` array that bubblewrap's ``--seccomp FD`` loads just
before it starts the bootstrap: a fixed list of system calls fails with ``EPERM`` (``clone3`` with ``ENOSYS``,
so the C library falls back to ``clone``, whose flags a filter can read), and a call made through another
architecture's entry point (i386's ``int 0x80`` on x86-64) kills the process. What it denies and why:

- new namespaces: ``unshare`` and ``setns`` always, ``clone`` with any namespace flag (a user namespace would
  hand the program every capability inside it: raw and netlink sockets, mounts, a tmpfs of its own);
- kernel keyrings: ``add_key``, ``request_key`` and ``keyctl`` (the supervisor has already given the program a
  fresh, empty session keyring);
- mounting and the new mount API, ``pivot_root``, ``chroot``; ``ptrace`` and its cousins
  (``process_vm_readv``/``writev``, ``kcmp``, ``pidfd_getfd``); ``bpf``, ``perf_event_open``, ``userfaultfd``,
  ``io_uring_*``, ``fanotify_init``, file handles, modules, kexec, swap, reboot, accounting, ``syslog``;
- sockets other than ``AF_UNIX``, ``AF_INET`` and ``AF_INET6`` (no netlink, packet or other families);
- with ``deny_shared_memory=True`` (when no memory cgroup counts them): SysV shared memory and ``memfd_create``.

Everything else is allowed: a filter cannot make an allowed call's kernel code bug-free.
"""
from __future__ import annotations

import errno
import platform
import struct

__all__ = ["build_filter", "filter_arch", "DENIED", "SHARED_MEMORY", "NAMESPACE_FLAGS"]

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6] (little-endian halves)
_NR, _ARCH = 0, 4
_ARG_LO = [16 + 8 * i for i in range(6)]
_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06   # BPF_LD|W|ABS, BPF_JMP|JEQ|K, ..., BPF_RET|K
RET_KILL_PROCESS, RET_ALLOW, _RET_ERRNO = 0x80000000, 0x7FFF0000, 0x00050000
X32_SYSCALL_BIT = 0x40000000
ALLOWED_SOCKET_FAMILIES = (1, 2, 10)  # AF_UNIX, AF_INET, AF_INET6
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (CLONE_NEWTIME's bit is clone()'s exit signal)
NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

# (audit arch, {name: number}) per machine; numbers from the kernel's unistd headers
_ARCHES = {
    "x86_64": (0xC000003E, {
        "clone": 56, "clone3": 435, "unshare": 272, "setns": 308, "keyctl": 250, "add_key": 248,
        "request_key": 249, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "ptrace": 101,
        "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "pidfd_getfd": 438, "bpf": 321,
        "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
        "fsmount": 432, "fspick": 433, "mount_setattr": 442, "kexec_load": 246, "kexec_file_load": 320,
        "init_module": 175, "finit_module": 313, "delete_module": 176, "swapon": 167, "swapoff": 168,
        "reboot": 169, "acct": 163, "quotactl": 179, "syslog": 103, "fanotify_init": 300,
        "name_to_handle_at": 303, "open_by_handle_at": 304, "modify_ldt": 154, "socket": 41, "socketpair": 53,
        "shmget": 29, "shmat": 30, "shmctl": 31, "shmdt": 67, "memfd_create": 319}),
    "aarch64": (0xC00000B7, {
        "clone": 220, "clone3": 435, "unshare": 97, "setns": 268, "keyctl": 219, "add_key": 217,
        "request_key": 218, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "ptrace": 117,
        "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272, "pidfd_getfd": 438, "bpf": 280,
        "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
        "fsmount": 432, "fspick": 433, "mount_setattr": 442, "kexec_load": 104, "kexec_file_load": 294,
        "init_module": 105, "finit_module": 273, "delete_module": 106, "swapon": 224, "swapoff": 225,
        "reboot": 142, "acct": 89, "quotactl": 60, "syslog": 116, "fanotify_init": 262,
        "name_to_handle_at": 264, "open_by_handle_at": 265, "socket": 198, "socketpair": 199,
        "shmget": 194, "shmat": 196, "shmctl": 195, "shmdt": 197, "memfd_create": 279}),
}
_SPECIAL = ("clone", "clone3", "socket", "socketpair")
SHARED_MEMORY = ("shmget", "shmat", "shmctl", "shmdt", "memfd_create")
DENIED = tuple(n for n in _ARCHES["x86_64"][1] if n not in _SPECIAL + SHARED_MEMORY)  # always EPERM


def filter_arch(machine: str | None = None) -> str | None:
    """The filter's name for this machine ("x86_64", "aarch64"), or None where no filter is written."""
    machine = (machine or platform.machine()).lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine) if machine in (
        "x86_64", "amd64", "aarch64", "arm64") else None


def _assemble(program: list) -> bytes:
    """Each item is (code, jt, jf, k) with jt/jf either an int or a label; a str item defines a label."""
    labels, flat = {}, []
    for item in program:
        if isinstance(item, str):
            labels[item] = len(flat)
        else:
            flat.append(item)
    out = []
    for i, (code, jt, jf, k) in enumerate(flat):
        jt, jf = (labels[j] - i - 1 if isinstance(j, str) else j for j in (jt, jf))
        if not (0 <= jt < 256 and 0 <= jf < 256):
            raise ValueError("seccomp jump out of range")
        out.append(struct.pack("=HBBI", code, jt, jf, k))
    return b"".join(out)


def build_filter(arch: str | None = None, deny_shared_memory: bool = False) -> bytes:
    """The BPF program (bytes of ``struct sock_filter``) for ``arch`` (default: this machine's)."""
    arch = filter_arch(arch)
    if arch is None:
        raise ValueError(f"no seccomp filter for this architecture ({platform.machine()})")
    audit_arch, nr = _ARCHES[arch]
    eperm, enosys = _RET_ERRNO | errno.EPERM, _RET_ERRNO | errno.ENOSYS
    p = [(_LD_ABS, 0, 0, _ARCH), (_JEQ, 1, 0, audit_arch), (_RET, 0, 0, RET_KILL_PROCESS),
         (_LD_ABS, 0, 0, _NR)]
    if arch == "x86_64":  # the x32 ABI shares x86-64's audit arch: its numbers carry bit 30
        p += [(_JGE, "deny", 0, X32_SYSCALL_BIT)]
    denied = list(DENIED) + (list(SHARED_MEMORY) if deny_shared_memory else [])
    for name in denied:
        if name in nr:
            p += [(_JEQ, "deny", 0, nr[name])]
    p += [(_JEQ, "enosys", 0, nr["clone3"]),   # its flags sit in memory a filter cannot read
          (_JEQ, 0, "not_clone", nr["clone"]),
          (_LD_ABS, 0, 0, _ARG_LO[0]), (_JSET, "deny", "allow", NAMESPACE_FLAGS),
          "not_clone",
          (_JEQ, "socket", 0, nr["socket"]), (_JEQ, "socket", "allow", nr["socketpair"]),
          "socket", (_LD_ABS, 0, 0, _ARG_LO[0])]
    p += [(_JEQ, "allow", 0, family) for family in ALLOWED_SOCKET_FAMILIES]
    p += ["deny", (_RET, 0, 0, eperm), "enosys", (_RET, 0, 0, enosys), "allow", (_RET, 0, 0, RET_ALLOW)]
    return _assemble(p)
