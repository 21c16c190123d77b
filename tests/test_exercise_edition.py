"""The exercise edition (rlgen_utils.book.edition): stubbing the solution regions and putting them back gives the
book's notebook again, outputs aside; a stubbed exercise cell runs, says "not yet solved" and leaves the reference in
place; the committed editions in notebooks/exercises/ are up to date with the book (vacuously only while no notebook
has solution markers), and every marked cell is tagged and calls a registered check."""
import contextlib
import io
import json
import sys

import nbformat
import pytest

from rlgen_utils.book.edition import (BANNER_TAG, EDITIONS, NOTEBOOKS, book_notebooks, exercise_of_cell, insert_solutions,
                                        make_exercise_edition, marker_problems, solution_regions, stale_exercise_editions,
                                        write_exercise_editions, without_outputs)
from rlgen_utils.exercises import EXERCISES

GAE_CELL = '''from rlgen_utils.exercises import check_gae


def gae(rewards, values, dones, last_value, gamma, lam):
    """GAE(λ), time-major (T, N)."""
    advantages = torch.zeros_like(rewards)
    # BEGIN SOLUTION
    next_value, running = last_value.to(rewards), torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        not_done = 1.0 - dones[t].to(rewards)
        delta = rewards[t] + gamma * next_value * not_done - values[t]
        running = delta + gamma * lam * not_done * running
        advantages[t] = running
        next_value = values[t]
    # END SOLUTION
    return advantages, advantages + values


gae = check_gae(gae)'''

TWO_REGIONS_CELL = '''from rlgen_utils.exercises import check_kl_estimates


def kl_estimates(logp, logp_ref):
    # BEGIN SOLUTION
    log_ratio = logp_ref - logp
    # END SOLUTION
    out = {}
    if True:
        # BEGIN SOLUTION
        out = {"k1": -log_ratio, "k2": 0.5 * log_ratio ** 2, "k3": torch.expm1(log_ratio) - log_ratio}
        # END SOLUTION
    return out


kl_estimates = check_kl_estimates(kl_estimates)'''


def book_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 9.9 · A tiny notebook (survey §9)\n\nWhat you will see."),
                nbformat.v4.new_code_cell("import torch"),
                nbformat.v4.new_markdown_cell("### Exercise 1.2b.1 ★★ — Generalised advantage estimation\n\nWrite it."),
                nbformat.v4.new_code_cell(GAE_CELL, metadata={"tags": ["exercise", "hide-input"], "execution": {"iopub.status.idle": "2024-01-01T00:00:00Z"}}),
                nbformat.v4.new_code_cell(TWO_REGIONS_CELL, metadata={"tags": ["exercise", "hide-input"]}),
                nbformat.v4.new_code_cell("print(1 + 1)")]
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
    nb.cells[5].outputs = [nbformat.v4.new_output("stream", name="stdout", text="2\n")]
    nb.cells[5].execution_count = 3
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python", "version": "3.11.7"}, "rlgen": {"seconds": 12.5}}
    return nbformat.from_dict(nb)


def test_stubbing_then_inserting_the_solutions_gives_back_the_book():
    book = book_notebook()
    edition = make_exercise_edition(book, "9.9_tiny")
    assert nbformat.writes(insert_solutions(edition, book)) == nbformat.writes(without_outputs(book))
    assert nbformat.writes(book) == nbformat.writes(book_notebook())  # the book itself is not changed


def test_the_edition_has_stubs_no_solutions_no_outputs_and_a_banner():
    edition = make_exercise_edition(book_notebook(), "9.9_tiny")
    text = nbformat.writes(edition)
    assert "BEGIN SOLUTION" not in text and "running = delta" not in text and '"k3": torch.expm1' not in text
    assert all(c.outputs == [] and c.execution_count is None for c in edition.cells if c.cell_type == "code")
    assert "rlgen" not in edition.metadata and "execution" not in edition.cells[4].metadata
    assert BANNER_TAG in edition.cells[1].metadata.tags and "colab.research.google.com" in edition.cells[1].source
    gae_cell = edition.cells[4].source
    hint = EXERCISES["1.2b.1"].hint
    assert "    # YOUR CODE HERE — Exercise 1.2b.1\n    raise NotImplementedError('Exercise 1.2b.1: Generalised advantage " \
           "estimation (hint: " in gae_cell and hint in gae_cell
    assert "    advantages = torch.zeros_like(rewards)\n    # YOUR CODE HERE" in gae_cell  # the scaffold stays
    assert "        # YOUR CODE HERE — Exercise 2.2c.2\n        raise" in edition.cells[5].source  # indentation kept
    assert edition.cells[5].source.count("NotImplementedError") == 2


