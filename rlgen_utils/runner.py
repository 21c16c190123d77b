"""The book runner: execute notebooks with papermill under a profile, check their records against the
bands in rlgen_utils/bands/<notebook>.toml, and write build/records.json and build/report.html.

CLI (`python -m rlgen_utils ...`): `list`, `run`, `records`; see `main()`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from .contents import NOTEBOOKS, find_notebooks, notebook_info, write_book_index
from .report import first_figure, machine_info, render_report
from .runtime import PROFILES, ProfileError, format_value, read_records, resolve_profile
from .setup_cell import forge_url, sync_setup_cells

BANDS_DIR = Path(__file__).resolve().parent / "bands"  # one <notebook>.toml each, shipped in the wheel


# ----------------------------------------------------------------------------- bands
def load_bands(directory: Path = BANDS_DIR) -> dict:
    """{notebook stem: {profile: {record name: [low, high]}}} from the folder of band files, one
    `<notebook stem>.toml` per notebook with a `[smoke]` and a `[full]` table."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no bands folder at {directory}: it ships inside the package as rlgen_utils/bands/")
    bands = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            bands[path.stem] = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"band file {path.name} is not valid TOML ({e}): fix that line") from None
    return bands


def check_bands(notebook: str, profile: str, records: dict, bands: dict | None = None) -> list[str]:
    """Messages for every problem: a record outside its band, a banded record missing, a record with
    no band. An empty list means the notebook's results are in band."""
    bands = load_bands() if bands is None else bands
    table = bands.get(notebook, {}).get(profile)
    if table is None:
        return [f"{notebook}: no bands for profile {profile!r}: add a [{profile}] table to rlgen_utils/bands/{notebook}.toml"]
    problems = []
    for name, band in table.items():
        if name not in records:
            problems.append(f"{notebook}: record {name!r} has a band {band} but the notebook did not record it")
            continue
        low, high = band
        value = records[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not (low <= value <= high):
            problems.append(f"{notebook}: record {name!r} = {format_value(value)} is outside its {profile} band [{low}, {high}]")
    for name in records:
        if name not in table:
            problems.append(f"{notebook}: record {name!r} has no {profile} band: add one to bands/{notebook}.toml")
    if profile == "full":
        problems += twin_problems(notebook, bands.get(notebook, {}), records)
    return problems


def twin_problems(notebook: str, spec: dict, records: dict) -> list[str]:
    """Book-wide rule 7: each headline in a band file's [headlines] table names its no-learning twin (the same
    measurement for lr = 0, the untrained or pre-trained model, or random), and the headline's `full` band must
    not contain the twin's value, unless the headline is marked a measured null (`null = "why"`)."""
    problems, full = [], spec.get("full", {})
    for name, entry in spec.get("headlines", {}).items():
        twin = entry.get("twin") if isinstance(entry, dict) else None
        if not twin:
            problems.append(f"{notebook}: headline {name!r} names no twin: give it `twin = \"<record>\"` in [headlines]")
            continue
        if name not in full or twin not in full:
            problems.append(f"{notebook}: headline {name!r} and its twin {twin!r} both need a [full] band")
            continue
        low, high = full[name]
        value = records.get(twin)
        if entry.get("null") or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue  # a declared null, or a missing twin (reported above as a banded record not recorded)
        if low <= value <= high:
            problems.append(f"{notebook}: headline {name!r}'s full band [{low}, {high}] contains its twin {twin!r} = "
                            f"{format_value(value)}: narrow the band, or mark it a measured null (`null = \"why\"`)")
    return problems


# ----------------------------------------------------------------------------- execution
def kernel_env(profile: str, python: str | None = None) -> dict:
    """The environment of a notebook's kernel: the profile, and the interpreter's bin/ (this one, or
    `python`) first on PATH so the 'python3' kernel is the one with rlgen_utils installed."""
    env = dict(os.environ, RLGEN_PROFILE=profile, PYTHONHASHSEED="0")
    env.pop("MPLBACKEND", None)  # the kernel's own inline backend puts figures into the notebook
    # One BLAS/OpenMP thread per kernel: the book's models are small, and spinning OpenMP threads made
    # them 10-50x slower on a loaded 2-core machine. It also makes a run's floats repeatable. Override by setting it.
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PATH"] = str(Path(python or sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def execute_notebook(source: Path, target: Path, profile: str, timeout: int = 1800, python: str | None = None) -> dict:
    """Execute one notebook with papermill in a child process; returns status, seconds, peak RSS, error.

    The child reports the peak resident memory of the kernel it started (getrusage of its children).
    `python` runs child and kernel with another interpreter (the wheel test's clean environment).
    """
    source, target = Path(source).resolve(), Path(target).resolve()  # the child runs in the notebook's folder
    target.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [python or sys.executable, "-m", "rlgen_utils.runner", "_execute", str(source), str(target), profile, str(timeout)],
        capture_output=True, text=True, env=kernel_env(profile, python), cwd=str(source.parent),
    )
    seconds = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    result = json.loads(lines[-1]) if lines else {
        "status": "failed", "error": (proc.stderr.strip().splitlines() or ["the runner's child process died"])[-1],
        "peak_rss_mb": None, "peak_gpu_mb": None,
    }
    result["seconds"] = round(seconds, 1)
    return result


