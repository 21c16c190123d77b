"""The book's machinery (rlgen_utils.book): band checks, a run over a tiny book (records, report, resume), publishing,
the CLI, and the committed notebooks' cleanliness."""
import json
import re
import subprocess
import sys

import nbformat
import pytest

from rlgen_utils.book import engines as book_engines
from rlgen_utils.book import run as book_run
from rlgen_utils.book.bands import check_bands, load_bands
from rlgen_utils.book.contents import find_notebooks, notebook_info
from rlgen_utils.book.publish import collapse_streams, publish
from rlgen_utils.book.results import run_key
from rlgen_utils.runtime import read_records

BANDS = {"9.9_tiny": {"smoke": {"tiny/answer": [40, 44], "tiny/half": [0.0, 1.0]}}}


def test_out_of_band_message_names_record_value_and_band():
    problems = check_bands("9.9_tiny", "smoke", {"tiny/answer": 50, "tiny/half": 0.5}, BANDS)
    assert problems == ["9.9_tiny: record 'tiny/answer' = 50 is outside its smoke band [40, 44]"]


def test_missing_record_unbanded_record_and_missing_table_fail():
    assert "did not record it" in check_bands("9.9_tiny", "smoke", {"tiny/answer": 42}, BANDS)[0]
    extra = check_bands("9.9_tiny", "smoke", {"tiny/answer": 42, "tiny/half": 0.5, "tiny/new": 1}, BANDS)
    assert extra == ["9.9_tiny: record 'tiny/new' has no smoke band: add one to bands/9.9_tiny.toml"]
    assert "no bands for profile 'full'" in check_bands("9.9_tiny", "full", {}, BANDS)[0]
    assert check_bands("9.9_tiny", "smoke", {"tiny/answer": 42, "tiny/half": 1.0}, BANDS) == []
    assert "outside" in check_bands("9.9_tiny", "smoke", {"tiny/answer": "42", "tiny/half": 1.0}, BANDS)[0]


def test_bands_file_matches_the_book():
    bands = load_bands()
    stems = {p.stem for p in find_notebooks()}
    assert set(bands) == stems, "every notebook has bands, and every band table has a notebook"
    for stem, profiles in bands.items():
        assert {"smoke", "full"} <= set(profiles) <= {"smoke", "full", "headlines", "ledger"}, \
            f"{stem}: bands for both profiles, and only the [headlines] and [ledger] tables besides"
        for profile, table in ((p, profiles[p]) for p in ("smoke", "full")):
            for name, (low, high) in table.items():
                assert low <= high, f"{stem}/{profile}/{name}: empty band"


def test_committed_notebooks_are_clean_and_in_their_full_bands():
    """Committed notebooks carry full-profile outputs inside their bands, and no papermill pin."""
    bands = load_bands()
    for path in find_notebooks():
        nb = nbformat.read(path, as_version=4)
        tags = [t for c in nb.cells for t in c.metadata.get("tags", [])]
        assert "parameters" in tags and "injected-parameters" not in tags, path.name
        assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"], path.name
        records = read_records(path)
        assert records, f"{path.name} is committed without its full outputs"
        assert check_bands(path.stem, "full", records, bands) == [], path.name


def test_notebook_info(tiny_notebook):
    assert notebook_info(tiny_notebook()) == {"notebook": "9.9_tiny", "section": "9.9", "title": "9.9 · A tiny notebook"}


def test_only_filters(tiny_notebook):
    folder = tiny_notebook("1.1a_x").parent
    tiny_notebook("1.2a_y")
    tiny_notebook("2.1a_z")
    assert [p.stem for p in find_notebooks("1.1", folder)] == ["1.1a_x"]
    assert [p.stem for p in find_notebooks("1.1,2.1", folder)] == ["1.1a_x", "2.1a_z"]
    assert [p.stem for p in find_notebooks("*_y", folder)] == ["1.2a_y"]


