"""The book's contents and the records index shipped in the wheel (what the overview shows when opened alone)."""
import json

from rlgen_utils.book.contents import INDEX_NAME, NOTEBOOKS, book_contents, find_notebooks, make_book_index, notebook_info


def test_the_shipped_index_matches_the_committed_notebooks():
    shipped = json.loads((NOTEBOOKS.parent / "rlgen_utils" / "book" / INDEX_NAME).read_text())
    assert shipped == json.loads(json.dumps(make_book_index())), (
        "rlgen_utils/book/book_index.json is stale: `python -m rlgen_utils publish` rewrites it (or call "
        "rlgen_utils.book.contents.write_book_index())")


def test_book_contents_prefers_neighbours_and_falls_back_to_the_index(tmp_path, tiny_notebook):
    entries, source = book_contents(tmp_path)  # an empty folder: the shipped index
    assert "shipped" in source and len(entries) == len(find_notebooks()) - 1
    path = tiny_notebook()  # tmp_path/notebooks/9.9_tiny.ipynb, not executed: no records
    entries, source = book_contents(path.parent)
    assert "next to" in source
    assert entries == [dict(notebook_info(path), records={})]
    assert entries[0]["section"] == "9.9" and entries[0]["title"] == "9.9 · A tiny notebook"


def test_every_notebook_opens_with_its_numbered_title():
    """The title cell ('# 1.1a · ...') names the page in the website and the row in the overview and report."""
    for path in find_notebooks():
        number = path.stem.split("_")[0]
        title = notebook_info(path)["title"]
        assert title.startswith(f"{number} ·"), f"{path.name}: first heading {title!r} should start with '{number} ·'"
