"""``python -m rlgen_utils.sandbox FILE [--timeout-s S] [--memory-mb M]``: run a Python file in the sandbox
and print its ``Execution`` as one JSON object (stdin is passed through). Exit 0 whatever the program did;
2 for bad input; 3 where the sandbox cannot run (the message says what is missing)."""
import argparse
import sys

from rlgen_utils.sandbox import SandboxUnavailable, run_program


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlgen_utils.sandbox", description=__doc__.split("\n")[0])
    parser.add_argument("file", help="the Python program to run")
    parser.add_argument("--timeout-s", type=float, default=2.0, help="wall-clock limit in seconds (default 2)")
    parser.add_argument("--memory-mb", type=int, default=256, help="memory limit in MiB: the call's cgroup, which counts all memory (default 256)")
    parser.add_argument("--backend", choices=("auto", "bwrap", "plain"), default=None,
                        help="bubblewrap (the default; an error where it cannot run) or 'plain', no isolation")
    args = parser.parse_args(argv)
    try:
        with open(args.file, encoding="utf-8") as handle:
            source = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {args.file!r} ({exc.__class__.__name__}: {exc}); pass the path of a "
              "readable UTF-8 Python file", file=sys.stderr)
        return 2
    if args.timeout_s <= 0 or args.memory_mb <= 0:
        print("error: --timeout-s and --memory-mb must be positive numbers", file=sys.stderr)
        return 2
    stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    try:
        execution = run_program(source, stdin=stdin, timeout_s=args.timeout_s, memory_mb=args.memory_mb,
                                backend=args.backend)
    except SandboxUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(execution.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
