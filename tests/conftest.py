import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_configure(config):
    config.addinivalue_line("markers", "notebook: executes a notebook with papermill, or builds the wheel (slow)")
    config.addinivalue_line("markers", "site: builds the website and opens it in Chromium (slow)")


@pytest.fixture
def tiny_notebook(tmp_path):
    """Write a small notebook that records two values, in the book's conventions."""
    import nbformat

    def make(name="9.9_tiny", body='record("tiny/answer", 42)\nrecord("tiny/half", 0.5)'):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        params = nbformat.v4.new_code_cell('import os\nPROFILE = os.environ.get("RLGEN_PROFILE", "full")')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [
            nbformat.v4.new_markdown_cell("# 9.9 · A tiny notebook\n\ntext"),
            params,
            nbformat.v4.new_code_cell(f"from rlgen_utils import record, resolve_profile\nPROFILE = resolve_profile(PROFILE)\n{body}"),
        ]
        path = tmp_path / "notebooks" / f"{name}.ipynb"
        path.parent.mkdir(exist_ok=True)
        nbformat.write(nb, path)
        return path

    return make
