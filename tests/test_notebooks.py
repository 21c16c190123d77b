"""Every notebook executed once, by papermill, in the smoke profile — the way Colab and Binder run it: the package
installed from a freshly built wheel into a clean virtual environment, and the notebook copied alone into an empty
folder (no clone, no neighbours, no data/ folder), so what a notebook needs at run time must travel inside the wheel.

A notebook with exercises runs as its exercise edition (notebooks/exercises/, the book with each solution region
stubbed), the way a reader opens it before writing anything: each check must say "not yet solved" and the notebook
must run to its end on the reference implementations. The edition differs from the book only in those regions
(tests/test_exercise_edition.py puts the solutions back and gets the book), and the book's solutions are run against
their checks there too, so one execution covers both editions.

That one execution is checked three ways: its records against the book's bands, the text outputs of every cell
marked `# NBVAL_CHECK_OUTPUT` (an exact, deterministic result; nbval's marker) against the committed notebook's, and
the exercises' lines. (The wheel's dependencies come from this environment through a .pth line;
tests/test_declared_imports.py checks that every third-party module the library and the notebooks import is
declared in pyproject.)"""
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

from rlgen_utils.book.bands import check_bands
from rlgen_utils.book.contents import find_notebooks
from rlgen_utils.book.edition import EDITIONS
from rlgen_utils.book.execute import execute_notebook
from rlgen_utils.exercises import exercises_of
from rlgen_utils.runtime import RECORD_MIME, read_records

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def installed_python(tmp_path_factory) -> str:
    """A clean virtual environment with rlgen_utils installed from a wheel built now. Its dependencies come
    from this environment's site-packages (added by a .pth line, which does not load the editable install)."""
    root = tmp_path_factory.mktemp("wheel")
    # built from a copy: each xdist worker builds its own wheel, and setuptools writes build/ and *.egg-info into the tree
    source = root / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info",
                                                                "__pycache__", ".pytest_cache", ".ruff_cache"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(root / "dist"), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, f"building the wheel failed:\n{built.stderr[-3000:]}"
    wheel = next((root / "dist").glob("rlgen_utils-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "env")], check=True)
    site = next((root / "env" / "lib").glob("python*/site-packages"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = root / "env" / "bin" / "python"
    where = subprocess.run([str(python), "-c", "import rlgen_utils; print(rlgen_utils.__file__)"], cwd=root,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site)), f"rlgen_utils came from {where}, not from the wheel"
    return str(python)


@pytest.mark.notebook
def test_the_wheel_carries_the_package_data(installed_python):
    files = ["bands/1.1a_vae.toml", "nas/nas_table.csv", "book/book_index.json"]
    code = "import importlib.resources as r; print([r.files('rlgen_utils').joinpath(f).is_file() for f in %r])" % files
    out = subprocess.run([installed_python, "-c", code], capture_output=True, text=True, check=True, cwd="/").stdout
    assert out.strip() == str([True] * len(files))


@pytest.mark.notebook
@pytest.mark.parametrize("path", find_notebooks(), ids=lambda p: p.stem)
def test_notebook_runs_alone_from_the_wheel_in_smoke_within_its_bands(path, tmp_path, installed_python):
    edition = EDITIONS / path.name
    source = edition if edition.exists() else path
    alone = tmp_path / "empty_folder"
    alone.mkdir()
    shutil.copy2(source, alone / path.name)
    target = tmp_path / "out" / path.name
    result = execute_notebook(alone / path.name, target, "smoke", timeout=600, python=installed_python)
    what = f"the exercise edition of {path.stem}" if source == edition else path.stem
    assert result["status"] == "ok", f"{what} failed alone from the wheel: {result['error']}"
    problems = check_bands(path.stem, "smoke", read_records(target))
    assert not problems, "\n".join(problems)
    committed, executed = checked_outputs(path), checked_outputs(target)
    assert executed == committed, f"{what}: a cell marked NBVAL_CHECK_OUTPUT printed something else than committed"
    said = {m.group(1): line for line in printed_lines(target) if (m := EXERCISE_LINE.match(line))}
    for exercise in exercises_of(path.stem):
        assert said.get(exercise.id, "").startswith(f"Exercise {exercise.id} not yet solved"), \
            f"{what}: exercise {exercise.id} printed {said.get(exercise.id)!r}"


EXERCISE_LINE = re.compile(r"^(?:[✓✗] )?Exercise ([\w.]+)[ :]")


def printed_lines(path: Path) -> list[str]:
    return [line for cell in nbformat.read(path, as_version=4).cells for output in cell.get("outputs", [])
            if output.get("output_type") == "stream" for line in output.get("text", "").splitlines()]


CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def checked_outputs(notebook: Path) -> dict[str, list[str]]:
    """{source: its text outputs} of the cells marked `# NBVAL_CHECK_OUTPUT`: streams and text/plain, records
    left out (their values are checked by the bands)."""
    found = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARK):
            found[cell.source] = [o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
                                  for o in cell.outputs if RECORD_MIME not in o.get("data", {})]
    return found


def test_checked_outputs_reads_marked_cells_only(tmp_path):
    nb = nbformat.v4.new_notebook()
    marked, other = nbformat.v4.new_code_cell(f"{CHECK_MARK}\nprint(1)"), nbformat.v4.new_code_cell("print(2)")
    marked.outputs = [nbformat.v4.new_output("stream", text="1\n"),
                      nbformat.v4.new_output("display_data", data={RECORD_MIME: {"name": "a", "value": 1}, "text/plain": "a = 1"})]
    other.outputs = [nbformat.v4.new_output("stream", text="2\n")]
    nb.cells = [marked, other]
    nbformat.write(nb, tmp_path / "x.ipynb")
    assert checked_outputs(tmp_path / "x.ipynb") == {marked.source: ["1\n"]}
