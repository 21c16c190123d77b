"""An algorithm a notebook teaches is written out in its code cells; later notebooks import the library's copy.
The two must not drift apart: each notebook cell marked "Written out here; later notebooks import the library's
copy, rlgen_utils.<module>.<name>" defines <name> exactly as the library does (same code, same docstring), and
each library function marked "# Defined in notebooks/<notebook>.ipynb" has such a cell in that notebook."""
import ast
import importlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MARK = re.compile(r"# Written out here; later notebooks import the library's copy, (rlgen_utils[\w.]*)\.(\w+) ")
DEFINED_IN = re.compile(r"^# Defined in notebooks/([\w.]+\.ipynb), which explains it.*\n(?:@.*\n)*def (\w+)\(", re.M)


def notebook_copies() -> list[tuple[str, str, str, ast.FunctionDef]]:
    """(notebook, module, name, the notebook's definition) for every marked cell of the book."""
    found = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] != "code" or not (m := MARK.search(source)):
                continue
            module, name = m.groups()
            defs = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == name]
            assert defs, f"{path.name}: the cell marked as {module}.{name} does not define {name}"
            found.append((path.name, module, name, defs[0]))
    return found


def library_definition(module: str, name: str) -> ast.FunctionDef:
    file = importlib.util.find_spec(module).origin
    defs = [n for n in ast.parse(Path(file).read_text()).body if isinstance(n, ast.FunctionDef) and n.name == name]
    assert defs, f"{module} has no function {name}: the notebook's marker points nowhere"
    return defs[0]


COPIES = notebook_copies()


def test_the_book_has_its_written_out_algorithms():
    names = {name for _, _, name, _ in COPIES}
    assert {"td_control", "sequence_ppo_step", "fit_reward_model", "reinforce_search", "evolution_step"} <= names


@pytest.mark.parametrize("notebook, module, name, node", COPIES, ids=[f"{c[0]}:{c[2]}" for c in COPIES])
def test_notebook_copy_equals_library_copy(notebook, module, name, node):
    library = library_definition(module, name)
    assert ast.dump(node) == ast.dump(library), (
        f"{notebook} defines {name} differently from {module}.{name}: change both (the notebook explains it, "
        "later notebooks import the library's copy)")


def test_every_library_function_defined_in_a_notebook_has_its_copy_there():
    marked = {(nb, name) for nb, _, name, _ in COPIES}
    for file in sorted((ROOT / "rlgen_utils").rglob("*.py")):
        for notebook, name in DEFINED_IN.findall(file.read_text()):
            assert (notebook, name) in marked, f"{file.name}: {name} says it is defined in {notebook}, which has no marked copy"


def test_the_check_sees_a_drift():
    node = next(n for nb, _, name, n in COPIES if name == "td_control")
    drifted = ast.parse(ast.unparse(node).replace("alpha * (", "2 * alpha * (")).body[0]
    assert ast.dump(drifted) != ast.dump(library_definition("rlgen_utils.rl.tabular", "td_control"))
