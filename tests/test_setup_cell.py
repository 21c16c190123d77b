"""Every notebook's setup cell is the one written from pyproject's Homepage (the forge a Colab user installs from)."""
import json

from rlgen_utils.setup_cell import forge_url, setup_cell_source, setup_notebooks, sync_setup_cells


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
