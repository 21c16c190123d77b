"""Every exercise edition (notebooks/exercises/*.ipynb, solutions stubbed) executed alone from the wheel in the smoke
profile, the way a reader opens it on Colab before writing anything: each of its checks must say "not yet solved",
the notebook must run to its end on the reference implementations, and its smoke records must stay in the book's
bands (a stub edition computes what the book computes)."""
import re
import shutil

import nbformat
import pytest
from test_notebooks import installed_python  # noqa: F401  the session's clean environment with the wheel

from rlgen_utils.book.edition import EDITIONS
from rlgen_utils.exercises import exercises_of
from rlgen_utils.book.bands import check_bands
from rlgen_utils.book.execute import execute_notebook
from rlgen_utils.runtime import read_records


def printed_lines(path) -> list[str]:
    lines = []
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                lines += output.get("text", "").splitlines()
    return lines


@pytest.mark.notebook
@pytest.mark.parametrize("path", sorted(EDITIONS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_exercise_edition_runs_alone_from_the_wheel_in_smoke(path, tmp_path, installed_python):  # noqa: F811
    alone = tmp_path / "empty_folder"
    alone.mkdir()
    shutil.copy2(path, alone / path.name)
    target = tmp_path / "out" / path.name
    result = execute_notebook(alone / path.name, target, "smoke", timeout=600, python=installed_python)
    assert result["status"] == "ok", f"the exercise edition of {path.stem} failed alone from the wheel: {result['error']}"
    lines = printed_lines(target)
    said = {m.group(1): line for line in lines if (m := re.match(r"^(?:[✓✗] )?Exercise ([\w.]+)[ :]", line))}
    for exercise in exercises_of(path.stem):
        assert said.get(exercise.id, "").startswith(f"Exercise {exercise.id} not yet solved"), \
            f"{path.stem}: exercise {exercise.id} printed {said.get(exercise.id)!r}"
    problems = check_bands(path.stem, "smoke", read_records(target))
    assert not problems, "\n".join(problems)
