"""Every notebook executed by papermill in the smoke profile, its records checked against the bands."""
import pytest

from rlgen_utils.runner import check_bands, execute_notebook, find_notebooks, read_records


@pytest.mark.notebook
@pytest.mark.parametrize("path", find_notebooks(), ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_within_its_bands(path, tmp_path):
    target = tmp_path / path.name
    result = execute_notebook(path, target, "smoke", timeout=600)
    assert result["status"] == "ok", f"{path.stem} failed: {result['error']}"
    problems = check_bands(path.stem, "smoke", read_records(target))
    assert not problems, "\n".join(problems)
