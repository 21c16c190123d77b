"""A run's results on disk: OUT/records.json (each notebook's status, cost, records and problems) and OUT/report.html,
both rewritten whole after every finished notebook, and the keys `--resume` trusts: a result is reused only when the
notebook's content, the library's code, the profile and the seed are the ones it was run with."""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .. import __version__
from .contents import notebook_info
from .report import first_figure, render_report

PACKAGE = Path(__file__).resolve().parent.parent
# What a notebook's records depend on besides the notebook: the library's code and the data it ships; not the
# book's machinery (this sub-package), the bands (checked anew on every read) or the contents index.
NOT_RUN_BY_NOTEBOOKS = ("book/", "bands/")


@lru_cache(maxsize=1)
def library_digest() -> str:
    """rlgen_utils' version and a digest of the code and data the notebooks run (every file outside book/ and bands/)."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*")):
        rel = path.relative_to(PACKAGE).as_posix()
        if path.is_file() and "__pycache__" not in rel and not rel.startswith(NOT_RUN_BY_NOTEBOOKS):
            digest.update(rel.encode() + b"\0" + path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def notebook_digest(notebook: Path) -> str:
    """A digest of what a notebook runs: each cell's type, source and tags. Outputs and metadata are left out, so
    publishing a run's outputs into the committed notebook does not make an earlier result of it stale."""
    cells = json.loads(Path(notebook).read_text()).get("cells", [])
    ran = [(c.get("cell_type"), "".join(c.get("source", "")), c.get("metadata", {}).get("tags", [])) for c in cells]
    return hashlib.sha256(json.dumps(ran, ensure_ascii=False).encode()).hexdigest()[:16]


def run_key(notebook: Path, profile: str, seed: int | None) -> str:
    """What a result was computed from: the notebook's code and text, the library's digest, the profile and the seed."""
    content = notebook_digest(notebook)
    return f"{content}:{library_digest()}:{profile}:{'default' if seed is None else int(seed)}"


def write_results(out: Path, results: dict, bands: dict, directory: Path, machine: dict, wall_seconds: float | None = None,
                  seen: dict | None = None, meta: dict | None = None):
    """OUT/records.json and OUT/report.html for the notebooks finished so far (each file replaced whole, so a reader
    never sees half a file). `results` maps each notebook to its entry (a sweep: `sweep_summary`'s entries, which keep
    every seed's). `seen` caches each notebook's (info, figure) across calls, so each executed notebook is read once;
    `meta` adds run-wide facts (profile, the seeds of a sweep, the engine)."""
    out.mkdir(parents=True, exist_ok=True)
    results = dict(sorted(results.items()))
    seen = {} if seen is None else seen
    for stem in results:
        if stem not in seen:
            seen[stem] = (notebook_info(Path(directory) / f"{stem}.ipynb"), first_figure(out / "executed" / f"{stem}.ipynb"))
    infos, figures = {stem: seen[stem][0] for stem in results}, {stem: seen[stem][1] for stem in results}
    machine = dict(machine, wall_seconds=None if wall_seconds is None else round(wall_seconds, 1))
    payload = {"machine": machine, **(meta or {}), "notebooks": results}
    for name, text in (("records.json", json.dumps(payload, indent=2) + "\n"),
                       ("report.html", render_report(results, bands, infos, machine, figures, wall_seconds))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)


STATUS_ORDER = ("failed", "out_of_band", "ok")


