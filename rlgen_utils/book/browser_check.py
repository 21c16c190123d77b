"""The built website checked in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright
visits every page over a local HTTP server and reports missing pages, broken internal links, JavaScript
console errors, failed requests, and notebook pages that show fewer figures than their notebook has image
outputs. A screenshot of the landing page is kept as `landing.png` in the site's folder, and one of the book's first
exercise with its solution toggled open as `exercise.png`.

`make book` runs it after building; `tests/test_site.py` runs it on every `make test`.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
# As the machine notes advise: without the background-networking flags Chromium tries Google's hosts.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class BrowserUnavailable(RuntimeError):
    """No Chromium (or no Playwright) on this machine: the message says how to get it."""


def find_chromium() -> str:
    """Path of a Chromium binary: $RLGEN_CHROMIUM, else `chromium` / `chromium-browser` on PATH."""
    for candidate in (os.environ.get("RLGEN_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    raise BrowserUnavailable("no Chromium found: install Debian's package (`sudo apt-get install chromium`) or "
                             "set RLGEN_CHROMIUM to a Chromium binary; .ci/run installs it on CI")


def image_outputs(notebook: Path) -> int:
    """How many image outputs a notebook stores (each should become one figure on its page)."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    return sum(any(t in out.get("data", {}) for t in IMAGE_TYPES) for c in cells for out in c.get("outputs", []))


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A quiet static file server on 127.0.0.1 (a free port) in a daemon thread."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def launch_links(forge: str, notebook: str) -> dict[str, str]:
    """The Colab and Binder addresses that open `notebooks/<notebook>.ipynb` of the forge's main branch."""
    org_repo = forge.rstrip("/").removeprefix("https://github.com/")
    return {"Colab": f"https://colab.research.google.com/github/{org_repo}/blob/main/notebooks/{notebook}.ipynb",
            "Binder": f"https://mybinder.org/v2/gh/{org_repo}/main?urlpath=lab/tree/notebooks/{notebook}.ipynb"}


def exercise_cells(notebook: Path) -> int:
    """How many code cells of the notebook are exercises (tagged `exercise`: the solution behind a toggle)."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    return sum(c["cell_type"] == "code" and "exercise" in c.get("metadata", {}).get("tags", []) for c in cells)


def check_exercise_toggles(page, stem: str, expected: int, forge: str | None) -> dict:
    """On a notebook's page: every exercise's solution hidden behind a toggle (MyST-NB renders the `hide-input`
    tag as a closed <details>), the first toggle opening it, and (with `forge`) a link to the exercise edition
    on Colab."""
    cells = page.locator(".cell.tag_exercise")
    toggles = page.locator(".cell.tag_exercise details")
    found = {"cells": cells.count(), "toggles": toggles.count(), "opens": False, "edition_link": None, "problems": []}
    if found["cells"] != expected or found["toggles"] != expected:
        found["problems"].append(f"{found['cells']} exercise cells and {found['toggles']} toggles shown, the notebook "
                                 f"has {expected} exercises")
    if found["toggles"]:
        first = toggles.first
        code = first.locator("pre").first
        hidden = not code.is_visible()
        first.locator("summary").first.click()
        found["opens"] = hidden and code.is_visible() and "BEGIN SOLUTION" in code.inner_text()
        if not found["opens"]:
            found["problems"].append("the first exercise's solution is not hidden until its toggle is clicked")
    if forge:
        url = launch_links(forge, f"exercises/{stem}")["Colab"]
        found["edition_link"] = url in set(page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"))
        if not found["edition_link"]:
            found["problems"].append(f"no link to the exercise edition on Colab ({url})")
    return found


def check_site(site: str | Path, notebooks: dict[str, Path], forge: str | None = None) -> dict:
    """Visit every HTML page of the site in headless Chromium. `notebooks` maps each page's name (without
    .html) to the notebook it renders; with `forge` (a GitHub address) each notebook page must offer the launch
    buttons that open that notebook in Colab and Binder (`launch_links`). Returns {"pages", "problems",
    "screenshot", "figures", "launch", "exercises"}; an empty problems list means every check passed. A page whose
    notebook has exercises must show each solution behind a toggle that opens it, and link its exercise edition."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BrowserUnavailable("Playwright is not installed: `pip install -e '.[book]'` (make does it)") from None
    site = Path(site).resolve()
    if not (site / "index.html").exists():
        raise FileNotFoundError(f"no index.html in {site}: build the site first (`make book`)")
    chromium = find_chromium()
    pages = sorted(p.relative_to(site).as_posix() for p in site.glob("*.html"))
    problems, figures, launch, exercises = [], {}, {}, {}
    (site / "exercise.png").unlink(missing_ok=True)
    server, base = serve(site)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            current = {"url": ""}
            page.on("console", lambda m: m.type == "error" and problems.append(f"{current['url']}: console error: {m.text}"))
            page.on("pageerror", lambda e: problems.append(f"{current['url']}: JavaScript error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"{current['url']}: request failed: {r.url}"))
            page.on("response", lambda r: r.status >= 400 and problems.append(f"{current['url']}: HTTP {r.status} for {r.url}"))
            for name in pages:
                current["url"] = name
                response = page.goto(base + name, wait_until="load")
                if response is None or response.status != 200:
                    problems.append(f"{name}: page did not load")
                    continue
                page.wait_for_timeout(150)  # late scripts (MathJax) report their errors
                for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
                    target = urlparse(urljoin(base + name, href))
                    if target.netloc != urlparse(base).netloc or target.scheme not in ("http", "https"):
                        continue  # external links are not followed (the machine may be offline)
                    path = site / unquote(target.path.lstrip("/"))
                    if path.is_dir():
                        path = path / "index.html"
                    if not path.exists():
                        problems.append(f"{name}: broken link {href}")
                stem = name[:-5]
                if stem in notebooks and forge:
                    hrefs = set(page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"))
                    wanted = launch_links(forge, stem)
                    launch[stem] = {k: url in hrefs for k, url in wanted.items()}
                    problems += [f"{name}: no {k} launch button to {url}" for k, url in wanted.items() if url not in hrefs]
                expected = exercise_cells(notebooks[stem]) if stem in notebooks else 0
                if expected:
                    exercises[stem] = check_exercise_toggles(page, stem, expected, forge)
                    problems += [f"{name}: {p}" for p in exercises[stem]["problems"]]
                    if exercises[stem]["opens"] and not (site / "exercise.png").exists():  # the first one, opened
                        page.wait_for_timeout(500)  # the toggle fades the code in
                        page.locator(".cell.tag_exercise").first.screenshot(path=str(site / "exercise.png"))
                if stem in notebooks:
                    shown = page.locator(".cell_output img").count()
                    stored = image_outputs(notebooks[stem])
                    figures[stem] = (shown, stored)
                    if shown < stored:
                        problems.append(f"{name}: {shown} figures shown, the notebook has {stored} image outputs")
            current["url"] = landing = f"{min(notebooks)}.html" if notebooks else "index.html"  # the overview
            page.goto(base + landing, wait_until="load")
            page.wait_for_timeout(300)
            screenshot = site / "landing.png"
            page.screenshot(path=str(screenshot))
            browser.close()
    finally:
        server.shutdown()
    missing = sorted(set(notebooks) - {p[:-5] for p in pages})
    problems += [f"{stem}: the notebook has no page in the site" for stem in missing]
    return {"pages": pages, "problems": problems, "screenshot": screenshot, "figures": figures, "launch": launch,
            "exercises": exercises}
