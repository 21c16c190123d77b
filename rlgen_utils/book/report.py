"""The results report: one self-contained HTML page of a run (where it ran, each notebook's status, time,
memory and records against their bands), and the machine facts the runner records beside the results."""
from __future__ import annotations

import datetime
import html
import json
import os
from pathlib import Path

import numpy as np

from ..runtime import format_value
from ..verdicts import mean_interval, verdict


def machine_info() -> dict:
    """Where the book ran: CPU model and cores, GPU name, torch and CUDA versions, Python, the date."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu, "cpu_cores": os.cpu_count(), "gpu": gpu, "torch": torch.__version__,
        "cuda": torch.version.cuda if gpu else None, "python": platform.python_version(),
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }


def first_figure(executed: Path) -> str | None:
    """The first PNG figure of an executed notebook, base64 (the notebook's main figure, as a thumbnail)."""
    try:
        cells = json.loads(Path(executed).read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return None
    for cell in cells:
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if png:
                return "".join(png).replace("\n", "")
    return None


def band_marker(value, band) -> str:
    """An inline SVG: the band as a bar, the value as a dot (red outside the band), on a scale with margins."""
    if band is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""
    low, high = band
    pad = (high - low) * 0.25 or max(abs(low), 1e-12) * 0.25 or 1.0
    left, right = min(low - pad, value), max(high + pad, value)
    x = lambda v: 4 + 112 * (v - left) / (right - left)  # noqa: E731
    colour = "#2a7" if low <= value <= high else "#c22"
    return (f'<svg width="120" height="12" role="img" aria-label="value in band [{low}, {high}]">'
            f'<line x1="4" y1="6" x2="116" y2="6" stroke="#ddd"/><rect x="{x(low):.1f}" y="3" height="6" '
            f'width="{max(x(high) - x(low), 1):.1f}" fill="#cde"/><circle cx="{x(value):.1f}" cy="6" r="3.5" fill="{colour}"/></svg>')


def distribution_marker(values: list, band) -> str:
    """An inline SVG for a sweep: the band as a bar, each seed's value as a dot (red outside the band)."""
    if band is None or not values:
        return ""
    low, high = band
    pad = (high - low) * 0.25 or max(abs(low), 1e-12) * 0.25 or 1.0
    left, right = min(low - pad, *values), max(high + pad, *values)
    x = lambda v: 4 + 112 * (v - left) / (right - left)  # noqa: E731
    dots = "".join(f'<circle cx="{x(v):.1f}" cy="6" r="2.5" fill="{"#2a7" if low <= v <= high else "#c22"}" fill-opacity="0.7"/>'
                   for v in values)
    return (f'<svg width="120" height="12" role="img" aria-label="{len(values)} seeds against the band [{low}, {high}]">'
            f'<line x1="4" y1="6" x2="116" y2="6" stroke="#ddd"/><rect x="{x(low):.1f}" y="3" height="6" '
            f'width="{max(x(high) - x(low), 1):.1f}" fill="#cde"/>{dots}</svg>')


def spread_text(values: list, band) -> tuple[str, bool]:
    """"mean ± sd, 95% interval [a, b] over n seeds" for a sweep's values, and whether the band is narrower than the
    seeds' spread (a seed outside it, or a range wider than the band)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return f"{format_value(float(x.mean()))} (1 seed)", False
    mean, low, high = mean_interval(x)
    narrow = band is not None and (((x < band[0]) | (x > band[1])).any() or np.ptp(x) > band[1] - band[0])
    return f"{mean:.4g} ± {x.std(ddof=1):.2g}, 95% interval [{low:.4g}, {high:.4g}] over {x.size} seeds", bool(narrow)


def record_items(records: dict, table: dict) -> list[str]:
    """One `<li>` per record: its band drawn as a bar with the value as a dot (a sweep: one dot per seed, with mean,
    sd and 95% interval, flagged when the band is narrower than the seeds' spread), the name, value and band."""
    items = []
    for name, value in records.items():
        band = table.get(name)
        band_text = f"[{band[0]}, {band[1]}]" if band else "no band"
        if isinstance(value, list):
            numbers = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
            text, narrow = spread_text(numbers, band) if numbers else ("no value", False)
            mark = "OUT" if narrow or band is None else "in"
            flag = " <b>band narrower than the seeds' spread</b>" if narrow else ""
            items.append(f'<li class="{mark}">{distribution_marker(numbers, band)} <code>{html.escape(name)}</code> = '
                         f"{html.escape(text)} <small>{band_text}{flag}</small></li>")
            continue
        inside = band is not None and isinstance(value, (int, float)) and band[0] <= value <= band[1]
        mark = "in" if inside else "OUT"
        items.append(f'<li class="{mark}">{band_marker(value, band)} <code>{html.escape(name)}</code> = '
                     f"{html.escape(format_value(value))} <small>{band_text} {mark}</small></li>")
    return items


def verdict_changes(entry: dict, spec: dict) -> str | None:
    """For a sweep of a notebook with a ledger row: a warning when the RL-vs-alternative verdict is not the same at
    every seed (each seed's own interval read by `verdicts.verdict`), else None."""
    ledger, records = spec.get("ledger"), entry.get("records", {})
    if not ledger:
        return None
    area = ledger["rl"].split("/", 1)[0]
    lows, highs = records.get(f"{area}/ledger_gap_low"), records.get(f"{area}/ledger_gap_high")
    if not isinstance(lows, list) or not isinstance(highs, list):
        return None
    seen = [verdict(lo, hi, ledger["better"]) for lo, hi in zip(lows, highs) if lo is not None and hi is not None]
    if len(set(seen)) <= 1:
        return None
    counts = ", ".join(f"{v} at {seen.count(v)}" for v in ("ahead", "level", "behind") if v in seen)
    return f"the headline's verdict against its alternative changes across seeds: {counts} of {len(seen)} seeds"


def results_table(results: dict, bands: dict, infos: dict, figures: dict, link) -> str:
    """The one HTML table of results (the run report and the website's results page both show it): per notebook its
    section, name (linked by `link(stem)`) and title, status, seconds, peak host and GPU memory (and where it ran, if
    the result says), main figure, and every record drawn against its band of the result's profile, then problems."""
    rows = []
    for stem, r in results.items():
        info = infos[stem]
        items = record_items(r["records"], bands.get(stem, {}).get(r.get("profile", "full"), {}))
        warning = verdict_changes(r, bands.get(stem, {})) if "seeds" in r else None
        problems = "".join(f"<li class='OUT'>{html.escape(p)}</li>" for p in r.get("problems", []) + [warning] if p)
        figure = f'<img alt="main figure of {html.escape(stem)}" src="data:image/png;base64,{figures[stem]}">' if figures.get(stem) else ""
        cost = " · ".join(f"{v:.0f} {unit}" for v, unit in ((r.get("seconds"), "s"), (r.get("peak_rss_mb"), "MB"),
                                                             (r.get("peak_gpu_mb"), "MB on the GPU")) if v is not None) or "—"
        cost += f"<br><small>{html.escape(r['machine'])}</small>" if r.get("machine") else ""
        rows.append(
            f"<tr class='{r['status']}'><td>{html.escape(info['section'])}</td><td><a href='{html.escape(link(stem))}'>"
            f"<b>{html.escape(stem)}</b></a><br><small>{html.escape(info['title'])}</small></td><td>{r['status']}</td>"
            f"<td>{cost}</td><td>{figure}</td><td><ul>{''.join(items)}{problems}</ul></td></tr>")
    return ("<table class='rlgen-results'><tr><th>§</th><th>notebook</th><th>status</th><th>time · peak memory (host; GPU)</th>"
            "<th>main figure</th><th>records</th></tr>" + "".join(rows) + "</table>")


# The results table's style, scoped to it (the website's theme styles everything else).
TABLE_STYLE = """.rlgen-results{border-collapse:collapse;font-size:.9em}.rlgen-results td,.rlgen-results th{border:1px solid #ccc;
padding:4px 6px;vertical-align:top}.rlgen-results tr.failed,.rlgen-results tr.out_of_band{background:#fdd}
.rlgen-results li.OUT{color:#b00}.rlgen-results ul{margin:0;padding-left:0;list-style:none}
.rlgen-results li svg{vertical-align:middle}.rlgen-results img{width:170px;max-width:none}"""


def render_report(results: dict, bands: dict, infos: dict, machine: dict | None = None,
                  figures: dict | None = None, wall_seconds: float | None = None) -> str:
    """One self-contained HTML page (no network): where and when the book ran, totals, and `results_table` with each
    notebook linked to its executed copy (`executed/<notebook>.ipynb` beside the report). `infos` maps each notebook
    to `contents.notebook_info`; `figures` to its first figure (base64 PNG)."""
    machine = machine or machine_info()
    where = (f"{html.escape(machine['cpu'])} ({machine['cpu_cores']} cores)"
             + (f", GPU {html.escape(machine['gpu'])}, CUDA {machine['cuda']}" if machine.get("gpu") else ", no GPU")
             + f"; torch {machine['torch']}, Python {machine['python']}")
    n_ok = sum(r["status"] == "ok" for r in results.values())
    summed = sum(r["seconds"] or 0 for r in results.values())
    peak = max((r["peak_rss_mb"] or 0 for r in results.values()), default=0)
    wall = f"{wall_seconds:.0f} s wall, " if wall_seconds is not None else ""
    table = results_table(results, bands, infos, figures or {}, lambda stem: f"executed/{stem}.ipynb")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>rlgen results</title>
<style>body{{font-family:sans-serif;margin:2em}}.totals{{font-size:1.1em}}{TABLE_STYLE}</style></head><body>
<h1>rlgen: results of the book</h1><p>Run on {machine['date']}, on {where}. Each record is checked against its band in
rlgen_utils/bands/: the bar is the band, the dot the value (red outside).</p>
<p class="totals"><b>{n_ok}/{len(results)} notebooks ok</b> · {wall}{summed:.0f} s summed over notebooks ·
largest peak memory {peak:.0f} MB</p>
{table}</body></html>
"""
