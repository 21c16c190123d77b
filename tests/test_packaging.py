"""pyproject.toml and environment.yml (Binder) pin the same packages; the Makefile pins torch first."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    lines = (ROOT / "environment.yml").read_text().splitlines()
    pip_lines = {ln.strip()[2:].strip() for ln in lines if re.match(r"^\s{6}- [a-zA-Z]", ln)}
    assert pip_lines == wanted
    assert "python=3.11" in (ROOT / "environment.yml").read_text()


def test_torch_range_admits_the_local_cpu_build_and_make_installs_it_first():
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = Requirement(next(d for d in project["dependencies"] if d.startswith("torch")))
    assert torch_req.specifier.contains("2.13.0")
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in makefile
    assert makefile.index('"$(TORCH)"') < makefile.index('-e ".[dev]"')
    assert "make test" in (ROOT / ".ci" / "run").read_text()
