"""The library's shape, as docs/architecture.md describes it: every path the docs name exists, the map's
"used by" column is what the notebooks import, modules stay small with their imports at the top, no import cycles,
teaching code never imports the book's machinery, no module shadows the standard library, and every dotted name
the prose mentions (docs, README, docstrings, comments, markdown cells) still resolves."""
import ast
import importlib
import importlib.util
import json
import re
import sys
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


def module_name(file: Path) -> str:
    parts = file.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def internal_imports(file: Path) -> set[str]:
    """The rlgen_utils modules a module imports (relative imports resolved), at any depth of the module."""
    here = module_name(file).split(".")
    package = here if file.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + (node.module.split(".") if node.module else []))
            if not target.startswith("rlgen_utils"):
                continue
            for alias in node.names:  # `from . import x` imports the module x
                candidate = f"{target}.{alias.name}"
                found.add(candidate if importlib.util.find_spec(candidate.rsplit(".", 1)[0]) and
                          (ROOT / (candidate.replace(".", "/") + ".py")).exists() else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rlgen_utils")}
    return found


def test_no_import_cycles_and_teaching_code_never_imports_the_machinery():
    graph = {module_name(f): internal_imports(f) for f in (ROOT / "rlgen_utils").rglob("*.py")}
    for module, targets in graph.items():
        if not module.startswith("rlgen_utils.book") and module != "rlgen_utils.__main__":  # the CLI's entry point
            assert not [t for t in targets if t.startswith("rlgen_utils.book")], f"{module} imports the book's machinery"
    state: dict[str, str] = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"import cycle: {' -> '.join(path + [module])}"
        state[module] = "open"
        for target in graph.get(module, ()):
            if target != module and not module.startswith(target + "."):  # a package's own __init__ is not a cycle
                visit(target, path + [module])
        state[module] = "done"

    for module in graph:
        visit(module, [])
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        if not path.stem.startswith("00_"):
            assert "rlgen_utils.book" not in path.read_text(), f"{path.name} imports the book's machinery"


def test_no_module_shadows_the_standard_library():
    shadows = [str(p.relative_to(ROOT)) for p in (ROOT / "rlgen_utils").rglob("*.py") if p.stem in sys.stdlib_module_names]
    assert not shadows, f"modules named like standard-library modules: {shadows}"


# `m.name` in backticks, where m is `rlgen_utils`, the short name of one of the library's modules or sub-packages, or
# anything else that looks like a module; and rlgen_utils.x.y anywhere, backticks or not: in the docs, the README,
# every module's and test's docstrings and comments, and the notebooks' markdown cells.
DOTTED = re.compile(r"`((?:rlgen_utils|[a-z_][a-z0-9_]*)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?:\(\))?`"
                    r"|\b(rlgen_utils(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


FILE_SUFFIXES = {"json", "html", "png", "yml", "toml", "lock", "py", "md", "txt", "ipynb", "csv", "smi", "mid", "wav"}
VARIABLES = {"config", "env", "m", "self", "actions", "policy"}  # objects the prose names by their variable (`env.unwrapped.P`), not modules


def resolves(name: str, short: dict[str, str]) -> bool:
    first, *rest = name.split(".")
    if rest[-1] in FILE_SUFFIXES or first in VARIABLES or "__main__" in rest:
        return True  # a file name, or an attribute of a variable
    if first != "rlgen_utils":
        first = {"np": "numpy"}.get(first, first)
        if first not in short:
            # a third-party or standard-library module; anything else is a module that no longer exists
            return importlib.util.find_spec(first) is not None
        first = short[first]
    obj_path = first.split(".") + rest
    for cut in range(len(obj_path), 0, -1):
        try:
            obj = importlib.import_module(".".join(obj_path[:cut]))
        except ImportError:
            continue
        for attr in obj_path[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def prose_sources() -> list[tuple[str, str]]:
    found = [(doc, (ROOT / doc).read_text()) for doc in DOCS]
    found += [(str(p.relative_to(ROOT)), p.read_text()) for p in sorted((ROOT / "rlgen_utils").rglob("*.py"))]
    found += [(str(p.relative_to(ROOT)), p.read_text()) for p in sorted((ROOT / "tests").glob("*.py"))]
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        found.append((path.name, "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")))
    return found


def test_every_dotted_name_in_the_prose_resolves():
    modules = [module_name(p) for p in (ROOT / "rlgen_utils").rglob("*.py")]
    short = {m.rsplit(".", 1)[-1]: m for m in sorted(modules, key=len) if "." in m}  # e.g. "kl" -> rlgen_utils.rl.kl
    stale = [f"{where}: `{name}`" for where, text in prose_sources()
             for name in {a or b for a, b in DOTTED.findall(text)}
             if not resolves(name, short) and not where.endswith("test_architecture.py")]
    assert not stale, "names that do not resolve (renamed or removed?):\n" + "\n".join(sorted(stale))
