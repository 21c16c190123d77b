"""Checked exercises, one or more in every notebook (issue 26): the reader writes the function at the heart of the
method; `check_<name>(fn)` runs it on fresh random cases beside the reference, prints one line (solved, the likely
mistake, or "not yet solved") and returns the function the notebook goes on with — the reader's when it matches,
else the reference. The registry `EXERCISES` (id -> `harness.Exercise`: stars, statement, contract, hint,
equation, reference, cases, known mistakes) is what the overview's list and the exercise edition read.

One module per part of the survey: `background_models` and `background_likelihood` (§1.1), `background_rl` (§1.2),
`benefits` and `benefits_rewards` (§2), `challenges` and `challenges_credit` (§3), `applications` and `applications_domains` (§4).
"""
from __future__ import annotations

import json
from importlib import metadata, resources

from . import (applications, applications_domains, background_likelihood, background_models,  # noqa: F401
               background_rl, benefits, benefits_rewards, challenges, challenges_credit)
from .harness import EXERCISES, Exercise, Outcome, run_check

_ordered = sorted(EXERCISES.items(), key=lambda item: (item[1].notebook, int(item[0].rsplit(".", 1)[1])))
EXERCISES.clear()
EXERCISES.update(_ordered)  # the book's order, whatever the order of the imports above
CHECKS = {exercise.check_name: exercise.check for exercise in EXERCISES.values()}
globals().update(CHECKS)
__all__ = ["EXERCISES", "Exercise", "Outcome", "run_check", "exercises_of", "overview_markdown", "colab_url",
           *CHECKS]
DEFAULT_HOMEPAGE = "https://github.com/rlgen/rlgen"


def exercises_of(notebook: str) -> list[Exercise]:
    """The exercises of one notebook, by its number ("4.1") or stem ("4.1_nlp"), in order."""
    number = notebook.split("_", 1)[0]
    return [e for e in EXERCISES.values() if e.notebook == number]


def homepage() -> str:
    """The project's Homepage (pyproject's [project.urls]), read from the installed package's metadata."""
    try:
        for line in metadata.metadata("rlgen_utils").get_all("Project-URL") or []:
            name, _, url = line.partition(",")
            if name.strip().lower() == "homepage":
                return url.strip().rstrip("/")
    except metadata.PackageNotFoundError:
        pass
    return DEFAULT_HOMEPAGE


def colab_url(stem: str, branch: str = "main") -> str:
    """Where Colab opens a notebook's exercise edition (notebooks/exercises/<stem>.ipynb on the forge)."""
    repository = homepage().split("github.com/", 1)[-1]
    return f"https://colab.research.google.com/github/{repository}/blob/{branch}/notebooks/exercises/{stem}.ipynb"


def overview_markdown(links: bool = True) -> str:
    """The book's exercises by section, as markdown: one line per notebook (its title, and a link to its exercise
    edition on Colab), then its exercises with their stars. Titles come from the index shipped in the package."""
    index = json.loads(resources.files("rlgen_utils").joinpath("book", "book_index.json").read_text())
    parts = {"1": "Background", "2": "Benefits of RL for generation", "3": "Challenges", "4": "Applications"}
    lines, part = [], None
    stars = {1: 0, 2: 0, 3: 0}
    for exercise in EXERCISES.values():
        stars[exercise.stars] += 1
    lines.append(f"**{len(EXERCISES)} exercises** in {len({e.notebook for e in EXERCISES.values()})} notebooks "
                 f"(★ {stars[1]}, ★★ {stars[2]}, ★★★ {stars[3]}). Each is checked on random cases the moment you "
                 "run it, and a notebook whose exercise is left undone continues with the reference implementation.")
    for entry in index:
        own = exercises_of(entry["notebook"])
        if not own:
            continue
        if entry["section"][0] != part:
            part = entry["section"][0]
            lines.append(f"\n**§{part} {parts.get(part, '')}**\n")
        link = f" — [exercise edition on Colab]({colab_url(entry['notebook'])})" if links else ""
        items = "; ".join(f"{e.id} {'★' * e.stars} {e.title} (`{e.name}`)" for e in own)
        lines.append(f"- *{entry['title']}*{link}: {items}")
    return "\n".join(lines)
