"""The website (`make book`) built from the committed notebooks and opened in a real browser: headless
Chromium visits every page and fails on a missing page, a broken internal link, a JavaScript console error, a
failed request, or a notebook page with fewer figures than its notebook has image outputs.

Where Chromium cannot be had the test is skipped with the reason in pytest's summary; CI sets
RLGEN_REQUIRE_BROWSER=1 (.ci/run installs Debian's chromium), which turns that skip into a failure."""
import os

import pytest

from rlgen_utils.book.website import build_site, report_page, site_notebooks
from rlgen_utils.book.browser_check import BrowserUnavailable, check_site, exercise_cells, find_chromium, image_outputs
from rlgen_utils.book.setup_cell import forge_url


def browser_or_skip():
    try:
        return find_chromium()
    except BrowserUnavailable as e:
        if os.environ.get("RLGEN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"RLGEN_REQUIRE_BROWSER=1 but {e}")
        pytest.skip(f"BROWSER TEST NOT RUN: {e}")


@pytest.mark.site
def test_site_builds_and_every_page_passes_in_headless_chromium(tmp_path):
    browser_or_skip()
    notebooks = site_notebooks()
    site = build_site(tmp_path / "site")
    result = check_site(site, notebooks, forge=forge_url())
    assert not result["problems"], "\n".join(result["problems"])
    pages = set(result["pages"])
    assert {f"{name}.html" for name in notebooks} | {"report.html", "index.html"} <= pages
    # every notebook page opens its own notebook in Colab and in Binder (the theme's launch buttons)
    assert result["launch"] == {name: {"Colab": True, "Binder": True} for name in notebooks}
    # every notebook with exercises shows each solution behind a toggle that opens it, and links its exercise edition
    with_exercises = {name for name, path in notebooks.items() if exercise_cells(path)}
    assert set(result["exercises"]) == with_exercises and len(with_exercises) >= 27
    assert all(found["opens"] and found["edition_link"] for found in result["exercises"].values())
    assert (site / "exercise.png").stat().st_size > 5_000  # the first exercise, its solution toggled open
    assert result["screenshot"].stat().st_size > 10_000  # a rendered page, not a blank one
    # the checker compares against the notebooks' real image outputs: a page with none is not vacuous
    assert sum(stored for _, stored in result["figures"].values()) >= len(notebooks)


def test_report_page_links_every_notebook_page_and_draws_every_record(tmp_path):
    notebooks = {k: v for k, v in site_notebooks().items() if not k.startswith("00_")}
    from rlgen_utils.book.bands import load_bands
    from rlgen_utils.runtime import read_records

    page = report_page(list(notebooks.values()), load_bands())
    for stem, path in notebooks.items():
        assert f"href='{stem}.html'" in page
        for name in read_records(path):
            assert f"<code>{name}</code>" in page


def test_image_outputs_counts_what_a_notebook_stores(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "AAAA", "text/plain": "<Figure>"}),
                    nbformat.v4.new_output("stream", text="hello"),
                    nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=1),
                    nbformat.v4.new_output("display_data", data={"image/svg+xml": "<svg/>"})]
    nb.cells = [cell, nbformat.v4.new_markdown_cell("text")]
    nbformat.write(nb, tmp_path / "x.ipynb")
    assert image_outputs(tmp_path / "x.ipynb") == 2


def test_missing_site_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="make book"):
        check_site(tmp_path, {})
