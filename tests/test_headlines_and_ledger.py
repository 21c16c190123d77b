"""Book-wide rules 6 and 7 read from the band files: every notebook's headlines name their no-learning twins, a
headline's full band leaves its twin's committed value out (unless declared a measured null, with a reason), and
the notebooks with an RL headline have a row in the ledger "When is RL worth it?", computed from their records."""
import pytest

from rlgen_utils.book.bands import band_file_problems, check_bands, load_bands, twin_problems
from rlgen_utils.book.contents import find_notebooks, make_book_index
from rlgen_utils.book.headlines import headline_cell, headline_pairs, ledger_markdown, ledger_rows
from rlgen_utils.runtime import read_records

LEDGER_NOTEBOOKS = ("2.1a", "2.1b", "2.2a", "2.2d", "3.1", "4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "4.7")
BANDS = load_bands()
CONTENT = [p for p in find_notebooks() if not p.stem.startswith("00_")]


def test_band_files_are_well_formed():
    problems = [p for stem, spec in BANDS.items() for p in band_file_problems(stem, spec)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", CONTENT, ids=lambda p: p.stem)
def test_every_headline_has_a_twin_outside_its_full_band(path):
    spec = BANDS[path.stem]
    assert spec.get("headlines"), f"{path.stem}: declare its headlines and their twins in a [headlines] table"
    assert not twin_problems(path.stem, spec, read_records(path))


def test_the_ledger_has_a_row_for_every_rl_headline():
    stems = {p.stem.split("_")[0]: p.stem for p in CONTENT}
    missing = [n for n in LEDGER_NOTEBOOKS if "ledger" not in BANDS[stems[n]]]
    assert not missing, f"no [ledger] table in the band files of {missing}"
    rows = ledger_rows(make_book_index(), BANDS)
    assert {r["notebook"] for r in rows} >= {stems[n] for n in LEDGER_NOTEBOOKS}
    assert all(r["verdict"] in ("ahead", "level", "behind") for r in rows), [r["notebook"] for r in rows]


SPEC = {"full": {"a/rl": [0.7, 0.9], "a/base": [0.4, 0.6], "a/alt": [0.6, 0.9], "a/ledger_gap": [-1, 1],
                 "a/ledger_gap_low": [-1, 1], "a/ledger_gap_high": [-1, 1], "a/ledger_seeds": [3, 3]},
        "headlines": {"a/rl": {"twin": "a/base"}},
        "ledger": {"task": "t", "metric": "m", "better": "higher", "rl": "a/rl", "rl_name": "RL", "twin": "a/base",
                   "alternative": "a/alt", "alternative_name": "best-of-n", "budget": "n calls"}}
SPEC["smoke"] = dict(SPEC["full"])
RECORDS = {"a/rl": 0.8, "a/base": 0.5, "a/alt": 0.75, "a/ledger_gap": 0.05, "a/ledger_gap_low": -0.02,
           "a/ledger_gap_high": 0.12, "a/ledger_seeds": 3}


def test_a_band_that_contains_its_twin_fails_unless_declared_null():
    assert band_file_problems("9.9_x", SPEC) == [] and twin_problems("9.9_x", SPEC, RECORDS) == []
    wide = dict(SPEC, full=dict(SPEC["full"], **{"a/rl": [0.4, 0.9]}))
    assert "contains its twin 'a/base' = 0.5" in twin_problems("9.9_x", wide, RECORDS)[0]
    assert check_bands("9.9_x", "full", RECORDS, {"9.9_x": wide})  # a full run fails on it too
    declared = dict(wide, headlines={"a/rl": {"twin": "a/base", "null": "no learning within the budget: the spread"}})
    assert twin_problems("9.9_x", declared, RECORDS) == []
    no_twin = dict(SPEC, headlines={"a/rl": {}})
    assert "names no twin" in twin_problems("9.9_x", no_twin, RECORDS)[0]
    assert "names no twin" in band_file_problems("9.9_x", no_twin)[0]
    unbanded = dict(SPEC, headlines={"a/rl": {"twin": "a/other"}})
    assert any("'a/other' has no [full] band" in p for p in band_file_problems("9.9_x", unbanded))


def test_ledger_rows_and_table_from_records():
    entries = [{"notebook": "9.9_x", "section": "9.9", "records": RECORDS}]
    (row,) = ledger_rows(entries, {"9.9_x": SPEC})
    assert row["rl_gain"] == pytest.approx(0.3) and row["alternative_gain"] == pytest.approx(0.25)
    assert row["verdict"] == "level" and row["seeds"] == 3  # the interval [-0.02, 0.12] covers zero
    ahead = dict(RECORDS, **{"a/ledger_gap_low": 0.01})
    assert ledger_rows([dict(entries[0], records=ahead)], {"9.9_x": SPEC})[0]["verdict"] == "ahead"
    lower = dict(SPEC, ledger=dict(SPEC["ledger"], better="lower"))  # a loss: a positive gap is worse
    assert ledger_rows([dict(entries[0], records=ahead)], {"9.9_x": lower})[0]["verdict"] == "behind"
    assert ledger_rows(entries, {"9.9_x": lower})[0]["rl_gain"] == pytest.approx(-0.3)  # a loss that rose lost ground
    swept = ledger_rows(entries, {"9.9_x": SPEC}, sweep={"9.9_x": {"a/ledger_gap": [0.05, 0.06, 0.055, 0.05, 0.052]}})
    assert swept[0]["verdict"] == "ahead" and swept[0]["seeds"] == 5 and "sweep of 5 seeds" in swept[0]["source"]
    assert swept[0]["rl_gain"] == pytest.approx(0.3)  # without the arms' per-seed values: the single run's gains
    assert "the gains from one run" in swept[0]["source"]
    per_seed = {"a/ledger_gap": [0.05, 0.06, 0.055, 0.05, 0.052], "a/rl": [0.7, 0.8, 0.9, 0.8, 0.8],
                "a/base": [0.4] * 5, "a/alt": [0.6] * 5}
    (full,) = ledger_rows(entries, {"9.9_x": SPEC}, sweep={"9.9_x": per_seed})  # the gains from the gap's own seeds
    assert full["rl_gain"] == pytest.approx(0.4) and full["alternative_gain"] == pytest.approx(0.2)
    assert full["twin_value"] == pytest.approx(0.4) and full["rl_value"] == pytest.approx(0.8)
    assert "one run" not in full["source"]
    holed = dict(per_seed, **{"a/rl": [0.7, None, 0.9, 0.8, 0.8]})  # a seed that failed to record the arm
    (partial,) = ledger_rows(entries, {"9.9_x": SPEC}, sweep={"9.9_x": holed})
    assert partial["rl_gain"] == pytest.approx(0.3) and partial["twin_value"] == 0.5 and "one run" in partial["source"]
    table = ledger_markdown([row])
    assert "[9.9_x](9.9_x.ipynb)" in table and "**RL level**" in table and "+0.3" in table and "best-of-n: +0.25" in table
    unrun = ledger_rows([dict(entries[0], records={})], {"9.9_x": SPEC})
    assert unrun[0]["verdict"] == "not run yet" and "not run yet" in ledger_markdown(unrun)


def test_headline_cell_shows_each_headline_beside_its_twin():
    cell = headline_cell(headline_pairs("9.9_x", RECORDS, {"9.9_x": SPEC}))
    assert cell == "`a/rl` = 0.8 (twin `a/base` = 0.5)"
