"""The results report: one self-contained HTML page of a run (where it ran, each notebook's status, time,
memory and records against their bands), and the machine facts the runner records beside the results."""
from __future__ import annotations

import datetime
import html
import os

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


def render_report(results: dict, bands: dict, infos: dict, machine: dict | None = None) -> str:
    """One self-contained HTML page: every notebook with status, time, memory and each record in its band.
    `infos` maps each notebook to its `runner.notebook_info` (section and title)."""
    rows = []
    for stem, r in results.items():
        info = infos[stem]
        table = bands.get(stem, {}).get(r["profile"], {})
        cells = []
        for name, value in r["records"].items():
            band = table.get(name)
            inside = band is not None and isinstance(value, (int, float)) and band[0] <= value <= band[1]
            mark = "in" if inside else "OUT"
            band_text = f"[{band[0]}, {band[1]}]" if band else "no band"
            cells.append(f'<li class="{mark}"><code>{html.escape(name)}</code> = {html.escape(format_value(value))} '
                         f"<small>{band_text} {mark}</small></li>")
        problems = "".join(f"<li class='OUT'>{html.escape(p)}</li>" for p in r.get("problems", []))
        rows.append(
            f"<tr class='{r['status']}'><td>{html.escape(info['section'])}</td><td><b>{html.escape(stem)}</b><br>"
            f"<small>{html.escape(info['title'])}</small></td><td>{r['status']}</td><td>{r['seconds']}</td>"
            f"<td>{r['peak_rss_mb']}</td><td>{r.get('peak_gpu_mb') if r.get('peak_gpu_mb') is not None else '—'}</td>"
            f"<td><ul>{''.join(cells)}{problems}</ul></td></tr>"
        )
    machine = machine or machine_info()
    where = (f"{html.escape(machine['cpu'])} ({machine['cpu_cores']} cores)"
             + (f", GPU {html.escape(machine['gpu'])}, CUDA {machine['cuda']}" if machine.get("gpu") else ", no GPU")
             + f"; torch {machine['torch']}, Python {machine['python']}")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>rlgen results</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:4px 8px;vertical-align:top}}tr.failed,tr.out_of_band{{background:#fdd}}li.OUT{{color:#b00}}
ul{{margin:0;padding-left:1.2em}}</style></head><body>
<h1>rlgen: results of the book</h1><p>Run on {machine['date']}, on {where}. Each record is checked against its band in rlgen_utils/bands/.</p>
<table><tr><th>section</th><th>notebook</th><th>status</th><th>seconds</th><th>peak RSS (MB)</th><th>peak GPU memory (MB)</th><th>records</th></tr>
{''.join(rows)}</table></body></html>
"""
