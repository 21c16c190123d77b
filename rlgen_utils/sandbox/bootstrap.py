"""What runs first inside the sandbox, and what its start-up probe confirms (survey §4, code generation).

``BOOTSTRAP`` is the trusted first code of every call: it reads the program from an inherited descriptor,
closes every other one except the report pipe, sets the rlimits (soft = hard, so the program cannot raise
them), drops to the call's fresh uid where bubblewrap ran as root, and then *probes*: it reads back its uid,
capabilities, ``no_new_privs``, seccomp mode, namespaces, network interfaces, rlimits, environment, mounts and
the keys it can see (the supervisor spawned it with a fresh, empty session keyring). It writes that report to
the supervisor, closes the pipe and only then runs the program, so nothing the program does can change the
report. Where a required protection is not in force it exits (code 125) without running the program.
``protections(report, expected)`` turns the report into the ``isolation`` list (what the probe confirmed) and
the ``missing`` list (everything else).
"""
from __future__ import annotations

import ast

__all__ = ["BOOTSTRAP", "REFUSED", "parse_report", "protections"]

REFUSED = 125
# argv: src_fd report_fd as cpu_soft cpu_hard nproc fsize nofile uid strict (-1: skip; strict 1: refuse to run the
# program with capabilities, without no_new_privs or without the uid; 2: also without the seccomp filter)
BOOTSTRAP = """\
import os, resource, sys
_a = [int(x) for x in sys.argv[1:11]]
with open(_a[0], "rb") as _f:
    _src = _f.read()
os.closerange(3, _a[1])
os.closerange(_a[1] + 1, 1 << 20)
for _k, _v in ((resource.RLIMIT_AS, _a[2]), (resource.RLIMIT_NPROC, _a[5]), (resource.RLIMIT_FSIZE, _a[6]),
               (resource.RLIMIT_NOFILE, _a[7]), (resource.RLIMIT_CORE, 0)):
    if _v >= 0:
        resource.setrlimit(_k, (_v, _v))
resource.setrlimit(resource.RLIMIT_CPU, (_a[3], _a[4]))
if _a[8] >= 0:
    os.setgroups([])
    os.setresgid(_a[8], _a[8], _a[8])
    os.setresuid(_a[8], _a[8], _a[8])
_p = {}
def _r(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
_st = dict(l.split(":", 1) for l in _r("/proc/self/status").splitlines() if ":" in l)
_p["uid"] = os.getresuid() + os.getresgid() + tuple(os.getgroups())
_p["caps"] = [int(_st.get(k, "0").strip(), 16) for k in ("CapEff", "CapPrm", "CapInh", "CapAmb")]
_p["nnp"], _p["seccomp"] = _st.get("NoNewPrivs", "").strip(), _st.get("Seccomp", "").strip()
_p["filters"] = _st.get("Seccomp_filters", "").strip()
_p["ns"] = {n: os.readlink("/proc/self/ns/" + n) for n in ("pid", "net", "ipc", "uts", "mnt", "user", "cgroup")
            if os.path.exists("/proc/self/ns/" + n)}
_p["net"] = [l.split(":")[0].strip() for l in _r("/proc/net/dev").splitlines()[2:]]
_p["rlimits"] = {n: resource.getrlimit(getattr(resource, "RLIMIT_" + n)) for n in
                 ("AS", "CPU", "NPROC", "FSIZE", "NOFILE", "CORE")}
_p["env"] = sorted(os.environ)
_p["mounts"] = sorted({(l.split()[4], l.split(" - ")[1].split()[0],
                        os.path.isdir(l.split()[4]) and os.access(l.split()[4], os.W_OK))
                       for l in _r("/proc/self/mountinfo").splitlines()})
_p["keys"] = [l.split(None, 7)[0] + " " + l.split(None, 7)[-1] for l in _r("/proc/keys").splitlines()]
_p["cwd"] = os.getcwd()
os.write(_a[1], repr(_p).encode())
os.close(_a[1])
if _a[9] and (any(_p["caps"][:2]) or _p["nnp"] != "1" or (_a[8] >= 0 and _p["uid"][:3] != (_a[8],) * 3) or
              (_a[9] == 2 and (_p["seccomp"] != "2" or _p["filters"] != "1"))):
    sys.stderr.write("sandbox bootstrap: a required protection is not in force; the program did not run\\n")
    os._exit(125)
sys.argv = ["main.py"]
_code = compile(_src, "main.py", "exec")
del _a, _k, _v, _f, _src, _p, _st, _r
exec(_code, {"__name__": "__main__", "__builtins__": __builtins__, "__file__": "main.py"})
"""


def parse_report(raw: bytes) -> dict | None:
    """The probe's report (a Python literal written before the program's first line), or None."""
    try:
        report = ast.literal_eval(raw.decode("utf-8", errors="replace"))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return report if isinstance(report, dict) else None


