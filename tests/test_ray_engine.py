"""The Ray engine on an embedded local Ray: two of the book's notebooks x two seeds in `smoke` give the same records
as the local engine, and killing a Ray worker mid-sweep loses only the task it was running (Ray runs it again).
Ray is the `cluster` extra; `make test` installs it."""
import json
import shutil

import pytest
import ray

from rlgen_utils.book.contents import find_notebooks
from rlgen_utils.book.run import run

from test_engines import BAND, seeded_notebook

# Two of the quickest notebooks in smoke: an MDP solved exactly, and the KL-regularised optimum in closed form.
PAIR = ("1.2a", "2.2c")


@pytest.fixture(scope="module")
def local_ray():
    # Ray's raylet gives its agents a fixed 15 s to start (ray-project/ray#65983): on two busy cores, try twice
    for attempt in (1, 2):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    yield
    ray.shutdown()


@pytest.mark.notebook
def test_ray_gives_the_local_engines_records(tmp_path, local_ray):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for path in find_notebooks(",".join(PAIR)):
        shutil.copy2(path, folder / path.name)
    records = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        run("smoke", None, jobs=2, out=out, directory=folder, seeds=[0, 1], engine=engine)  # 1: SEED 1 may leave a band
        written = json.loads((out / "records.json").read_text())
        assert all(e["status"] in ("ok", "out_of_band") for e in written["notebooks"].values()), written
        assert written["engine"] == engine
        records[engine] = {stem: e["records"] for stem, e in written["notebooks"].items()}
    assert len(records["ray"]) == 2 and records["ray"] == records["local"]


@pytest.mark.notebook
def test_killing_a_ray_worker_loses_only_its_running_task(tmp_path, local_ray):
    folder, bands = tmp_path / "notebooks", tmp_path / "bands"
    bands.mkdir()
    marker = tmp_path / "killed-once"
    kill = (f"import pathlib, psutil\nif not pathlib.Path({str(marker)!r}).exists():\n"
            f"    pathlib.Path({str(marker)!r}).write_text('x')\n"
            "    psutil.Process().parent().parent().kill()  # the Ray worker that runs this task")
    seeded_notebook(folder, "9.9a_one", before=kill)
    seeded_notebook(folder, "9.9b_two")
    for name in ("9.9a_one", "9.9b_two"):
        (bands / f"{name}.toml").write_text(BAND)
    out = tmp_path / "sweep"
    assert run("smoke", None, out=out, directory=folder, bands_dir=bands, seeds=[0, 1], engine="ray") == 0
    written = json.loads((out / "records.json").read_text())["notebooks"]
    assert marker.exists()  # one worker was killed, its task ran again, and every (notebook, seed) finished
    assert {stem: e["records"]["tiny/seed"] for stem, e in written.items()} == {"9.9a_one": [0, 1], "9.9b_two": [0, 1]}
