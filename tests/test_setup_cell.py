"""Every notebook's setup cell is the one written from pyproject's Homepage (the forge a Colab user installs from)."""
import json

from rlgen_utils.book.setup_cell import forge_url, setup_cell_source, setup_notebooks, sync_setup_cells


def test_every_setup_cell_installs_from_the_projects_homepage():
    expected = setup_cell_source()
    assert f"git+{forge_url()}" in expected
    differ = [p.name for p in setup_notebooks() if "".join(json.loads(p.read_text())["cells"][1]["source"]) != expected]
    assert not differ, f"setup cells that differ from pyproject's Homepage: {differ}; run `python -m rlgen_utils sync-setup`"


def test_sync_rewrites_a_forks_setup_cells(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "source": ["# 9.9"]}, {"cell_type": "code", "source": ["old"]}]}
    (tmp_path / "9.9_x.ipynb").write_text(json.dumps(nb))
    changed = sync_setup_cells(tmp_path, forge="https://example.org/fork/rlgen")
    source = "".join(json.loads((tmp_path / "9.9_x.ipynb").read_text())["cells"][1]["source"])
    assert [p.name for p in changed] == ["9.9_x.ipynb"] and "git+https://example.org/fork/rlgen" in source
    assert sync_setup_cells(tmp_path, forge="https://example.org/fork/rlgen") == []  # idempotent


def test_colab_installs_the_base_dependencies_through_the_lock():
    """The Colab branch reads the installed package's requirements (extras and torch left out) and installs them
    with the forge's requirements.lock as constraints: that list is pyproject's base dependencies without torch."""
    import tomllib
    from importlib.metadata import requires

    from rlgen_utils.book.setup_cell import ROOT, lock_url

    source = setup_cell_source()
    assert f"-c {lock_url(forge_url())} -r rlgen-requirements.txt" in source and "--no-deps git+" in source
    wanted = [r for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
              if not r.startswith("torch")]
    colab = [r for r in requires("rlgen_utils") if "extra ==" not in r and not r.startswith("torch")]
    norm = lambda reqs: sorted(r.replace(" ", "").replace("'", '"') for r in reqs)
    assert norm(colab) == norm(wanted)
    assert lock_url("https://github.com/a/b") == "https://raw.githubusercontent.com/a/b/main/requirements.lock"
