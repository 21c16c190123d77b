"""The README's notebook table lists exactly the notebooks of the book, and shows the two commands."""
import re
from pathlib import Path

from rlgen_utils.book.contents import find_notebooks

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_table_lists_every_notebook():
    linked = set(re.findall(r"\]\(notebooks/([^)]+)\.ipynb\)", README))
    assert linked == {p.stem for p in find_notebooks()}


def test_readme_shows_the_two_commands():
    assert "make run" in README and "make test" in README
