"""The book as a website: `make book` (`python -m rlgen_utils book`) renders the committed notebooks with
Sphinx and MyST-NB, without executing them.

Why Sphinx + MyST-NB: it is the maintained engine under Jupyter Book 1 (pip-installable, no Node.js), it
renders notebooks' stored outputs as they are, and it builds offline: the theme's assets ship in the wheel
and MathJax 3 comes from the `django-static-mathjax` package (MathJax's own build), so the site makes no network request.

Layout of the site: the overview notebook is the landing page (`index.html` leads to it), the other notebooks follow
by survey section in the navigation, and `report.html` is the results dashboard built from the committed
notebooks' records (checked against their `full` bands). `tests/test_site.py` opens every page in headless
Chromium.
"""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..runtime import RECORD_MIME, read_records
from .bands import check_bands, load_bands
from .browser_check import BrowserUnavailable, check_site
from .contents import NOTEBOOKS, ROOT, find_notebooks, notebook_info
from .headlines import ledger_markdown, ledger_rows
from .report import TABLE_STYLE, first_figure, results_table
from .results import load_sweep
from .setup_cell import forge_url

PARTS = {"0": "Start here", "1": "1 · Background", "2": "2 · Benefits of RL for generative AI",
         "3": "3 · Challenges", "4": "4 · Applications"}
FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#4a7bb7"/>'
           '<text x="8" y="12" font-size="10" text-anchor="middle" fill="#fff" font-family="sans-serif">R</text></svg>')

CONF = '''# Written by rlgen_utils.book.website for each build; edit website.py, not this file.
project = "rlgen"
author = "the rlgen authors"
copyright = "the rlgen authors; the survey: Cao, Sheng, McAuley, Yao (2023)"
extensions = ["myst_nb"]
root_doc = {root!r}                 # the overview; index.html redirects to it
exclude_patterns = ["_build"]
nb_execution_mode = "off"                     # the committed outputs, as they are
nb_mime_priority_overrides = [("html", {record_mime!r}, None)]  # records show as their text line
myst_enable_extensions = ["dollarmath", "amsmath"]
mathjax_path = "mathjax/tex-svg-full.js"     # MathJax 3, one self-contained local file: no network, no fonts
html_theme = "sphinx_book_theme"
html_title = "rlgen: RL for generative AI, runnable"
html_static_path = ["_static"]
html_favicon = "_static/favicon.svg"
html_show_sourcelink = False
html_copy_source = True                       # the download button offers the .ipynb
html_context = {{"default_mode": "light"}}
# The theme's launch buttons open each page's notebook (notebooks/<page>.ipynb on the forge's main branch) in Colab
# and Binder; a page is named after its notebook, so the links point at the right file.
html_theme_options = {{"home_page_in_toc": True, "show_navbar_depth": 1, "repository_url": {forge!r},
                      "repository_branch": "main", "path_to_docs": "notebooks",
                      "use_repository_button": False, "use_download_button": True, "show_toc_level": 2,
                      "launch_buttons": {{"colab_url": "https://colab.research.google.com",
                                         "binderhub_url": "https://mybinder.org", "notebook_interface": "jupyterlab"}}}}
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header", "misc.highlighting_failure"]
'''


def mathjax_file() -> Path:
    """MathJax 3's self-contained TeX-to-SVG bundle, as shipped by the django-static-mathjax package (the
    MathJax project's es5 build; nothing of Django is imported)."""
    spec = importlib.util.find_spec("mathjax")
    path = Path(spec.submodule_search_locations[0]) / "static" / "mathjax" / "es5" / "tex-svg-full.js" if spec else None
    if path is None or not path.exists():
        raise FileNotFoundError("MathJax is not installed: run `make book` (it installs the book's tools) or "
                                "`pip install -e '.[book]'` (django-static-mathjax ships MathJax's files)")
    return path