@pytest.mark.notebook
def test_run_writes_records_report_and_fails_out_of_band(tiny_notebook, tmp_path, monkeypatch):
    import tomllib  # noqa: F401  (the bands format)

    folder = tiny_notebook().parent
    tiny_notebook("9.9_broken", body='record("tiny/answer", 7)\nrecord("tiny/half", 0.5)')
    tiny_notebook("9.9_crash", body="raise RuntimeError('boom')")
    bands_dir = tmp_path / "bands"
    bands_dir.mkdir()
    for stem in ("9.9_tiny", "9.9_broken"):
        (bands_dir / f"{stem}.toml").write_text('[smoke]\n"tiny/answer" = [40, 44]\n"tiny/half" = [0, 1]\n')
    monkeypatch.chdir(tmp_path)  # a relative output folder, as `make run` passes it
    status = book_run.run("smoke", None, jobs=2, out="build", directory=folder, bands_dir=bands_dir)
    out = tmp_path / "build"
    assert status == 1
    written = json.loads((out / "records.json").read_text())
    machine, results = written["machine"], written["notebooks"]
    assert machine["torch"] and machine["cpu_cores"] >= 1 and "gpu" in machine and "cuda" in machine
    assert results["9.9_tiny"]["peak_gpu_mb"] is None  # no GPU here; the stats cell leaves no trace:
    assert not any("rlgen-gpu-stats" in c.metadata.get("tags", []) for c in nbformat.read(out / "executed" / "9.9_tiny.ipynb", as_version=4).cells)
    assert not list((out / "executed").glob(".*"))
    assert results["9.9_tiny"]["status"] == "ok"
    assert results["9.9_tiny"]["records"] == {"tiny/answer": 42, "tiny/half": 0.5}
    assert results["9.9_tiny"]["profile"] == "smoke" and results["9.9_tiny"]["seconds"] > 0
    assert 10 < results["9.9_tiny"]["peak_rss_mb"] < 2000
    assert results["9.9_broken"]["status"] == "out_of_band"
    assert "outside its smoke band [40, 44]" in results["9.9_broken"]["problems"][0]
    assert results["9.9_crash"]["status"] == "failed" and "boom" in results["9.9_crash"]["problems"][0]
    report = (out / "report.html").read_text()
    assert "9.9_tiny" in report and "out_of_band" in report and "[40, 44]" in report
    assert "no GPU" in report and "torch " in report and "peak memory (host; GPU)" in report
    assert "<svg" in report and "href='executed/9.9_tiny.ipynb'" in report and "1/3 notebooks ok" in report
    assert machine["wall_seconds"] > 0 and " s wall" in report
    executed = out / "executed" / "9.9_tiny.ipynb"
    # publish strips papermill's injected PROFILE so the committed copy follows RLGEN_PROFILE again
    published = publish(executed, tmp_path)
    tags = [t for c in nbformat.read(published, as_version=4).cells for t in c.metadata.get("tags", [])]
    assert "injected-parameters" in [t for c in nbformat.read(executed, as_version=4).cells for t in c.metadata.get("tags", [])]
    assert "injected-parameters" not in tags and "parameters" in tags
    facts = nbformat.read(published, as_version=4).metadata["rlgen"]  # the run's facts travel with the notebook
    assert facts["profile"] == "smoke" and facts["seconds"] == results["9.9_tiny"]["seconds"]
    assert facts["machine"]["cpu_cores"] == machine["cpu_cores"]
    cli = subprocess.run([sys.executable, "-m", "rlgen_utils", "records", str(published)], capture_output=True, text=True)
    assert json.loads(cli.stdout) == {"9.9_tiny": {"tiny/answer": 42, "tiny/half": 0.5}}
    # --resume keeps the ok notebook of this profile and runs only the others; the file is rewritten whole
    seconds_before = results["9.9_tiny"]["seconds"]
    status = book_run.run("smoke", None, jobs=1, out="build", directory=folder, bands_dir=bands_dir, resume=True)
    again = json.loads((out / "records.json").read_text())["notebooks"]
    assert status == 1 and again["9.9_tiny"]["seconds"] == seconds_before and set(again) == set(results)
    assert not list(out.glob(".*.tmp"))
    # an edited notebook is not resumed: the key is its content (and the library's code), not its name
    tiny_notebook(body='record("tiny/answer", 43)\nrecord("tiny/half", 0.5)')
    book_run.run("smoke", None, jobs=1, out="build", directory=folder, bands_dir=bands_dir, resume=True)
    edited = json.loads((out / "records.json").read_text())["notebooks"]["9.9_tiny"]
    assert edited["records"]["tiny/answer"] == 43 and edited["key"] != again["9.9_tiny"]["key"]