def protections(report: dict | None, expected: dict) -> tuple[list, list]:
    """(isolation: what the probe and the supervisor confirmed, missing: every other protection).

    ``expected`` holds what the supervisor asked for and knows: backend, host_ns, uid, env, limits, the
    cgroup (or why not), the seccomp filter (or why not), workdir, output limit and deadline."""
    e, r = expected, report or {}
    isolation, missing = [], []

    def check(ok: bool, good: str, bad: str) -> None:
        (isolation if ok else missing).append(good if ok else bad)

    if report is None:
        missing.append("start-up probe (no report: the sandbox did not start, or the deadline came first); "
                       "nothing below is confirmed")
    bwrap = e["backend"] == "bwrap"
    ns = r.get("ns", {})
    if bwrap:
        fresh = [n for n in ("pid", "net", "ipc", "uts", "mnt", "user", "cgroup")
                 if n in ns and ns[n] != e["host_ns"].get(n)]
        check({"pid", "net", "ipc", "uts", "mnt"} <= set(fresh), "own " + "+".join(fresh) + " namespaces (bubblewrap)",
              "namespaces (the probe found the host's: " + ", ".join(sorted(set(ns) - set(fresh))) + ")")
        check("pid" in fresh, "caller's processes invisible and unsignallable (pid namespace)",
              "pid isolation")
        check(r.get("net") == ["lo"], "no network (own loopback only)", "network isolation")
        writable = sorted(m for m, _t, w in r.get("mounts", []) if w)
        seen = {m for m, _t, _w in r.get("mounts", []) if not m.startswith(("/proc/", "/dev/"))}
        check(writable == ["/tmp"] and seen == {"/", "/usr", "/proc", "/dev", "/tmp", *e["roots"]},
              f"read-only filesystem but a fresh tmpfs at /tmp ({e['tmpfs_mb']} MiB): only /usr and the "
              "interpreter's prefix, bound read-only", f"read-only filesystem (writable: {writable}, mounts: "
              f"{sorted(seen)})")
    else:
        missing += [f"namespaces ({e['why']})", "read-only filesystem", "network isolation",
                    "pid isolation (the program sees and can signal the caller's processes)",
                    "the caller's environment (readable through /proc/<pid>/environ: same uid)"]
        isolation.append("fresh tmp workdir (cwd, HOME, TMPDIR; removed after)")
    uid = r.get("uid", ())
    if e["uid"] is not None:
        check(bool(uid) and set(uid[:6]) == {e["uid"]} and len(uid) <= 7,
              f"fresh unprivileged uid per call ({e['uid_how']}), no groups", "fresh unprivileged uid")
    elif uid and uid[0] == 0:
        missing.append("unprivileged uid (the program runs as root)")
    caps = r.get("caps", [1, 1, 1, 1])
    check(not any(caps[:2]) and not caps[3], "no capabilities (effective, permitted, ambient)" + (
        "; the inheritable CAP_SETUID+CAP_SETGID bubblewrap leaves give nothing without a permitted set under "
        "no_new_privs" if caps[2] else ""), "capabilities dropped")
    check(r.get("nnp") == "1", "no_new_privs (setuid binaries and file capabilities give nothing)", "no_new_privs")
    if e["seccomp"]:
        check(r.get("seccomp") == "2" and r.get("filters") == "1",
              "seccomp filter: no new namespaces, keyrings, mounts, ptrace, bpf, perf, userfaultfd, io_uring, "
              "netlink/packet sockets" + ("" if e["cgroup"] else ", SysV shm, memfd"), "seccomp filter")
    else:
        missing.append(f"seccomp filter ({e['seccomp_why']})")
    ring, keys = e["keyring"], [k.split() for k in r.get("keys", ["? ?"])]
    if not bwrap:
        missing.append("kernel keyrings (the program runs as the caller without the seccomp filter: it can reach "
                       "the caller's user keyring)")
    elif ring > 0 and all(k[1:2] == ["keyring"] and k[-1] == "empty" for k in keys) and any(
            k[0] == f"{ring:08x}" for k in keys):
        isolation.append("fresh, empty session keyring (the caller's keys unreachable)")
    else:
        missing.append("fresh session keyring" + (f" (keyctl failed: errno {-ring})" if ring < 0 else
                                                  " (the probe saw: " + "; ".join(" ".join(k) for k in keys)[:200] + ")"))
    if e["cgroup"]:
        check(report is not None, f"memory cgroup: {e['memory_mb']} MiB of all memory (anonymous, shared, "
              "file-backed, tmpfs, kernel), OOM kills counted", "memory cgroup")
    else:
        missing.append(f"memory cgroup ({e['cgroup_why']}); memory is capped only by RLIMIT_AS, which counts "
                       "mapped memory alone, and a 'memory' status cannot be told apart from an error")
    if e["cpu_accounted"]:
        isolation.append(f"CPU time of the whole call capped at {e['cpu_s']} s (cgroup accounting)")
    else:
        missing.append("CPU accounting (no cgroup CPU controller): a program the CPU rlimit kills reads as 'error'")
    limits = r.get("rlimits", {})
    for name, label, unit in (("AS", "as", "bytes"), ("CPU", "cpu", "s"), ("NPROC", "nproc", "tasks"),
                              ("FSIZE", "fsize", "bytes"), ("NOFILE", "nofile", ""), ("CORE", "core", "")):
        want = e["rlimits"].get(name)
        if want is None:
            continue
        check(tuple(limits.get(name, ())) == tuple(want), f"rlimit {label} ({_fmt(want[1], unit)})",
              f"rlimit {label}")
    if e["rlimits"].get("NPROC") is None:
        missing.append("rlimit nproc (the program runs as root, which the kernel exempts)")
    if bwrap:
        check(r.get("env") == e["env"], "clean environment (" + ", ".join(e["env"]) + ")", "clean environment")
        check(report is not None, "no process outlives the call (pid namespace, and the cgroup emptied)"
              if e["cgroup"] else "no process outlives the call (the pid namespace dies with its init)",
              "containment of the program's processes")
    elif e["cgroup"]:
        isolation.append("no process outlives the call unless it leaves the cgroup (root can)")
    else:
        missing.append("containment of processes that leave the process group (they can outlive the call)")
    isolation += [f"output capped at {e['output_limit']} bytes per stream", "wall-clock deadline, own session "
                  "and process group", "statuses from the supervisor's own facts (deadline, CPU, OOM counter, cap)"]
    return isolation, missing


def _fmt(value: int, unit: str) -> str:
    if unit == "bytes":
        return f"{value >> 20} MiB"
    return f"{value} {unit}".strip()