def machine_line(machine: dict | None) -> str | None:
    """'NVIDIA H200 · 16 cores · 2026-11-28 18:11' (the GPU if any, else the CPU) from a notebook's run facts."""
    if not machine:
        return None
    return f"{machine.get('gpu') or machine.get('cpu')} · {machine.get('cpu_cores')} cores · {machine.get('date')}"


def committed_results(notebooks: list[Path], bands: dict) -> dict:
    """Per notebook: its stored records checked against the `full` bands, and the run facts `publish` kept."""
    results = {}
    for path in notebooks:
        records = read_records(path)
        meta = json.loads(path.read_text()).get("metadata", {}).get("rlgen", {})
        problems = check_bands(path.stem, "full", records, bands)
        results[path.stem] = {"records": records, "problems": problems, "status": "ok" if not problems else "out_of_band",
                              "seconds": meta.get("seconds"), "peak_rss_mb": meta.get("peak_rss_mb"),
                              "machine": machine_line(meta.get("machine"))}
    return results


def report_page(notebooks: list[Path], bands: dict) -> str:
    """The results dashboard as a page of the site: `report.results_table` of the committed notebooks, each linked
    to its page, then the ledger "When is RL worth it?"."""
    results = committed_results(notebooks, bands)
    infos = {p.stem: notebook_info(p) for p in notebooks}
    figures = {p.stem: first_figure(p) for p in notebooks}
    table = results_table(results, bands, infos, figures, lambda stem: f"{stem}.html")
    n_ok = sum(r["status"] == "ok" for r in results.values())
    n_records = sum(len(r["records"]) for r in results.values())
    entries = [dict(infos[stem], records=r["records"]) for stem, r in results.items()]
    sweep = load_sweep()
    swept = ""
    if sweep:  # every seed of the shipped sweep as a dot against the band, with mean, sd and 95% interval
        runs = {stem: {"profile": "full", "status": "ok", "seconds": None, "peak_rss_mb": None, "records": records,
                       "seeds": sweep["seeds"]} for stem, records in sweep["notebooks"].items() if stem in infos}
        swept = (f"\n## A seed sweep: every record as a distribution\nThe notebooks below were run at SEED = "
                 f"{', '.join(map(str, sweep['seeds']))} in `full` ({sweep['machine'].get('date')}); each dot is one seed.\n\n"
                 f"```{{raw}} html\n<style>{TABLE_STYLE}</style>\n"
                 f"{results_table(runs, bands, infos, figures, lambda stem: f'{stem}.html')}\n```\n")
    return f"""# Results

## When is RL worth it?
Each RL headline of the book beside the strongest non-RL use of the same reward at an equal number of reward
evaluations, from the notebooks' records; the verdict reads the 95% interval of RL − alternative over seeds (the
overview explains the table).

{ledger_markdown(ledger_rows(entries, bands, sweep=sweep["notebooks"] if sweep else None))}

## Every record against its band

Every headline number of the committed notebooks (profile `full`), drawn against its regression band from
`rlgen_utils/bands/`: the bar is the band, the dot the value (red outside). `make run` re-executes the book
and writes the same dashboard for your machine to `build/report.html`.

```{{raw}} html
<style>{TABLE_STYLE}</style>
<div class="rlgen-report"><p><b>{n_ok}/{len(results)} notebooks in band</b> · {n_records} records</p>
{table}</div>
```
{swept}"""