def test_a_stubbed_exercise_cell_runs_and_continues_with_the_reference():
    import torch

    edition, book = make_exercise_edition(book_notebook(), "9.9_tiny"), book_notebook()
    for cells, expected in ((edition.cells[4:6], "not yet solved"), (book.cells[3:5], "solved: matches the reference")):
        namespace, out = {"torch": torch}, io.StringIO()
        with contextlib.redirect_stdout(out):
            for cell in cells:
                exec(cell.source, namespace)
        lines = out.getvalue().splitlines()
        assert len(lines) == 2 and all(expected in line for line in lines), lines
        if expected == "not yet solved":
            assert namespace["gae"] is EXERCISES["1.2b.1"].reference
            assert namespace["kl_estimates"] is EXERCISES["2.2c.2"].reference
    stub = {}
    exec(edition.cells[4].source.replace("gae = check_gae(gae)", ""), {"torch": torch}, stub)
    with pytest.raises(NotImplementedError, match=r"^Exercise 1\.2b\.1: Generalised advantage estimation \(hint: "):
        stub["gae"](torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(1), 0.9, 0.9)


def test_markers_are_checked():
    assert solution_regions("a\n    # BEGIN SOLUTION\n    b\n    # END SOLUTION\nc") == [(1, 3)]
    for bad in ("# BEGIN SOLUTION\nx", "# END SOLUTION", "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION"):
        with pytest.raises(ValueError):
            solution_regions(bad)


def test_marker_problems_name_untagged_and_unregistered_cells(tmp_path):
    nb = book_notebook()
    nb.cells[3].metadata.tags = []
    nb.cells.append(nbformat.v4.new_code_cell("x = 1\n# BEGIN SOLUTION\ny = 2\n# END SOLUTION", metadata={"tags": ["exercise"]}))
    nbformat.write(nb, tmp_path / "9.9_tiny.ipynb")
    problems = marker_problems(tmp_path / "9.9_tiny.ipynb")
    assert len(problems) == 2 and "cell 3" in problems[0] and "not tagged" in problems[0] and "registered" in problems[1]


def test_writing_and_checking_editions(tmp_path):
    book_dir, out = tmp_path / "notebooks", tmp_path / "notebooks" / "exercises"
    book_dir.mkdir()
    nbformat.write(book_notebook(), book_dir / "9.9_tiny.ipynb")
    plain = book_notebook()
    plain.cells = plain.cells[:2]
    nbformat.write(plain, book_dir / "9.8_plain.ipynb")  # no exercises: no edition
    assert stale_exercise_editions(book_dir, out) == ["9.9_tiny.ipynb has exercises but no edition in exercises/"]
    assert write_exercise_editions(book_dir, out) == [out / "9.9_tiny.ipynb"]
    assert stale_exercise_editions(book_dir, out) == [] and write_exercise_editions(book_dir, out) == []
    edition = nbformat.read(out / "9.9_tiny.ipynb", as_version=4)
    assert nbformat.writes(insert_solutions(edition, book_notebook())) == nbformat.writes(without_outputs(book_notebook()))
    changed = book_notebook()
    changed.cells[3].source = changed.cells[3].source.replace("GAE(λ), time-major", "GAE(λ), time first")
    nbformat.write(changed, book_dir / "9.9_tiny.ipynb")
    assert stale_exercise_editions(book_dir, out) == ["exercises/9.9_tiny.ipynb is out of date with the book's 9.9_tiny.ipynb"]
    rerun = nbformat.read(book_dir / "9.9_tiny.ipynb", as_version=4)
    rerun.cells[5].outputs, rerun.metadata["rlgen"] = [], {"seconds": 99.0}  # a new run: the edition does not change
    nbformat.write(rerun, book_dir / "9.9_tiny.ipynb")
    write_exercise_editions(book_dir, out)
    rerun.cells[5].outputs = [nbformat.v4.new_output("stream", name="stdout", text="other\n")]
    nbformat.write(rerun, book_dir / "9.9_tiny.ipynb")
    assert stale_exercise_editions(book_dir, out) == []
    (book_dir / "9.9_tiny.ipynb").unlink()
    assert stale_exercise_editions(book_dir, out) == ["exercises/9.9_tiny.ipynb has no book notebook with exercises"]
    assert write_exercise_editions(book_dir, out) == [out / "9.9_tiny.ipynb"] and not list(out.glob("*.ipynb"))