# Appended to every notebook the runner executes, and removed from its output: the kernel's peak GPU memory.
GPU_STATS_TAG = "rlgen-gpu-stats"
GPU_STATS_CELL = """import sys as _sys, json as _json
_torch = _sys.modules.get("torch")
_cuda = _torch is not None and _torch.cuda.is_available() and _torch.cuda.is_initialized()
print(_json.dumps({"peak_gpu_mb": round(_torch.cuda.max_memory_allocated() / 2**20, 1) if _cuda else None}))"""


def _execute_child(source: str, target: str, profile: str, timeout: str):
    import resource

    import nbformat
    import papermill

    status, error, gpu = "ok", None, {"peak_gpu_mb": None}
    nb = nbformat.read(source, as_version=4)
    stats_cell = nbformat.v4.new_code_cell(GPU_STATS_CELL, metadata={"tags": [GPU_STATS_TAG]})
    nb.cells.append(stats_cell)
    staged = Path(target).with_name(f".{Path(target).stem}.input.ipynb")  # beside the output, not in notebooks/
    nbformat.write(nb, staged)
    try:
        papermill.execute_notebook(
            str(staged), target, parameters={"PROFILE": profile}, kernel_name="python3", cwd=str(Path(source).parent),
            progress_bar=False, log_output=False, execution_timeout=int(timeout),
        )
    except papermill.PapermillExecutionError as e:
        status, error = "failed", f"{e.ename}: {e.evalue}"
    except Exception as e:  # a kernel that died, a timeout, an unreadable notebook
        status, error = "failed", f"{type(e).__name__}: {e}"
    finally:
        staged.unlink(missing_ok=True)
    if Path(target).exists():  # read the stats cell's output, then drop the cell
        executed = nbformat.read(target, as_version=4)
        for cell in executed.cells:
            if GPU_STATS_TAG in cell.metadata.get("tags", []):
                text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
                gpu = json.loads(text) if text.strip().startswith("{") else gpu
        executed.cells = [c for c in executed.cells if GPU_STATS_TAG not in c.metadata.get("tags", [])]
        nbformat.write(executed, target)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB
    print(json.dumps({"status": status, "error": error, "peak_rss_mb": round(peak_kb / 1024, 1), **gpu}))


def write_results(out: Path, results: dict, bands: dict, directory: Path, machine: dict, wall_seconds: float | None = None,
                  seen: dict | None = None):
    """OUT/records.json and OUT/report.html for the notebooks finished so far (each file replaced whole).
    `seen` caches each notebook's (info, figure) across calls, so each executed notebook is read once."""
    out.mkdir(parents=True, exist_ok=True)
    results = dict(sorted(results.items()))
    seen = {} if seen is None else seen
    for stem in results:
        if stem not in seen:
            seen[stem] = (notebook_info(Path(directory) / f"{stem}.ipynb"), first_figure(out / "executed" / f"{stem}.ipynb"))
    infos, figures = {stem: seen[stem][0] for stem in results}, {stem: seen[stem][1] for stem in results}
    machine = dict(machine, wall_seconds=None if wall_seconds is None else round(wall_seconds, 1))
    for name, text in (("records.json", json.dumps({"machine": machine, "notebooks": results}, indent=2) + "\n"),
                       ("report.html", render_report(results, bands, infos, machine, figures, wall_seconds))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)


def previous_results(out: Path, profile: str) -> dict:
    """The notebooks an earlier run into OUT finished `ok` in this profile (their executed copies still there)."""
    try:
        earlier = json.loads((out / "records.json").read_text()).get("notebooks", {})
    except (OSError, ValueError):
        return {}
    return {stem: r for stem, r in earlier.items()
            if r.get("profile") == profile and r.get("status") == "ok" and (out / "executed" / f"{stem}.ipynb").exists()}


