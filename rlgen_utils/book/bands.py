"""The regression bands: each notebook's `rlgen_utils/bands/<notebook>.toml` ([smoke] and [full] ranges of every
record, the [headlines] with their no-learning twins, the [ledger] row), loaded and checked in one place.
Everything that judges a record (the runner, the tests, the overview, the report, the website) calls `check_bands`."""
from __future__ import annotations

import tomllib
from pathlib import Path

from ..runtime import format_value

BANDS_DIR = Path(__file__).resolve().parent.parent / "bands"  # one <notebook>.toml each, shipped in the wheel
PROFILE_TABLES = ("smoke", "full")
OTHER_TABLES = ("headlines", "ledger")


def load_bands(directory: Path = BANDS_DIR) -> dict:
    """{notebook stem: {profile: {record name: [low, high]}}} from the folder of band files, one
    `<notebook stem>.toml` per notebook with a `[smoke]` and a `[full]` table."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no bands folder at {directory}: it ships inside the package as rlgen_utils/bands/")
    bands = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            bands[path.stem] = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"band file {path.name} is not valid TOML ({e}): fix that line") from None
    return bands


def check_bands(notebook: str, profile: str, records: dict, bands: dict | None = None) -> list[str]:
    """Messages for every problem: a record outside its band, a banded record missing, a record with
    no band. An empty list means the notebook's results are in band."""
    bands = load_bands() if bands is None else bands
    table = bands.get(notebook, {}).get(profile)
    if table is None:
        return [f"{notebook}: no bands for profile {profile!r}: add a [{profile}] table to rlgen_utils/bands/{notebook}.toml"]
    problems = []
    for name, band in table.items():
        if name not in records:
            problems.append(f"{notebook}: record {name!r} has a band {band} but the notebook did not record it")
            continue
        low, high = band
        value = records[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not (low <= value <= high):
            problems.append(f"{notebook}: record {name!r} = {format_value(value)} is outside its {profile} band [{low}, {high}]")
    for name in records:
        if name not in table:
            problems.append(f"{notebook}: record {name!r} has no {profile} band: add one to bands/{notebook}.toml")
    if profile == "full":
        problems += twin_problems(notebook, bands.get(notebook, {}), records)
    return problems


def twin_problems(notebook: str, spec: dict, records: dict) -> list[str]:
    """Book-wide rule 7: each headline in a band file's [headlines] table names its no-learning twin (the same
    measurement for lr = 0, the untrained or pre-trained model, or random), and the headline's `full` band must
    not contain the twin's value, unless the headline is marked a measured null (`null = "why"`)."""
    problems, full = [], spec.get("full", {})
    for name, entry in spec.get("headlines", {}).items():
        twin = entry.get("twin") if isinstance(entry, dict) else None
        if not twin:
            problems.append(f"{notebook}: headline {name!r} names no twin: give it `twin = \"<record>\"` in [headlines]")
            continue
        if name not in full or twin not in full:
            problems.append(f"{notebook}: headline {name!r} and its twin {twin!r} both need a [full] band")
            continue
        low, high = full[name]
        value = records.get(twin)
        if entry.get("null") or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue  # a declared null, or a missing twin (reported above as a banded record not recorded)
        if low <= value <= high:
            problems.append(f"{notebook}: headline {name!r}'s full band [{low}, {high}] contains its twin {twin!r} = "
                            f"{format_value(value)}: narrow the band, or mark it a measured null (`null = \"why\"`)")
    return problems


LEDGER_KEYS = ("task", "metric", "better", "rl", "rl_name", "twin", "alternative", "alternative_name", "budget")


def ledger_records(entry: dict) -> list[str]:
    """The records a [ledger] row reads: the RL arm, its twin, the alternative, and the comparison's four records
    `<area>/ledger_gap`, `_gap_low`, `_gap_high`, `<area>/ledger_seeds` (made by `verdicts.record_comparison`)."""
    area = entry["rl"].split("/", 1)[0]
    return [entry["rl"], entry["twin"], entry["alternative"]] + [
        f"{area}/ledger_{suffix}" for suffix in ("gap", "gap_low", "gap_high", "seeds")]


def band_file_problems(notebook: str, spec: dict) -> list[str]:
    """What is wrong with one band file's structure: unknown tables, empty bands, headlines or ledger rows that
    point at records without a [full] band, a ledger row missing a key."""
    problems = [f"{notebook}: unknown table [{t}]: band files hold {PROFILE_TABLES + OTHER_TABLES}"
                for t in spec if t not in PROFILE_TABLES + OTHER_TABLES]
    problems += [f"{notebook}: no [{p}] table" for p in PROFILE_TABLES if p not in spec]
    for profile in PROFILE_TABLES:
        for name, band in spec.get(profile, {}).items():
            if not (isinstance(band, list) and len(band) == 2 and band[0] <= band[1]):
                problems.append(f"{notebook}/{profile}: {name!r} = {band} is not a band [low, high] with low <= high")

    def banded(name: str, why: str):
        # the real result is the full profile's; smoke may stop short of a headline's size (3.3's longest target)
        if name not in spec.get("full", {}):
            problems.append(f"{notebook}: {why} {name!r} has no [full] band")

    for name, entry in spec.get("headlines", {}).items():
        banded(name, "headline")
        if not isinstance(entry, dict) or not entry.get("twin"):
            problems.append(f"{notebook}: headline {name!r} names no twin (`{{ twin = \"<record>\" }}`)")
        else:
            banded(entry["twin"], f"the twin of {name!r},")
            if "null" in entry and not str(entry["null"]).strip():
                problems.append(f"{notebook}: headline {name!r} is a measured null without a reason")
    if "ledger" in spec:
        entry = spec["ledger"]
        missing = [k for k in LEDGER_KEYS if not entry.get(k)]
        if missing:
            problems.append(f"{notebook}: [ledger] lacks {missing}")
        elif entry["better"] not in ("higher", "lower"):
            problems.append(f"{notebook}: [ledger] better = {entry['better']!r}: use 'higher' or 'lower'")
        else:
            for name in ledger_records(entry):
                banded(name, "the ledger's record")
    return problems