# ------------------------------------------------------------------------------------------------ the book
def marked_notebooks():
    return [p for p in book_notebooks() if "# BEGIN SOLUTION" in p.read_text()]


def test_the_committed_exercise_editions_are_up_to_date():
    problems = stale_exercise_editions()
    assert not problems, "\n".join(problems) + "\nrun `python -m rlgen_utils exercises` (rlgen_utils.book.edition.main)"
    assert bool(marked_notebooks()) == bool(list(EDITIONS.glob("*.ipynb")))


def test_every_solution_region_of_the_book_is_tagged_and_checked():
    problems = [p for path in marked_notebooks() for p in marker_problems(path)]
    assert not problems, "\n".join(problems)


def test_once_the_book_has_exercises_every_registered_one_is_in_its_notebook():
    marked = marked_notebooks()
    if not marked:
        pytest.skip("no notebook has solution markers yet")
    missing = []
    for exercise in EXERCISES.values():
        path = next(NOTEBOOKS.glob(f"{exercise.notebook}_*.ipynb"))
        code = "\n".join(c["source"] if isinstance(c["source"], str) else "".join(c["source"])
                         for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        if f"{exercise.name} = {exercise.check_name}({exercise.name})" not in code:
            missing.append(f"{exercise.id} ({exercise.check_name}) is not in {path.name}")
    assert not missing, "\n".join(missing)


def exercise_cells_of_the_book():
    """(notebook, exercise, cell source, whether the cell stands in the notebook's closing Exercises section)."""
    found = []
    for path in marked_notebooks():
        in_section = False
        for cell in nbformat.read(path, as_version=4).cells:
            in_section = in_section or (cell.cell_type == "markdown" and cell.source.startswith("## Exercises"))
            if cell.cell_type == "code" and "exercise" in cell.metadata.get("tags", []):
                found.append((path.stem, exercise_of_cell(cell.source), cell.source, in_section))
    return found


def test_every_solution_in_the_book_passes_its_check():
    """The book's own solution path, which the smoke runs (of the exercise editions) do not take: each exercise cell
    run as written. A cell in the closing Exercises section must stand alone (its imports are its own); a cell
    where the notebook defines the function runs beside the names its reference's module has."""
    cells = exercise_cells_of_the_book()
    assert sorted(e.id for _, e, _, _ in cells) == sorted(EXERCISES)
    for stem, exercise, source, alone in cells:
        module = sys.modules[exercise.reference.__module__]
        namespace = {"__name__": "__main__"} if alone else dict(vars(module))
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(source, f"<{stem}: exercise {exercise.id}>", "exec"), namespace)
        assert printed.getvalue().startswith(f"✓ Exercise {exercise.id} solved"), (stem, printed.getvalue())
        assert namespace[exercise.name] is not exercise.reference  # the notebook goes on with its own solution


def test_every_committed_edition_with_its_solutions_put_back_is_the_book():
    """So the book's own run covers the edition's code path, outputs aside (the smoke runs take the edition's)."""
    for path in marked_notebooks():
        book = nbformat.read(path, as_version=4)
        edition = nbformat.read(EDITIONS / path.name, as_version=4)
        assert nbformat.writes(insert_solutions(edition, book)) == nbformat.writes(without_outputs(book)), path.name
