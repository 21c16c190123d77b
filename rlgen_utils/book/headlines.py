"""The overview's two tables, computed from records and band files, never typed: every notebook's headlines beside
their no-learning twins (book-wide rule 7), and the ledger "When is RL worth it?" (rule 6): per RL headline, its gain
over the pre-trained model, the strongest non-RL alternative's gain at equal reward calls, and the verdict read from
the seed spread (`verdicts.verdict`). The website's results page shows the same tables."""
from __future__ import annotations

from ..runtime import format_value
from ..verdicts import mean_interval, verdict
from .bands import ledger_records


def short(value) -> str:
    """A record's value for a table cell: 4 significant digits for floats."""
    return f"{value:.4g}" if isinstance(value, float) else format_value(value)


def headline_pairs(notebook: str, records: dict, bands: dict) -> list[dict]:
    """Each headline of a notebook with its twin's value and whether it is a declared measured null."""
    pairs = []
    for name, entry in bands.get(notebook, {}).get("headlines", {}).items():
        twin = entry.get("twin")
        pairs.append({"name": name, "value": records.get(name), "twin": twin, "twin_value": records.get(twin),
                      "null": entry.get("null")})
    return pairs


def headline_cell(pairs: list[dict]) -> str:
    """A markdown table cell: `headline` = value (twin `name` = value), one per headline, nulls marked."""
    parts = []
    for p in pairs:
        if p["value"] is None:
            parts.append(f"`{p['name']}` not recorded")
            continue
        twin = f" (twin `{p['twin']}` = {short(p['twin_value'])})" if p["twin_value"] is not None else ""
        parts.append(f"`{p['name']}` = {short(p['value'])}{twin}" + (" — a measured null" if p["null"] else ""))
    return "<br>".join(parts) or "no headline declared"


def ledger_rows(entries: list[dict], bands: dict, sweep: dict | None = None) -> list[dict]:
    """One row per notebook whose band file has a [ledger] table, from its records (`entries`: contents' entries).

    `sweep` ({notebook: {record: [value per sweep seed]}}, from a seed sweep's records.json) replaces the single
    run's interval by the interval over the sweep's seeds, when it holds the notebook's ledger gap."""
    rows = []
    for entry in entries:
        spec = bands.get(entry["notebook"], {}).get("ledger")
        if not spec:
            continue
        records, area = entry["records"], spec["rl"].split("/", 1)[0]
        row = {"notebook": entry["notebook"], "section": entry["section"], **{k: spec[k] for k in spec}}
        if any(name not in records for name in ledger_records(spec)):
            rows.append(dict(row, verdict="not run yet"))
            continue
        twin = records[spec["twin"]]
        sign = 1 if spec["better"] == "higher" else -1  # a gain is an improvement: a loss that fell gains
        row.update(twin_value=twin, rl_value=records[spec["rl"]], alternative_value=records[spec["alternative"]],
                   rl_gain=sign * (records[spec["rl"]] - twin), alternative_gain=sign * (records[spec["alternative"]] - twin),
                   gap=records[f"{area}/ledger_gap"], low=records[f"{area}/ledger_gap_low"],
                   high=records[f"{area}/ledger_gap_high"], seeds=int(records[f"{area}/ledger_seeds"]),
                   source=f"one run ({int(records[f'{area}/ledger_seeds'])} seeds inside it)")
        swept = (sweep or {}).get(entry["notebook"], {})
        gaps = swept.get(f"{area}/ledger_gap")
        if gaps and len(gaps) >= 2:
            row["gap"], row["low"], row["high"] = mean_interval(gaps)
            row["seeds"], row["source"] = len(gaps), f"a sweep of {len(gaps)} seeds (SEED = 0..{len(gaps) - 1})"
            values = [swept.get(spec[k]) or [] for k in ("rl", "twin", "alternative")]
            if all(len(v) == len(gaps) and None not in v for v in values):  # the gains from the same seeds as the gap
                rl, twin, alternative = (sum(v) / len(v) for v in values)
                row.update(twin_value=twin, rl_value=rl, alternative_value=alternative, rl_gain=sign * (rl - twin),
                           alternative_gain=sign * (alternative - twin))
            else:  # a sweep that lacks an arm's values on some seed: say that the gains are one run's
                row["source"] += "; the gains from one run (the sweep lacks some seeds' values)"
        row["verdict"] = verdict(row["low"], row["high"], spec["better"])
        rows.append(row)
    return rows


def ledger_markdown(rows: list[dict], link=lambda stem: f"{stem}.ipynb") -> str:
    """The ledger as a markdown table (the overview displays it; the website's results page includes it)."""
    head = ("| § | notebook | task (metric) | RL: gain over the pre-trained model | strongest alternative: gain "
            "| pre-trained value | RL − alternative [95% interval] | verdict | evidence |\n|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        name = f"[{r['notebook']}]({link(r['notebook'])})"
        task = f"{r['task']} ({r['metric']}; {r['better']} is better)"
        if r["verdict"] == "not run yet":
            lines.append(f"| {r['section']} | {name} | {task} | {r['rl_name']} | {r['alternative_name']} | — | — | not run yet | — |")
            continue
        lines.append(f"| {r['section']} | {name} | {task} | {r['rl_name']}: {r['rl_gain']:+.3g} "
                     f"| {r['alternative_name']}: {r['alternative_gain']:+.3g} | {short(r['twin_value'])} "
                     f"| {r['gap']:+.3g} [{r['low']:+.3g}, {r['high']:+.3g}] | **RL {r['verdict']}** "
                     f"| {r['source']}; {r['budget']} |")
    return head + "\n".join(lines)
