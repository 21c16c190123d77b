"""Every notebook executed by papermill in the smoke profile, its records checked against the bands — the
way Colab and Binder run it: the package installed from a freshly built wheel into a clean virtual
environment, and the notebook copied alone into an empty folder (no clone, no neighbours, no data/ folder).
What a notebook needs at run time must therefore travel inside the wheel."""
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from rlgen_utils.runner import check_bands, execute_notebook, find_notebooks, read_records

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def installed_python(tmp_path_factory) -> str:
    """A clean virtual environment with rlgen_utils installed from a wheel built now. Its dependencies come
    from this environment's site-packages (added by a .pth line, which does not load the editable install)."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "dist"),
                    str(ROOT)], check=True, capture_output=True)
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


def test_the_wheel_carries_the_package_data(installed_python):
    files = ["bands/1.1a_vae.toml", "nas/nas_table.csv", "book_index.json"]
    code = "import importlib.resources as r; print([r.files('rlgen_utils').joinpath(f).is_file() for f in %r])" % files
    out = subprocess.run([installed_python, "-c", code], capture_output=True, text=True, check=True, cwd="/").stdout
    assert out.strip() == str([True] * len(files))


@pytest.mark.notebook
@pytest.mark.parametrize("path", find_notebooks(), ids=lambda p: p.stem)
def test_notebook_runs_alone_from_the_wheel_in_smoke_within_its_bands(path, tmp_path, installed_python):
    alone = tmp_path / "empty_folder"
    alone.mkdir()
    shutil.copy2(path, alone / path.name)
    target = tmp_path / "out" / path.name
    result = execute_notebook(alone / path.name, target, "smoke", timeout=600, python=installed_python)
    assert result["status"] == "ok", f"{path.stem} failed alone from the wheel: {result['error']}"
    problems = check_bands(path.stem, "smoke", read_records(target))
    assert not problems, "\n".join(problems)
