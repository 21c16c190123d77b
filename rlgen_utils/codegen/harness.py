"""A test harness for a batch of generated programs (survey §4.2; the execution feedback of CodeRL, Le et al. 2022).

Starting a sandbox costs tens of milliseconds, so a whole batch of candidate programs is judged in *one* sandboxed
run: `build_harness` writes a Python program that holds the candidates and their unit tests, runs every candidate
in its own forked child with a per-candidate time limit (a real-time timer whose signal kills the child even inside
C code), and prints one JSON line per candidate: `{"i": index, "status": ..., "passed": "1101..."}` (flushed every 64
candidates: a flush per line would wake the caller once per program).
Two walls, two jobs: the operating-system sandbox (`rlgen_utils.sandbox.run_program`) protects the caller from the
harness and everything in it; the forked children keep one bad candidate (a crash, a hang, a memory blow-up) from
spoiling the others' results. `parse_harness_output` reads the lines back; a candidate without a line (the
harness was stopped) counts as failed, status "lost".
"""
from __future__ import annotations

import json
from typing import Sequence

import numpy as np

HARNESS_STATUSES = ("ran", "syntax_error", "timeout", "crashed", "lost")

_TEMPLATE = '''\
import gc, json, os, signal, sys

CANDIDATES = json.loads({candidates!r})   # [[problem key, expression source], ...]
TESTS = json.loads({tests!r})             # {{problem key: [[x, y, expected], ...]}}
LIMIT_S = {limit!r}
BUILTINS = {{"abs": abs, "min": min, "max": max}}  # the language's calls (a definition, not a protection)


def judge(source, tests):
    try:
        f = eval(compile("lambda x, y: (" + source + "\\n)", "<candidate>", "eval"), {{"__builtins__": BUILTINS}})
    except BaseException:
        return "S"
    marks = []
    for x, y, expected in tests:
        try:
            marks.append("1" if f(x, y) == expected else "0")
        except BaseException:
            marks.append("0")
    return "".join(marks)


judge("abs(x) + min(x, y) * max(1, 2) if x > 0 else y // 3 % 2", [[1, 2, 3]])  # warm the compiler once, here
gc.freeze()  # fewer copy-on-write page faults in the children
for i, (key, source) in enumerate(CANDIDATES):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: judge one candidate, report through the pipe, never return
        try:
            os.close(read_end)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)      # the timer's signal kills the child
            signal.setitimer(signal.ITIMER_REAL, LIMIT_S)
            os.write(write_end, judge(source, TESTS[key]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    data = b""
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        data += chunk
    os.close(read_end)
    _, wait_status = os.waitpid(pid, 0)
    text = data.decode(errors="replace")
    n = len(TESTS[key])
    if os.WIFSIGNALED(wait_status) and os.WTERMSIG(wait_status) == signal.SIGALRM:
        status, passed = "timeout", "0" * n
    elif text == "S":
        status, passed = "syntax_error", "0" * n
    elif len(text) == n and set(text) <= {{"0", "1"}}:
        status, passed = "ran", text
    else:
        status, passed = "crashed", "0" * n
    print(json.dumps({{"i": i, "status": status, "passed": passed}}), flush=i % 64 == 63)
sys.stdout.flush()
'''


def build_harness(candidates: Sequence[tuple[str, str]], tests: dict[str, Sequence[tuple[int, int, int]]],
                  time_limit_s: float = 0.25) -> str:
    """The Python source of a harness that judges `candidates` [(problem key, expression source), ...] on
    `tests` {problem key: [(x, y, expected), ...]}, each candidate in its own child with `time_limit_s`."""
    missing = {key for key, _ in candidates} - set(tests)
    if missing:
        raise KeyError(f"no tests for problem(s) {sorted(missing)}")
    plain_tests = {str(k): [[int(x), int(y), int(e)] for x, y, e in v] for k, v in tests.items()}
    return _TEMPLATE.format(candidates=json.dumps([[str(k), str(s)] for k, s in candidates]),
                            tests=json.dumps(plain_tests), limit=float(time_limit_s))


def parse_harness_output(stdout: str, n_tests: Sequence[int]) -> tuple[list[np.ndarray], list[str]]:
    """(per candidate a bool array of its tests' results, per candidate a status) from a harness's stdout.

    `n_tests[i]` is candidate i's number of tests. Lines that do not parse are ignored; candidates without a
    line count as failed with status "lost" (the harness was cut short).
    """
    passed = [np.zeros(n, dtype=bool) for n in n_tests]
    status = ["lost"] * len(n_tests)
    for line in stdout.splitlines():
        try:
            item = json.loads(line)
            i, marks = int(item["i"]), str(item["passed"])
        except (ValueError, KeyError, TypeError):
            continue
        if 0 <= i < len(n_tests) and len(marks) == n_tests[i] and item.get("status") in HARNESS_STATUSES:
            passed[i] = np.array([m == "1" for m in marks], dtype=bool)
            status[i] = item["status"]
    return passed, status
