"""The setup cell every notebook starts with, written from one place: the project's `Homepage` in
pyproject.toml. On Colab a notebook arrives alone, so its setup cell installs the package from that forge and its
dependencies through the forge's requirements.lock (the versions the book was run and tested with);
a fork changes `Homepage` and runs `python -m rlgen_utils sync-setup`, which rewrites every notebook's setup
cell (and the template's) to match. `tests/test_setup_cell.py` fails when one differs."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SETUP_CELL = """# Setup: works in JupyterLab, Binder and Colab (installs rlgen_utils there when it is missing).
import importlib.util, os, sys
if importlib.util.find_spec("rlgen_utils") is None:
    if os.path.isdir("../rlgen_utils"):  # a clone opened without `make`
        sys.path.insert(0, os.path.abspath(".."))
    else:  # Colab: the package, then its dependencies at the project's locked versions (Colab's own torch is kept)
        get_ipython().run_line_magic("pip", "install -q --no-deps git+{forge}")
        from importlib.metadata import requires
        with open("rlgen-requirements.txt", "w") as f:
            f.write("\\n".join(r for r in requires("rlgen_utils") if "extra ==" not in r and not r.startswith("torch")))
        get_ipython().run_line_magic("pip", "install -q -c {lock} -r rlgen-requirements.txt")"""


def lock_url(forge: str) -> str:
    """Where a notebook opened alone reads requirements.lock: the raw file on the forge's main branch."""
    if forge.startswith("https://github.com/"):
        return forge.replace("https://github.com/", "https://raw.githubusercontent.com/", 1).rstrip("/") + "/main/requirements.lock"
    return forge.rstrip("/") + "/raw/main/requirements.lock"


def forge_url(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The repository the setup cell installs from: `[project.urls] Homepage` of pyproject.toml."""
    try:
        return tomllib.loads(Path(pyproject).read_text())["project"]["urls"]["Homepage"]
    except (OSError, KeyError) as e:
        raise FileNotFoundError(f"no [project.urls] Homepage in {pyproject} ({e}): run this from a clone of the project") from None


def setup_cell_source(forge: str | None = None) -> str:
    forge = forge or forge_url()
    return SETUP_CELL.format(forge=forge, lock=lock_url(forge))


def setup_notebooks(directory: Path = ROOT / "notebooks") -> list[Path]:
    """Every notebook that starts with a setup cell: the book's notebooks and the template."""
    return sorted(Path(directory).glob("*.ipynb")) + sorted(Path(directory).glob("templates/*.ipynb"))


def sync_setup_cells(directory: Path = ROOT / "notebooks", forge: str | None = None) -> list[Path]:
    """Rewrite the setup cell (the second cell) of every notebook from `setup_cell_source`; returns the changed ones."""
    source, changed = setup_cell_source(forge), []
    for path in setup_notebooks(directory):
        nb = json.loads(path.read_text())
        cell = nb["cells"][1]
        if "".join(cell["source"]) != source:
            cell["source"] = source.splitlines(keepends=True)
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            changed.append(path)
    return changed