def test_a_run_key_follows_the_code_not_the_outputs(tmp_path):
    """Publishing a run's outputs leaves the notebook's key (what --resume compares) unchanged; editing a cell changes it."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                                         nbformat.v4.new_code_cell("print(x)")])
    path = tmp_path / "9.9_key.ipynb"
    nbformat.write(nb, path)
    key = run_key(path, "smoke", 3)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[1].metadata["execution"] = {"iopub.status.busy": "2026-12-02T21:00:00Z"}
    nb.metadata["rlgen"] = {"seconds": 1.0}
    nbformat.write(nb, path)
    assert run_key(path, "smoke", 3) == key
    assert run_key(path, "smoke", 4) != key and run_key(path, "full", 3) != key
    nb.cells[1].source = "print(x + 1)"
    nbformat.write(nb, path)
    assert run_key(path, "smoke", 3) != key
    nb.cells[1].source, nb.cells[0].metadata["tags"] = "print(x)", []
    nbformat.write(nb, path)
    assert run_key(path, "smoke", 3) != key  # the parameters tag decides where papermill injects PROFILE and SEED


def test_records_are_written_after_each_notebook(tiny_notebook, tmp_path, monkeypatch):
    """A run that dies after its first notebook still leaves that notebook's results behind."""
    folder = tiny_notebook().parent
    tiny_notebook("9.9_second")
    bands_dir = tmp_path / "bands"
    bands_dir.mkdir()
    for stem in ("9.9_tiny", "9.9_second"):
        (bands_dir / f"{stem}.toml").write_text('[smoke]\n"tiny/answer" = [40, 44]\n"tiny/half" = [0, 1]\n')
    calls = []

    def execute_then_die(path, target, profile, timeout=1800, python=None, seed=None):
        if calls:
            raise KeyboardInterrupt  # the second notebook: the run is interrupted
        calls.append(path.stem)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
        return {"status": "ok", "error": None, "peak_rss_mb": 1.0, "peak_gpu_mb": None, "seconds": 0.1}

    monkeypatch.setattr(book_engines, "execute_notebook", execute_then_die)
    with pytest.raises(KeyboardInterrupt):
        book_run.run("smoke", None, jobs=1, out=tmp_path / "build", directory=folder, bands_dir=bands_dir)
    kept = json.loads((tmp_path / "build" / "records.json").read_text())["notebooks"]
    assert list(kept) == calls and kept[calls[0]]["status"] == "out_of_band"  # no records in the copied source


