"""Every third-party module imported by the library, the book's machinery, the notebooks and the tests is declared
in pyproject: the library and the notebooks by the base dependencies (what Colab installs), the machinery by the
base and the `book` and `cluster` extras, the tests by the base and the `test`, `book` and `cluster` extras. (The
wheel test borrows this environment's packages, so without this check an undeclared import would pass there and
fail for a reader.)"""
import ast
import json
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


BASE = names(PROJECT["dependencies"])
EXTRAS = {k: names(v) for k, v in PROJECT["optional-dependencies"].items()}


def imported_modules(source: str) -> set[str]:
    """Top-level names of absolute imports (`import a.b`, `from a.b import c`) in Python source."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    lines = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return "\n".join(ln for ln in "\n".join(lines).splitlines() if not ln.lstrip().startswith(("%", "!")))


def sources() -> list[tuple[str, str, set[str]]]:
    """(where, source, the distributions allowed there)."""
    found = []
    for path in sorted((ROOT / "rlgen_utils").rglob("*.py")):
        # the machinery may use its extras (the website's `book`, the Ray engine's `cluster`), imported where needed
        machinery = "book" in path.relative_to(ROOT / "rlgen_utils").parts[:1]
        allowed = BASE | EXTRAS["book"] | EXTRAS["cluster"] if machinery else BASE
        found.append((str(path.relative_to(ROOT)), path.read_text(), allowed))
    for path in sorted((ROOT / "notebooks").rglob("*.ipynb")):
        found.append((str(path.relative_to(ROOT)), notebook_code(path), BASE))
    for path in sorted((ROOT / "tests").glob("*.py")):
        found.append((str(path.relative_to(ROOT)), path.read_text(), BASE | EXTRAS["test"] | EXTRAS["book"] | EXTRAS["cluster"]))
    return found


TEST_MODULES = {p.stem for p in (ROOT / "tests").glob("*.py")}  # tests import each other's fixtures
SOURCES = sources()


@pytest.mark.parametrize("where,source,allowed", SOURCES, ids=[where for where, _, _ in SOURCES])
def test_every_third_party_import_is_declared(where, source, allowed):
    providers = packages_distributions()
    undeclared = []
    for module in sorted(imported_modules(source) - set(sys.stdlib_module_names) - {"rlgen_utils", "__future__"} - TEST_MODULES):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        if not dists & allowed:
            undeclared.append(f"{module} (from {sorted(dists) or 'no installed distribution'})")
    assert not undeclared, f"{where} imports what pyproject does not declare for it: {undeclared}"
