"""The library's shape, as docs/architecture.md describes it: every path the docs name exists, the map's
"used by" column is what the notebooks import, modules stay small with their imports at the top."""
import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["docs/architecture.md", "README.md", "CONTRIBUTING.md", "data/README.md"]
PATH = re.compile(r"\b((?:rlgen_utils|tests|notebooks|docs|data)/[\w./-]*\w)(?![\w<])")


def notebook_imports() -> dict:
    """{module: {notebook number}} for every `from rlgen_utils... import` in the notebooks' code."""
    used = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        for module in re.findall(r"^from rlgen_utils\.([\w.]+) import", code, re.M):
            used.setdefault(module, set()).add(path.stem.split("_")[0])
    return used


def architecture_map() -> dict:
    """{module: {notebook number}} from the table in docs/architecture.md."""
    table, every = {}, {p.stem.split("_")[0] for p in (ROOT / "notebooks").glob("*.ipynb")}
    for line in (ROOT / "docs/architecture.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        parts = [p.strip(" `") for p in cells[0].split("/")]
        prefix = parts[0].rsplit(".", 1)[0] + "." if "." in parts[0] else ""
        modules = [parts[0]] + [prefix + p for p in parts[1:]]
        users = [u.strip() for u in cells[2].split("/")] if len(modules) > 1 and "/" in cells[2] else [cells[2]] * len(modules)
        for module, text in zip(modules, users):
            table[module] = every if text == "every notebook" else set() if text == "(library)" else set(text.split())
    return table


@pytest.mark.parametrize("doc", DOCS)
def test_every_path_the_docs_name_exists(doc):
    missing = [p for p in PATH.findall((ROOT / doc).read_text()) if not (ROOT / p).exists() and "<" not in p]
    assert not missing, f"{doc} names paths that do not exist: {missing}"


def test_every_path_the_library_names_exists():
    missing = []
    for file in (ROOT / "rlgen_utils").rglob("*.py"):
        missing += [f"{file.name}: {p}" for p in PATH.findall(file.read_text()) if not (ROOT / p).exists()]
    assert not missing, missing


def test_the_map_lists_every_module_with_the_notebooks_that_use_it():
    table, used = architecture_map(), notebook_imports()
    modules = {".".join(p.relative_to(ROOT / "rlgen_utils").with_suffix("").parts)
               for p in (ROOT / "rlgen_utils").rglob("*.py") if not p.name.startswith("__")}
    assert set(table) == modules, f"modules missing from the map: {modules - set(table)}; in the map only: {set(table) - modules}"
    for module in modules:
        if module in ("runtime", "plots"):
            continue  # imported as `from rlgen_utils import ...` too: "every notebook" is checked loosely
        assert table[module] == used.get(module, set()), f"{module}: the map says {sorted(table[module])}, the notebooks import it in {sorted(used.get(module, set()))}"


@pytest.mark.parametrize("file", sorted((ROOT / "rlgen_utils").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_are_small_with_imports_at_the_top(file):
    source = file.read_text()
    assert len(source.splitlines()) <= 420, f"{file.name} has {len(source.splitlines())} lines: split it by concept"
    seen_code = False
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            assert not seen_code, f"{file.name}:{node.lineno} imports halfway down the module: move it to the top"
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            seen_code = True