def stage(src: Path, directory: Path = NOTEBOOKS) -> list[Path]:
    """Write the Sphinx source folder: the notebooks (each under its own name, the overview with the navigation
    appended), the report page, conf.py and the local MathJax. Returns the staged notebooks in book order."""
    notebooks = find_notebooks(directory=directory)
    overview = next((p for p in notebooks if p.stem.startswith("00_")), None)
    if overview is None:
        raise FileNotFoundError(f"no 00_overview notebook in {directory}: the site's landing page is the overview")
    if src.exists():
        shutil.rmtree(src)
    (src / "_static").mkdir(parents=True)
    (src / "_static" / "mathjax").mkdir()
    (src / "_static" / "favicon.svg").write_text(FAVICON)
    shutil.copy2(mathjax_file(), src / "_static" / "mathjax" / "tex-svg-full.js")
    parts: dict[str, list[str]] = {}
    for path in notebooks:
        if path is not overview:
            shutil.copy2(path, src / path.name)
            parts.setdefault(path.stem[0], []).append(path.stem)
    toc = "".join(f"\n```{{toctree}}\n:caption: {PARTS.get(part, part)}\n:hidden:\n\n" + "\n".join(stems) + "\n```\n"
                  for part, stems in sorted(parts.items()))
    toc += "\n```{toctree}\n:caption: Results\n:hidden:\n\nreport\n```\n"
    nb = json.loads(overview.read_text())
    nb["cells"].append({"cell_type": "markdown", "id": "rlgen-site-navigation", "metadata": {}, "source": toc})
    (src / overview.name).write_text(json.dumps(nb))
    (src / "report.md").write_text(report_page([p for p in notebooks if p is not overview], load_bands()))
    (src / "conf.py").write_text(CONF.format(record_mime=RECORD_MIME, forge=forge_url(), root=overview.stem))
    return notebooks


def site_notebooks(directory: Path = NOTEBOOKS) -> dict[str, Path]:
    """{page name: notebook} for the site's notebook pages: each page is named after its notebook."""
    return {p.stem: p for p in find_notebooks(directory=Path(directory))}


def build_site(out: str | Path = "build/site", directory: Path = NOTEBOOKS) -> Path:
    """Build the website into OUT (index.html leads to the overview's page). Fails with Sphinx's own message on a
    broken notebook; warnings are errors, so a missing page or a broken link stops the build."""
    out = Path(out).resolve()
    src = out.parent / f"{out.name}-src"
    start = time.perf_counter()
    notebooks = stage(src, Path(directory))
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going", "-j", "2", "-d", str(src / "_doctrees"),
           str(src), str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"sphinx failed ({proc.returncode}):\n{proc.stderr.strip()[-3000:]}")
    # links a notebook's outputs make to other notebooks (the overview's ledger) point at .ipynb, as in JupyterLab
    pages = {page.stem for page in out.glob("*.html")}
    for page in out.glob("*.html"):
        text = page.read_text()
        linked = re.sub(r'href="([\w.\-]+)\.ipynb"', lambda m: f'href="{m[1]}.html"' if m[1] in pages else m[0], text)
        if linked != text:
            page.write_text(linked)
    landing = f"{notebooks[0].stem}.html"
    (out / "index.html").write_text(f'<!doctype html><meta charset="utf-8"><title>rlgen</title><link rel="icon" '
                                    f'href="data:,"><meta http-equiv="refresh" content="0; url={landing}">'
                                    f'<a href="{landing}">the book</a>')
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"site: {len(notebooks)} notebooks + the results page in {out} ({size / 2**20:.1f} MB, "
          f"{time.perf_counter() - start:.0f} s); open {out / 'index.html'}")
    return out


def build_and_check(out: str | Path, browser_check: bool = True) -> int:
    """`make book`: the website, then every page checked in headless Chromium (`browser_check`)."""
    site = build_site(out)
    if not browser_check:
        return 0
    try:
        result = check_site(site, site_notebooks(), forge=forge_url())
    except BrowserUnavailable as e:
        print(f"WARNING: the site was built but NOT checked in a browser: {e}", file=sys.stderr)
        return 0
    for problem in result["problems"]:
        print(f"site problem: {problem}", file=sys.stderr)
    print(f"browser check: {len(result['pages'])} pages visited in headless Chromium, {len(result['problems'])} problems; "
          f"landing page screenshot {result['screenshot']}")
    return 1 if result["problems"] else 0
