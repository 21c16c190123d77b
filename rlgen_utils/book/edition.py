"""The exercise edition of the book (issue 26): one source, two editions. The book's notebooks are the solution
edition: in an exercise's code cell the solution is the lines between `# BEGIN SOLUTION` and `# END SOLUTION`
(markers included, indentation kept). `make_exercise_edition` replaces each region by a stub that raises
`NotImplementedError` with the exercise's hint, clears every output, trims the run's metadata and adds a banner;
`insert_solutions` puts the regions back, which gives the book's notebook again (outputs aside), so the book's own
run covers the edition's code path. `write_exercise_editions` writes notebooks/exercises/<stem>.ipynb (where Colab
opens them) and `stale_exercise_editions` says which are missing or out of date (`tests/test_exercise_edition.py`).
"""
from __future__ import annotations

import argparse
import copy
import re
from pathlib import Path

import nbformat

from ..exercises import EXERCISES, colab_url, homepage

ROOT = Path(__file__).resolve().parent.parent.parent
NOTEBOOKS = ROOT / "notebooks"
EDITIONS = NOTEBOOKS / "exercises"
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB = re.compile(r"^(?P<indent>[ \t]*)# YOUR CODE HERE — Exercise (?P<id>[\w.]+)\n(?P=indent)raise NotImplementedError\(.*\)$",
                  re.M)
CHECK_CALL = re.compile(r"\bcheck_(\w+)\(")
EXERCISE_TAG, BANNER_TAG = "exercise", "exercise-edition"
RUN_CELL_METADATA = ("execution", "papermill")


def solution_regions(source: str) -> list[tuple[int, int]]:
    """(first, last) line numbers of each `# BEGIN SOLUTION` … `# END SOLUTION` region, markers included."""
    regions, start = [], None
    for i, line in enumerate(source.split("\n")):
        marker = line.strip()
        if marker == BEGIN:
            if start is not None:
                raise ValueError(f"line {i + 1}: `{BEGIN}` inside another solution region")
            start = i
        elif marker == END:
            if start is None:
                raise ValueError(f"line {i + 1}: `{END}` without a `{BEGIN}`")
            regions.append((start, i))
            start = None
    if start is not None:
        raise ValueError(f"line {start + 1}: `{BEGIN}` is never closed by `{END}`")
    return regions


def exercise_of_cell(source: str):
    """The registered exercise whose check the cell calls (`name = check_name(name)`), or None."""
    by_check = {e.check_name: e for e in EXERCISES.values()}
    for name in CHECK_CALL.findall(source):
        if f"check_{name}" in by_check:
            return by_check[f"check_{name}"]
    return None


def stub_lines(indent: str, exercise) -> list[str]:
    if exercise is None:
        return [f"{indent}# YOUR CODE HERE — Exercise unregistered", f'{indent}raise NotImplementedError("write this part")']
    message = f"Exercise {exercise.id}: {exercise.title} (hint: {exercise.hint})"
    return [f"{indent}# YOUR CODE HERE — Exercise {exercise.id}", f"{indent}raise NotImplementedError({message!r})"]


def stub_source(source: str) -> str:
    """The cell's source with every solution region replaced by its stub."""
    lines, exercise = source.split("\n"), exercise_of_cell(source)
    for first, last in reversed(solution_regions(source)):
        indent = re.match(r"[ \t]*", lines[first]).group(0)
        lines[first:last + 1] = stub_lines(indent, exercise)
    return "\n".join(lines)


def statement_markdown(exercise) -> str:
    """The markdown cell that states an exercise, above its code cell: title with stars, statement, the paper's
    equation, the contract and the hint (written from the registry; a test keeps the book's cells equal to it)."""
    parts = [f"### Exercise {exercise.id} {'★' * exercise.stars} — {exercise.title}", exercise.statement]
    if exercise.equation:
        parts.append(f"$$\n{exercise.equation}\n$$")
    parts += [f"**Contract.** {exercise.contract}", f"**Hint.** {exercise.hint}",
              f"*The next cell holds the solution (on the website, behind the toggle); in the exercise edition it is "
              f"yours to write. Running it checks `{exercise.name}` on random cases; the notebook goes on with the "
              f"returned function.*"]
    return "\n\n".join(parts)


def has_solutions(nb) -> bool:
    return any(c.cell_type == "code" and solution_regions(c.source) for c in nb.cells)


def banner(nb, stem: str) -> str:
    ids = [e.id for c in nb.cells if c.cell_type == "code" and solution_regions(c.source)
           for e in [exercise_of_cell(c.source)] if e is not None]
    book = f"{homepage()}/blob/main/notebooks/{stem}.ipynb"
    return (f"**Exercise edition** ([open in Colab]({colab_url(stem)})). The exercises of this notebook "
            f"({', '.join(ids) or 'see below'}) are left for you: each `# YOUR CODE HERE` raises `NotImplementedError` "
            "until you write it. Run the cell and its check tells you at once whether your function matches the "
            "reference on random cases, and names the likely mistake when it does not. Skipping an exercise is fine: "
            "the notebook then continues with the reference implementation.\n\n"
            f"The solutions are in the book's notebook, [{stem}.ipynb]({book}). This file is generated from it by "
            "`python -m rlgen_utils exercises`: change the book's notebook, not this one.")