def run(profile: str | None = None, only: str | None = None, jobs: int = 1, out: str | Path = "build",
        directory: Path = NOTEBOOKS, bands_dir: Path = BANDS_DIR, resume: bool = False) -> int:
    """Execute the book; write OUT/executed/*.ipynb, OUT/records.json and OUT/report.html.

    The records and the report are rewritten after every notebook, so an interrupted run keeps what it
    finished; `resume=True` keeps an earlier run's `ok` notebooks of this profile and runs only the rest.
    Returns the exit status: 0 when every notebook ran and stayed within its bands, else 1.
    """
    from tqdm.auto import tqdm

    profile = resolve_profile(profile)
    notebooks = find_notebooks(only, directory)
    if not notebooks:
        print(f"no notebook matches {only!r}: `python -m rlgen_utils list` shows them", file=sys.stderr)
        return 2
    out = Path(out)
    bands = load_bands(bands_dir)
    machine = machine_info()
    kept = {stem: r for stem, r in previous_results(out, profile).items() if stem in {p.stem for p in notebooks}} if resume else {}
    results, running, seen = dict(kept), set(), {}
    todo = [p for p in notebooks if p.stem not in kept]
    if kept:
        print(f"resuming: {len(kept)} notebook(s) already ok in {out}, {len(todo)} to run")
    bar = tqdm(total=len(todo), desc=f"notebooks ({profile})", unit="nb")
    start = time.perf_counter()

    def one(path: Path):
        running.add(path.stem)
        bar.set_postfix_str(", ".join(sorted(running)))
        result = execute_notebook(path, out / "executed" / path.name, profile)
        running.discard(path.stem)
        return path, result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for future in as_completed([pool.submit(one, p) for p in todo]):
            path, result = future.result()
            executed = out / "executed" / path.name
            records = read_records(executed) if executed.exists() else {}
            problems = check_bands(path.stem, profile, records, bands) if result["status"] == "ok" else []
            status = "out_of_band" if problems else result["status"]
            results[path.stem] = {
                "profile": profile, "status": status, "seconds": result["seconds"],
                "peak_rss_mb": result["peak_rss_mb"], "peak_gpu_mb": result.get("peak_gpu_mb"), "records": records,
                "problems": problems + ([result["error"]] if result.get("error") else []),
            }
            write_results(out, results, bands, directory, machine, seen=seen)
            bar.update(1)
            bar.set_postfix_str(", ".join(sorted(running)) or "done")
            if status != "ok":
                tqdm.write(f"{path.stem}: {status}: " + "; ".join(results[path.stem]["problems"]))
    bar.close()
    write_results(out, results, bands, directory, machine, time.perf_counter() - start, seen)
    n_ok = sum(r["status"] == "ok" for r in results.values())
    print(f"{n_ok}/{len(results)} notebooks ok ({profile}); report: {out / 'report.html'}")
    return 0 if n_ok == len(results) else 1


def final_text(text: str) -> str:
    """What a terminal shows for `text`: each line keeps only what follows its last carriage return."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def collapse_streams(outputs: list) -> list:
    """Merge consecutive stream outputs of one name and resolve carriage returns, so a progress bar is
    committed as its final state rather than as hundreds of refreshes."""
    merged = []
    for out in outputs:
        if out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream" \
                and merged[-1]["name"] == out["name"]:
            merged[-1]["text"] += out["text"]
        else:
            merged.append(out)
    for out in merged:
        if out.get("output_type") == "stream":
            out["text"] = final_text(out["text"])
    return merged


def publish(executed: Path, directory: Path = NOTEBOOKS) -> Path:
    """Copy an executed notebook back into notebooks/ as its committed version: the outputs stay, the
    cell papermill injected (which pins PROFILE) and papermill's metadata go, so nbval and readers
    still get the profile from the environment."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("jupytext", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = collapse_streams(cell.outputs)
    run = Path(executed).resolve().parent.parent / "records.json"  # the runner's OUT/records.json, when there
    try:
        facts = json.loads(run.read_text())
        result = facts["notebooks"][Path(executed).stem]
        nb.metadata["rlgen"] = {k: result.get(k) for k in ("profile", "seconds", "peak_rss_mb", "peak_gpu_mb")}
        nb.metadata["rlgen"]["machine"] = {k: facts["machine"].get(k) for k in ("cpu", "cpu_cores", "gpu", "torch", "date")}
    except (OSError, ValueError, KeyError):
        pass  # published from elsewhere: no run facts to keep
    target = Path(directory) / Path(executed).name
    nbformat.write(nb, target)
    return target


# ----------------------------------------------------------------------------- CLI
def book(out: str | Path, browser_check: bool = True) -> int:
    """`make book`: the website (rlgen_utils.site), then every page checked in Chromium (rlgen_utils.site_browser)."""
    from .site import build_site, site_notebooks
    from .site_browser import BrowserUnavailable, check_site

    site = build_site(out)
    if not browser_check:
        return 0
    try:
        result = check_site(site, site_notebooks())
    except BrowserUnavailable as e:
        print(f"WARNING: the site was built but NOT checked in a browser: {e}", file=sys.stderr)
        return 0
    for problem in result["problems"]:
        print(f"site problem: {problem}", file=sys.stderr)
    print(f"browser check: {len(result['pages'])} pages visited in headless Chromium, {len(result['problems'])} problems; "
          f"landing page screenshot {result['screenshot']}")
    return 1 if result["problems"] else 0


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
    args = parser.parse_args(argv)
    try:
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
            return book(args.out, browser_check=not args.no_browser_check)
        return run(args.profile, args.only, args.jobs, args.out, resume=args.resume)
    except (ProfileError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_execute":
        _execute_child(*sys.argv[2:6])
    else:
        sys.exit(main())
