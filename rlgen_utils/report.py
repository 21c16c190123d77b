"""The results report: one self-contained HTML page of a run (where it ran, each notebook's status, time,
memory and records against their bands), and the machine facts the runner records beside the results."""
from __future__ import annotations

import datetime
import html
import json
import os
from pathlib import Path

from .runtime import format_value


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


def record_items(records: dict, table: dict) -> list[str]:
    """One `<li>` per record: its band drawn as a bar with the value as a dot, the name, value and band."""
    items = []
    for name, value in records.items():
        band = table.get(name)
        inside = band is not None and isinstance(value, (int, float)) and band[0] <= value <= band[1]
        mark = "in" if inside else "OUT"
        band_text = f"[{band[0]}, {band[1]}]" if band else "no band"
        items.append(f'<li class="{mark}">{band_marker(value, band)} <code>{html.escape(name)}</code> = '
                     f"{html.escape(format_value(value))} <small>{band_text} {mark}</small></li>")
    return items


def render_report(results: dict, bands: dict, infos: dict, machine: dict | None = None,
                  figures: dict | None = None, wall_seconds: float | None = None) -> str:
    """One self-contained HTML page (no network): where and when the book ran, totals, and per notebook its
    status, time, memory, main figure and each record drawn against its band, linked to the executed notebook
    (`executed/<notebook>.ipynb` beside the report). `infos` maps each notebook to `runner.notebook_info`;
    `figures` to its first figure (base64 PNG)."""
    figures = figures or {}
    rows = []
    for stem, r in results.items():
        info = infos[stem]
        cells = record_items(r["records"], bands.get(stem, {}).get(r["profile"], {}))
        problems = "".join(f"<li class='OUT'>{html.escape(p)}</li>" for p in r.get("problems", []))
        figure = f'<img alt="main figure of {html.escape(stem)}" src="data:image/png;base64,{figures[stem]}">' if figures.get(stem) else ""
        gpu = r.get("peak_gpu_mb") if r.get("peak_gpu_mb") is not None else "—"
        rows.append(
            f"<tr class='{r['status']}'><td>{html.escape(info['section'])}</td><td><a href='executed/{html.escape(stem)}.ipynb'>"
            f"<b>{html.escape(stem)}</b></a><br><small>{html.escape(info['title'])}</small></td><td>{r['status']}</td>"
            f"<td>{r['seconds']}</td><td>{r['peak_rss_mb']}</td><td>{gpu}</td><td>{figure}</td>"
            f"<td><ul>{''.join(cells)}{problems}</ul></td></tr>"
        )
    machine = machine or machine_info()
    where = (f"{html.escape(machine['cpu'])} ({machine['cpu_cores']} cores)"
             + (f", GPU {html.escape(machine['gpu'])}, CUDA {machine['cuda']}" if machine.get("gpu") else ", no GPU")
             + f"; torch {machine['torch']}, Python {machine['python']}")
    n_ok = sum(r["status"] == "ok" for r in results.values())
    summed = sum(r["seconds"] or 0 for r in results.values())
    peak = max((r["peak_rss_mb"] or 0 for r in results.values()), default=0)
    wall = f"{wall_seconds:.0f} s wall, " if wall_seconds is not None else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>rlgen results</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:4px 8px;vertical-align:top}}tr.failed,tr.out_of_band{{background:#fdd}}li.OUT{{color:#b00}}
ul{{margin:0;padding-left:0;list-style:none}}li svg{{vertical-align:middle}}img{{width:180px}}
.totals{{font-size:1.1em}}</style></head><body>
<h1>rlgen: results of the book</h1><p>Run on {machine['date']}, on {where}. Each record is checked against its band in
rlgen_utils/bands/: the bar is the band, the dot the value (red outside).</p>
<p class="totals"><b>{n_ok}/{len(results)} notebooks ok</b> · {wall}{summed:.0f} s summed over notebooks ·
largest peak memory {peak:.0f} MB</p>
<table><tr><th>section</th><th>notebook</th><th>status</th><th>seconds</th><th>peak RSS (MB)</th><th>peak GPU memory (MB)</th>
<th>main figure</th><th>records</th></tr>
{''.join(rows)}</table></body></html>
"""