def make_exercise_edition(nb, stem: str | None = None):
    """The exercise edition of a book notebook (a new notebook; `nb` is not changed)."""
    out = copy.deepcopy(nb)
    stem = stem or "notebook"
    for cell in out.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        for key in RUN_CELL_METADATA:
            cell.metadata.pop(key, None)
        if solution_regions(cell.source):
            cell.source = stub_source(cell.source)
            tags = cell.metadata.setdefault("tags", [])
            if EXERCISE_TAG not in tags:
                tags.append(EXERCISE_TAG)
    note = nbformat.v4.new_markdown_cell(banner(nb, stem), metadata={"tags": [BANNER_TAG]})
    note.id = "exercise-edition"
    out.cells.insert(1 if out.cells and out.cells[0].cell_type == "markdown" else 0, note)
    kernelspec = nb.metadata.get("kernelspec")
    out.metadata = nbformat.NotebookNode({"kernelspec": copy.deepcopy(kernelspec)} if kernelspec else {})
    out.metadata["language_info"] = nbformat.NotebookNode({"name": "python"})
    return out


def insert_solutions(exercise_nb, book_nb):
    """The exercise edition with the book's solutions put back (and the book's metadata): the book's notebook with
    its outputs cleared. Cells are matched by id, else by position."""
    out = copy.deepcopy(exercise_nb)
    out.cells = [c for c in out.cells if BANNER_TAG not in c.metadata.get("tags", [])]
    if len(out.cells) != len(book_nb.cells):
        raise ValueError(f"the edition has {len(out.cells)} cells, the book {len(book_nb.cells)}: regenerate the edition")
    for i, (cell, book_cell) in enumerate(zip(out.cells, book_nb.cells)):
        if cell.get("id") and book_cell.get("id") and cell.id != book_cell.id:
            raise ValueError(f"cell {i}: id {cell.id} in the edition, {book_cell.id} in the book")
        if cell.cell_type == "code":
            stubs = list(STUB.finditer(cell.source))
            lines = book_cell.source.split("\n")
            regions = ["\n".join(lines[a:b + 1]) for a, b in solution_regions(book_cell.source)]
            if len(stubs) != len(regions):
                raise ValueError(f"cell {i}: {len(stubs)} stubs in the edition, {len(regions)} solution regions in the book")
            for stub, region in reversed(list(zip(stubs, regions))):
                cell.source = cell.source[:stub.start()] + region + cell.source[stub.end():]
        cell.metadata = copy.deepcopy(book_cell.metadata)
    out.metadata = copy.deepcopy(book_nb.metadata)
    return out


def without_outputs(nb):
    """A copy of `nb` with every code cell's outputs and execution count cleared."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return out


def edition_text(book_path: Path) -> str | None:
    """The exercise edition of the book notebook at `book_path`, as the file's text; None without solutions."""
    nb = nbformat.read(book_path, as_version=4)
    if not has_solutions(nb):
        return None
    text = nbformat.writes(make_exercise_edition(nb, Path(book_path).stem))
    return text if text.endswith("\n") else text + "\n"


def book_notebooks(directory: Path = NOTEBOOKS) -> list[Path]:
    return sorted(p for p in Path(directory).glob("*.ipynb") if not p.name.startswith((".", "00_")))


def write_exercise_editions(directory: Path = NOTEBOOKS, out: Path = EDITIONS) -> list[Path]:
    """(Re)write the edition of every book notebook that has solution regions, remove editions whose notebook has
    none (or is gone); returns the files written or removed."""
    out = Path(out)
    changed, wanted = [], set()
    for path in book_notebooks(directory):
        text = edition_text(path)
        if text is None:
            continue
        target = out / path.name
        wanted.add(target.name)
        if not target.exists() or target.read_text() != text:
            out.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            changed.append(target)
    for old in sorted(out.glob("*.ipynb")) if out.exists() else []:
        if old.name not in wanted:
            old.unlink()
            changed.append(old)
    return changed


def stale_exercise_editions(directory: Path = NOTEBOOKS, out: Path = EDITIONS) -> list[str]:
    """What `write_exercise_editions` would change, in words (empty when the committed editions are up to date)."""
    problems, wanted = [], set()
    for path in book_notebooks(directory):
        text = edition_text(path)
        if text is None:
            continue
        target = Path(out) / path.name
        wanted.add(target.name)
        if not target.exists():
            problems.append(f"{path.name} has exercises but no edition in {Path(out).name}/")
        elif target.read_text() != text:
            problems.append(f"{Path(out).name}/{path.name} is out of date with the book's {path.name}")
    for old in sorted(Path(out).glob("*.ipynb")) if Path(out).exists() else []:
        if old.name not in wanted:
            problems.append(f"{Path(out).name}/{old.name} has no book notebook with exercises")
    return problems


def marker_problems(path: Path) -> list[str]:
    """Solution regions that would make a bad edition: unbalanced markers, a marked cell that calls no registered
    check or is not tagged `exercise`."""
    problems = []
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        try:
            regions = solution_regions(cell.source)
        except ValueError as e:
            problems.append(f"{Path(path).name} cell {i}: {e}")
            continue
        if regions and exercise_of_cell(cell.source) is None:
            problems.append(f"{Path(path).name} cell {i}: a solution region but no call of a registered check_<name>")
        if regions and EXERCISE_TAG not in cell.metadata.get("tags", []):
            problems.append(f"{Path(path).name} cell {i}: a solution region in a cell not tagged `{EXERCISE_TAG}`")
    return problems


def main(argv: list[str] | None = None) -> int:
    """`python -m rlgen_utils exercises [--check]`: rewrite notebooks/exercises/ from the book (or only report)."""
    parser = argparse.ArgumentParser(prog="python -m rlgen_utils exercises", description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="report stale editions and exit 1, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_exercise_editions()
        print("\n".join(problems) or "the exercise editions are up to date")
        return 1 if problems else 0
    changed = write_exercise_editions()
    print("\n".join(f"wrote {p.relative_to(ROOT)}" if p.exists() else f"removed {p.relative_to(ROOT)}" for p in changed)
          or "the exercise editions were already up to date")
    return 0
