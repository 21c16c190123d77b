"""Seed sweeps (`python -m rlgen_utils run --seeds ... --engine local|ray`): notebooks x seeds as tasks, every
seed's records kept, a task that dies retried once (and only it), resume by (notebook, seed), and the same records
from Ray as from the local engine."""
import json

import nbformat
import pytest

from rlgen_utils.book.engines import uses_gpu
from rlgen_utils.book.results import publish_sweep
from rlgen_utils.book.run import parse_seeds, run

BAND = '[smoke]\n"tiny/seed" = [0, 100000000]\n"tiny/draw" = [0, 1]\n[full]\n"tiny/seed" = [0, 100000000]\n"tiny/draw" = [0, 1]\n'


def seeded_notebook(folder, name, before=""):
    """A notebook that records its SEED and a draw from a stream derived from it (`derived_seed`)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('import os\nPROFILE = os.environ.get("RLGEN_PROFILE", "full")\nSEED = 0')
    params.metadata["tags"] = ["parameters"]
    body = (f"{before}\nimport torch\nfrom rlgen_utils import derived_seed, record\n"
            'record("tiny/seed", SEED)\n'
            'record("tiny/draw", torch.rand(1, generator=torch.Generator().manual_seed(derived_seed(SEED, 3))).item())')
    nb.cells = [nbformat.v4.new_markdown_cell(f"# 9.9 · {name}"), params, nbformat.v4.new_code_cell(body)]
    folder.mkdir(exist_ok=True)
    nbformat.write(nb, folder / f"{name}.ipynb")
    return folder / f"{name}.ipynb"


@pytest.fixture
def book(tmp_path):
    folder, bands = tmp_path / "notebooks", tmp_path / "bands"
    bands.mkdir()
    for name in ("9.9a_one", "9.9b_two"):
        seeded_notebook(folder, name)
        (bands / f"{name}.toml").write_text(BAND)
    return folder, bands


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3] and parse_seeds("0,3,5-7") == [0, 3, 5, 6, 7] and parse_seeds(None) is None
    for bad in ("a-b", "3-1", "1,1", "-2"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


def test_uses_gpu_reads_the_device_choice(tmp_path):
    def with_code(code):
        path = tmp_path / "x.ipynb"
        path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": code}]}))
        return uses_gpu(path)

    assert with_code("device = get_device()") and not with_code("device = get_device(cpu_bound=True)")


@pytest.mark.notebook
def test_a_local_sweep_keeps_every_seed_and_resumes_by_notebook_and_seed(book, tmp_path):
    folder, bands = book
    out = tmp_path / "sweep"
    assert run("smoke", None, jobs=2, out=out, directory=folder, bands_dir=bands, seeds=[0, 1]) == 0
    written = json.loads((out / "records.json").read_text())
    assert written["seeds"] == [0, 1] and written["engine"] == "local"
    entry = written["notebooks"]["9.9a_one"]
    assert entry["records"]["tiny/seed"] == [0, 1]  # the sweep's seed reached the notebook's SEED
    draws = entry["records"]["tiny/draw"]
    assert draws[0] != draws[1] and set(entry["seeds"]) == {"0", "1"}
    assert (out / "executed" / "seed-1" / "9.9b_two.ipynb").exists()
    assert "over 2 seeds" in (out / "report.html").read_text()  # each record drawn as a distribution
    before = {k: e["seconds"] for k, e in entry["seeds"].items()}
    seeded_notebook(folder, "9.9b_two", before="x = 1")  # an edit: only that notebook's tasks run again
    assert run("smoke", None, jobs=2, out=out, directory=folder, bands_dir=bands, seeds=[0, 1], resume=True) == 0
    again = json.loads((out / "records.json").read_text())["notebooks"]
    assert {k: e["seconds"] for k, e in again["9.9a_one"]["seeds"].items()} == before
    assert again["9.9b_two"]["records"]["tiny/draw"] == written["notebooks"]["9.9b_two"]["records"]["tiny/draw"]


@pytest.mark.notebook
def test_a_task_whose_process_dies_is_retried_once_and_loses_only_itself(book, tmp_path):
    folder, bands = book
    marker = tmp_path / "killed-once"
    kill = (f"import pathlib, psutil\nif not pathlib.Path({str(marker)!r}).exists():\n"
            f"    pathlib.Path({str(marker)!r}).write_text('x')\n    psutil.Process().parent().kill()  # the task's process")
    seeded_notebook(folder, "9.9a_one", before=kill)
    out = tmp_path / "sweep"
    assert run("smoke", None, jobs=2, out=out, directory=folder, bands_dir=bands, seeds=[0, 1]) == 0
    seeds = json.loads((out / "records.json").read_text())["notebooks"]["9.9a_one"]["seeds"]
    assert sorted(e["attempts"] for e in seeds.values()) == [1, 2] and marker.exists()


def test_publish_sweep_ships_only_a_finished_full_sweep(tmp_path):
    records = {"profile": "full", "seeds": [0, 1, 2, 3, 4], "engine": "local", "machine": {"cpu": "x"},
               "notebooks": {"9.9a_one": {"status": "ok", "records": {"a/b": [1, 2, 3, 4, 5]}}}}
    (tmp_path / "records.json").write_text(json.dumps(records))
    shipped = json.loads(publish_sweep(tmp_path / "records.json", tmp_path / "sweep.json").read_text())
    assert shipped["notebooks"] == {"9.9a_one": {"a/b": [1, 2, 3, 4, 5]}} and shipped["seeds"] == [0, 1, 2, 3, 4]
    (tmp_path / "short.json").write_text(json.dumps(dict(records, seeds=[0, 1])))
    with pytest.raises(ValueError, match=">= 5 seeds"):
        publish_sweep(tmp_path / "short.json", tmp_path / "sweep.json")
    # a seed outside a band is shipped (the report flags it); a task that failed is not
    (tmp_path / "oob.json").write_text(json.dumps(dict(records, notebooks={"9.9a_one": dict(records["notebooks"]["9.9a_one"], status="out_of_band")})))
    publish_sweep(tmp_path / "oob.json", tmp_path / "sweep.json")
    (tmp_path / "failed.json").write_text(json.dumps(dict(records, notebooks={"9.9a_one": dict(records["notebooks"]["9.9a_one"], status="failed")})))
    with pytest.raises(ValueError, match="did not run to their end"):
        publish_sweep(tmp_path / "failed.json", tmp_path / "sweep.json")
