"""`make run`: execute the book's notebooks under a profile, once each or over a sweep of SEEDs, on the local engine or
on Ray (`engines`); check each one's records against its bands as it finishes, and keep OUT/records.json and
OUT/report.html up to date (an interrupted run keeps what it finished; `--resume` skips what is still valid)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..runtime import read_records, resolve_profile
from .bands import BANDS_DIR, check_bands, load_bands
from .contents import NOTEBOOKS, find_notebooks
from .engines import LocalEngine, RayEngine, Task
from .report import machine_info
from .results import previous_results, run_key, sweep_summary, write_results


def parse_seeds(text: str | None) -> list[int] | None:
    """"0-19" -> [0, ..., 19]; "0,3,5-7" -> [0, 3, 5, 6, 7]; None -> None (the notebooks' own SEED)."""
    if text is None:
        return None
    seeds = []
    try:
        for part in str(text).split(","):
            low, _, high = part.strip().partition("-")
            seeds += list(range(int(low), int(high or low) + 1))
    except ValueError:
        raise ValueError(f"--seeds {text!r}: give seeds as 0-19 or 0,3,5-7 (whole numbers >= 0)") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {text!r}: give distinct whole numbers >= 0, e.g. 0-19")
    return seeds


def result_entry(task: Task, result: dict, profile: str, bands: dict, key: str) -> dict:
    """One task's entry of records.json: status (ok, failed, out_of_band), cost, records, problems, attempts."""
    records = read_records(task.target) if task.target.exists() and result["status"] == "ok" else {}
    problems = check_bands(task.notebook.stem, profile, records, bands) if result["status"] == "ok" else []
    return {"profile": profile, "seed": task.seed, "status": "out_of_band" if problems else result["status"],
            "seconds": result.get("seconds"), "peak_rss_mb": result.get("peak_rss_mb"), "peak_gpu_mb": result.get("peak_gpu_mb"),
            "records": records, "problems": problems + ([result["error"]] if result.get("error") else []), "key": key,
            "attempts": result.get("attempts", 1)}


def run(profile: str | None = None, only: str | None = None, jobs: int = 1, out: str | Path = "build",
        directory: Path = NOTEBOOKS, bands_dir: Path = BANDS_DIR, resume: bool = False, seeds: list[int] | None = None,
        engine: str = "local", address: str | None = None) -> int:
    """Execute the book; write OUT/executed/*.ipynb (a sweep: OUT/executed/seed-<k>/*.ipynb), OUT/records.json and
    OUT/report.html. `seeds` sweeps each notebook's SEED parameter (None: the notebook's own); `engine` is "local"
    (`jobs` at a time) or "ray" (`address` of a cluster, or an embedded local Ray). `resume=True` keeps an earlier
    run's `ok` tasks whose notebook, library code, profile and seed are unchanged. Returns 0 when every task ran and
    stayed within its bands, else 1."""
    profile = resolve_profile(profile)
    notebooks = find_notebooks(only, directory)
    if not notebooks:
        print(f"no notebook matches {only!r}: `python -m rlgen_utils list` shows them", file=sys.stderr)
        return 2
    if engine not in ("local", "ray"):
        raise ValueError(f"unknown engine {engine!r}: use 'local' or 'ray'")
    out, sweep = Path(out), seeds is not None
    bands, machine = load_bands(bands_dir), machine_info()
    tasks = [Task(p, s, out / "executed" / (f"seed-{s}" if sweep else "") / p.name) for p in notebooks for s in (seeds or [None])]
    tid = {t: f"{t.notebook.stem}@{t.seed}" if sweep else t.notebook.stem for t in tasks}
    keys = {tid[t]: run_key(t.notebook, profile, t.seed) for t in tasks}
    kept = previous_results(out, keys, sweep) if resume else {}
    results, seen = dict(kept), {}
    todo = [t for t in tasks if tid[t] not in kept]
    runner = LocalEngine(jobs) if engine == "local" else RayEngine(address, jobs if jobs > 1 else None)
    meta = {"profile": profile, "seeds": seeds, "engine": runner.name}
    print(f"{len(todo)} task(s) to run ({profile}, engine {runner.name})"
          + (f"; {len(kept)} kept from the earlier run in {out} (unchanged since)" if kept else ""), flush=True)

    def save(wall=None):
        shown = sweep_summary(results, [p.stem for p in notebooks], seeds) if sweep else results
        write_results(out, shown, bands, directory, machine, wall, seen, meta)

    start = time.perf_counter()
    try:
        for done, (task, result) in enumerate(runner.run(todo, profile), 1):
            entry = result_entry(task, result, profile, bands, keys[tid[task]])
            results[tid[task]] = entry
            save()
            seconds = f"{entry['seconds']:.0f} s" if entry["seconds"] is not None else "lost"
            tries = f" ({entry['attempts']} attempts)" if entry["attempts"] > 1 else ""
            print(f"[{done}/{len(todo)}] {task.name}: {entry['status']} in {seconds}{tries}"
                  + ("" if entry["status"] == "ok" else ": " + "; ".join(entry["problems"])), flush=True)
    finally:
        if hasattr(runner, "close"):
            runner.close()
    save(time.perf_counter() - start)
    n_ok = sum(r["status"] == "ok" for r in results.values())
    print(f"{n_ok}/{len(results)} {'tasks' if sweep else 'notebooks'} ok ({profile}); report: {out / 'report.html'}")
    return 0 if n_ok == len(results) else 1
