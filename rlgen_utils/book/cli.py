"""The command line: `python -m rlgen_utils list | run | records | publish | publish-sweep | sync-setup | book`
(see `main`)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..runtime import PROFILES, ProfileError, read_records
from .contents import find_notebooks, notebook_info, write_book_index
from .publish import publish
from .results import publish_sweep
from .run import parse_seeds, run
from .setup_cell import forge_url, sync_setup_cells
from .website import build_and_check


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1, with a message that names the fix."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number: give the number of notebooks to run at once") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} notebooks at once is not possible: give 1 or more")
    return value


def readable_records(path: str) -> dict:
    """`read_records`, with a one-line error for a file that is not a notebook."""
    try:
        return read_records(path)
    except FileNotFoundError:
        raise
    except Exception as e:  # nbformat's and json's errors for a file that is not a notebook
        raise ValueError(f"{path} is not a Jupyter notebook ({type(e).__name__}): give an executed .ipynb file") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlgen_utils", description="Run and inspect the rlgen book.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every notebook with its survey section and title")
    p_run = sub.add_parser("run", help="execute notebooks with papermill and check their records")
    p_run.add_argument("--profile", default=None, help=f"one of {PROFILES} (default: $RLGEN_PROFILE or full)")
    p_run.add_argument("--only", default=None, help="comma-separated name patterns, e.g. 1.1 or 2.2a,2.2b")
    p_run.add_argument("--jobs", type=positive_int, default=1, help="notebooks executed at once (>= 1)")
    p_run.add_argument("--out", default="build", help="output folder (default: build)")
    p_run.add_argument("--resume", action="store_true", help="keep the notebooks an earlier run into --out finished "
                       "ok in this profile; run only the others")
    p_run.add_argument("--seeds", default=None, help="a seed sweep: each notebook once per SEED, e.g. 0-19 or 0,3,5-7 "
                       "(default: the notebooks' own SEED, once)")
    p_run.add_argument("--engine", choices=("local", "ray"), default="local", help="local: --jobs child processes here; "
                       "ray: Ray tasks (needs the `cluster` extra)")
    p_run.add_argument("--address", default=None, help="with --engine ray: an existing Ray cluster's address "
                       "(e.g. 10.0.0.1:6379, or auto); without it an embedded local Ray starts")
    p_pub_sweep = sub.add_parser("publish-sweep", help="ship a full-profile sweep's per-seed records with the book "
                                 "(book/sweep.json in the package): the overview's ledger then reads its verdicts from it")
    p_pub_sweep.add_argument("records", help="the sweep's records.json")
    p_rec = sub.add_parser("records", help="print the records stored in executed notebooks, as JSON")
    p_rec.add_argument("notebooks", nargs="+")
    p_pub = sub.add_parser("publish", help="copy executed notebooks back into notebooks/ (outputs kept, "
                           "papermill's injected parameters removed): how committed outputs are refreshed")
    p_pub.add_argument("executed", nargs="+")
    sub.add_parser("sync-setup", help="rewrite every notebook's setup cell to install from pyproject's Homepage (for a fork)")
    p_book = sub.add_parser("book", help="build the website from the committed notebooks (no execution), then check "
                            "every page in headless Chromium")
    p_book.add_argument("--out", default="build/site", help="output folder (default: build/site)")
    p_book.add_argument("--no-browser-check", action="store_true", help="build only; skip the Chromium check")
    p_ex = sub.add_parser("exercises", help="rewrite the exercise edition (notebooks/exercises/) from the book's "
                          "solution markers")
    p_ex.add_argument("--check", action="store_true", help="report stale editions and exit 1, write nothing")
    args = parser.parse_args(argv)
    try:
        if args.command == "exercises":
            from .edition import main as edition_main
            return edition_main(["--check"] if args.check else [])
        if args.command == "list":
            for path in find_notebooks():
                info = notebook_info(path)
                print(f"{info['section']:<6} {info['notebook']:<34} {info['title']}")
            return 0
        if args.command == "records":
            print(json.dumps({Path(p).stem: readable_records(p) for p in args.notebooks}, indent=2))
            return 0
        if args.command == "sync-setup":
            changed = sync_setup_cells()
            print(f"{len(changed)} setup cell(s) rewritten to install from {forge_url()}")
            return 0
        if args.command == "publish":
            for p in args.executed:
                print(f"published {publish(Path(p))}")
            print(f"wrote {write_book_index()} (the contents the overview shows when opened alone)")
            return 0
        if args.command == "book":
            return build_and_check(args.out, browser_check=not args.no_browser_check)
        if args.command == "publish-sweep":
            print(f"wrote {publish_sweep(Path(args.records))}")
            return 0
        return run(args.profile, args.only, args.jobs, args.out, resume=args.resume, seeds=parse_seeds(args.seeds),
                   engine=args.engine, address=args.address)
    except (ProfileError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