def test_cli_list_and_clear_errors():
    listed = subprocess.run([sys.executable, "-m", "rlgen_utils", "list"], capture_output=True, text=True)
    assert listed.returncode == 0 and "00_overview" in listed.stdout
    bad = subprocess.run([sys.executable, "-m", "rlgen_utils", "run", "--profile", "fast"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown profile 'fast'" in bad.stderr and "Traceback" not in bad.stderr
    none = subprocess.run([sys.executable, "-m", "rlgen_utils", "run", "--only", "nothing-like-this"],
                          capture_output=True, text=True)
    assert none.returncode == 2 and "no notebook matches" in none.stderr
    jobs = subprocess.run([sys.executable, "-m", "rlgen_utils", "run", "--jobs", "-3"], capture_output=True, text=True)
    assert jobs.returncode == 2 and "give 1 or more" in jobs.stderr and "Traceback" not in jobs.stderr


def test_records_of_a_file_that_is_not_a_notebook_is_one_line(tmp_path):
    bad = tmp_path / "notes.ipynb"
    bad.write_text("not json at all")
    cli = subprocess.run([sys.executable, "-m", "rlgen_utils", "records", str(bad)], capture_output=True, text=True)
    assert cli.returncode == 2 and "is not a Jupyter notebook" in cli.stderr and "Traceback" not in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1


def test_publish_collapses_progress_bar_refreshes():
    outputs = [
        {"output_type": "stream", "name": "stderr", "text": "  0%|   | 0/3\r"},
        {"output_type": "stream", "name": "stderr", "text": " 33%|#  | 1/3\r"},
        {"output_type": "stream", "name": "stderr", "text": "100%|###| 3/3\n"},
        {"output_type": "stream", "name": "stdout", "text": "done\n"},
        {"output_type": "stream", "name": "stderr", "text": "warning\n"},
    ]
    merged = collapse_streams(outputs)
    assert [o["text"] for o in merged] == ["100%|###| 3/3\n", "done\n", "warning\n"]


# "seed" where the survey is meant (a random seed's own model is fine): "the seed's example", "the seed paper"
SEED_FOR_SURVEY = re.compile(r"\bthe seed(?:'s)? (?:example|paper|survey|section|taxonomy|figure|table)", re.I)


def test_committed_notebooks_read_cleanly():
    """The book-wide rule on committed outputs: no warnings, local paths, progress-bar debris, echoed return
    values or stderr blocks, and "seed" is never written for the survey ("the seed's example", "the seed paper")."""
    problems = []
    for path in find_notebooks():
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if SEED_FOR_SURVEY.search(cell.source):
                problems.append(f"{path.name} cell {i}: says {SEED_FOR_SURVEY.search(cell.source)[0]!r} (write \"the survey\")")
            for out in cell.get("outputs", []):
                text = out.get("text", "") + "".join(str(v) for k, v in out.get("data", {}).items() if k.startswith("text/"))
                if out.output_type == "stream" and out.name == "stderr":
                    problems.append(f"{path.name} cell {i}: a stderr block ({text.strip()[:60]!r})")
                if out.output_type == "execute_result" and set(out.get("data", {})) == {"text/plain"}:
                    problems.append(f"{path.name} cell {i}: an echoed return value ({text.strip()[:40]!r}): end the line with ';'")
                for needle, what in (("site-packages", "a local path"), ("/tmp/", "a local path"), ("/home/", "a local path"),
                                     ("/work/", "a local path"), ("Warning", "a warning"), ("\r", "progress-bar refreshes")):
                    if needle in text:
                        problems.append(f"{path.name} cell {i}: {what} in the output")
    assert not problems, "\n".join(problems)


def test_report_draws_bands_and_thumbnails(tmp_path):
    from rlgen_utils.book.report import band_marker, first_figure

    assert 'fill="#2a7"' in band_marker(0.5, [0.0, 1.0]) and 'fill="#c22"' in band_marker(2.0, [0.0, 1.0])
    assert band_marker("text", [0, 1]) == "" and band_marker(1.0, None) == ""
    assert 'fill="#2a7"' in band_marker(3.0, [3.0, 3.0])  # a zero-width band (an exact value) still draws
    nb = tmp_path / "x.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data",
                                                                             "data": {"image/png": "iVBOR\nw0KG"}}]}]}))
    assert first_figure(nb) == "iVBORw0KG" and first_figure(tmp_path / "missing.ipynb") is None