def sweep_summary(results: dict, stems: list[str], seeds: list[int]) -> dict:
    """A sweep's per-notebook entries from its tasks (`results` keyed "<notebook>@<seed>"): each record as a list with
    one value per seed (None where that seed has none yet), the worst status, summed seconds, the largest memory,
    every problem labelled with its seed, and each seed's own entry under "seeds"."""
    summary = {}
    for stem in stems:
        runs = {seed: results[f"{stem}@{seed}"] for seed in seeds if f"{stem}@{seed}" in results}
        if not runs:
            continue
        names = list(dict.fromkeys(name for r in runs.values() for name in r["records"]))
        summary[stem] = {
            "profile": next(iter(runs.values()))["profile"],
            "status": min((r["status"] for r in runs.values()), key=STATUS_ORDER.index) if len(runs) == len(seeds) else "running",
            "seconds": round(sum(r["seconds"] or 0 for r in runs.values()), 1),
            "peak_rss_mb": max((r["peak_rss_mb"] or 0 for r in runs.values()), default=None),
            "peak_gpu_mb": max((r["peak_gpu_mb"] for r in runs.values() if r["peak_gpu_mb"] is not None), default=None),
            "records": {name: [runs[s]["records"].get(name) if s in runs else None for s in seeds] for name in names},
            "problems": [f"SEED = {seed}: {p}" for seed, r in runs.items() for p in r["problems"]],
            "seeds": {str(seed): r for seed, r in runs.items()},
        }
    return summary


def previous_results(out: Path, keys: dict[str, str], sweep: bool = False) -> dict:
    """The results of an earlier run into OUT that can stand: status ok, the executed copy still there, and the same
    key (`run_key`) as the task has now. `keys` maps each task ("<notebook>", or "<notebook>@<seed>" in a sweep) to
    its current key."""
    try:
        earlier = json.loads((Path(out) / "records.json").read_text()).get("notebooks", {})
    except (OSError, ValueError):
        return {}
    if sweep:
        earlier = {f"{stem}@{seed}": r for stem, e in earlier.items() for seed, r in e.get("seeds", {}).items()}
    kept = {}
    for tid, r in earlier.items():
        stem, _, seed = tid.partition("@")
        executed = Path(out) / "executed" / (f"seed-{seed}" if seed else "") / f"{stem}.ipynb"
        if tid in keys and r.get("key") == keys[tid] and r.get("status") == "ok" and executed.exists():
            kept[tid] = r
    return kept


SWEEP = PACKAGE / "book" / "sweep.json"  # a full-profile sweep's records, shipped with the book (publish-sweep)


def publish_sweep(records_json: Path, target: Path = SWEEP) -> Path:
    """Ship a sweep's per-seed records with the book (the overview's ledger and the website read them): only a
    `full` sweep of at least 5 seeds whose every task ran to its end (inside its bands or not) is published."""
    run = json.loads(Path(records_json).read_text())
    seeds, notebooks = run.get("seeds"), run.get("notebooks", {})
    if run.get("profile") != "full" or not seeds or len(seeds) < 5:
        raise ValueError(f"{records_json} is not a full-profile sweep of >= 5 seeds: run "
                         "`python -m rlgen_utils run --profile full --seeds 0-4 ...` first")
    # A seed outside a band is what a sweep is for (the report flags the band), but every task must have run to its end.
    unfinished = [stem for stem, e in notebooks.items() if e.get("status") not in ("ok", "out_of_band")]
    if unfinished:
        raise ValueError(f"the sweep has notebooks that did not run to their end at every seed: {unfinished}")
    shipped = {"profile": "full", "seeds": seeds, "engine": run.get("engine"),
               "machine": {k: run["machine"].get(k) for k in ("cpu", "cpu_cores", "gpu", "torch", "date", "wall_seconds")},
               "notebooks": {stem: e["records"] for stem, e in sorted(notebooks.items())}}
    target.write_text(json.dumps(shipped, indent=1) + "\n")
    return target


def load_sweep(path: Path = SWEEP) -> dict | None:
    """The shipped sweep ({"seeds", "notebooks": {notebook: {record: [value per seed]}}, ...}), or None."""
    shipped = resources.files("rlgen_utils.book").joinpath("sweep.json") if path == SWEEP else Path(path)
    return json.loads(shipped.read_text()) if shipped.is_file() else None
