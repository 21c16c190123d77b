"""``python -m rlgen_utils.sandbox FILE [--timeout-s S] [--memory-mb M]``: run a Python file in the sandbox
and print its ``Execution`` as one JSON object (stdin is passed through). Exit 0 whatever the program did;
2 for bad input."""
import argparse
import sys

from rlgen_utils.sandbox import run_program


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlgen_utils.sandbox", description=__doc__.split("\n")[0])
    parser.add_argument("file", help="the Python program to run")
    parser.add_argument("--timeout-s", type=float, default=2.0, help="wall-clock limit in seconds (default 2)")
    parser.add_argument("--memory-mb", type=int, default=256, help="address-space limit in MiB (default 256)")
    parser.add_argument("--backend", choices=("auto", "bwrap", "plain"), default=None,
                        help="force bubblewrap or the plain fallback (default: bubblewrap when it works)")
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
    execution = run_program(source, stdin=stdin, timeout_s=args.timeout_s, memory_mb=args.memory_mb,
                            backend=args.backend)
    print(execution.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
