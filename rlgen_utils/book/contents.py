"""The book's contents: its notebooks, each one's survey section and title, and the index of every notebook's
headline records that ships inside the package (`book_index.json`), so that the overview opened alone (Colab,
Binder, an installed wheel) still shows the whole book. `python -m rlgen_utils publish` rewrites the index;
`tests/test_contents.py` checks it matches the committed notebooks."""
from __future__ import annotations

import fnmatch
import json
import re
from importlib import resources
from pathlib import Path

from ..runtime import read_records

ROOT = Path(__file__).resolve().parent.parent.parent
NOTEBOOKS = ROOT / "notebooks"
INDEX_NAME = "book_index.json"


def find_notebooks(only: str | None = None, directory: Path = NOTEBOOKS) -> list[Path]:
    """The book's notebooks (top level of notebooks/), sorted; `only` keeps those whose name contains
    or glob-matches one of its comma-separated patterns (e.g. "1.1", "2.2a,2.2b", "*seqgan*")."""
    paths = sorted(p for p in Path(directory).glob("*.ipynb") if not p.name.startswith("."))
    if only:
        patterns = [p.strip() for p in str(only).split(",") if p.strip()]
        paths = [p for p in paths if any(pat in p.stem or fnmatch.fnmatch(p.stem, pat) for pat in patterns)]
    return paths


def notebook_info(path: Path) -> dict:
    """Survey section (from the file name: '1.1a_vae' -> '1.1') and title (the first markdown heading)."""
    import nbformat

    stem = Path(path).stem
    number = stem.split("_", 1)[0]
    section = re.sub(r"[a-z]+$", "", number) or number
    title = stem
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#+\s*(.+)$", cell.source, flags=re.M)
            if match:
                title = match.group(1).strip()
                break
    return {"notebook": stem, "section": section, "title": title}


def make_book_index(directory: Path = NOTEBOOKS) -> list[dict]:
    """Section, title and stored records of every content notebook (the overview itself left out)."""
    return [dict(notebook_info(p), records=read_records(p))
            for p in find_notebooks(directory=directory) if not p.stem.startswith("00_")]


def write_book_index(directory: Path = NOTEBOOKS) -> Path:
    """Rewrite rlgen_utils/book/book_index.json from the committed notebooks."""
    target = Path(__file__).with_name(INDEX_NAME)
    target.write_text(json.dumps(make_book_index(directory), indent=1, ensure_ascii=False) + "\n")
    return target


def book_contents(directory: str | Path | None = None) -> tuple[list[dict], str]:
    """(entries, where they came from) for the overview: the notebooks in `directory` (default: the current
    folder) when there are any, else the index shipped in the package."""
    here = Path.cwd() if directory is None else Path(directory)
    neighbours = make_book_index(here)
    if neighbours:
        return neighbours, "the notebooks next to this one"
    shipped = resources.files("rlgen_utils.book").joinpath(INDEX_NAME)
    return json.loads(shipped.read_text()), "the index shipped in the package (this notebook was opened alone)"
