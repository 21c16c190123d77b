"""Verdicts that survive a rerun: two arms compared over seeds, with an interval, said as ahead / level / behind.

The book's rules 3 and 6 (CONTRIBUTING.md): a ranking rests on >= 3 seeds and their spread, and every RL headline
stands beside the strongest non-RL use of the same reward. `compare_arms` turns per-seed values of the two arms into
the mean gap and its 95% Student-t interval; `verdict` reads the interval: "ahead" or "behind" only when it excludes
zero, "level" when the spread covers it. `record_comparison` stores the gap as `<area>/ledger_gap[_low|_high]` and
the seed count as `<area>/ledger_seeds`, the records the overview's "When is RL worth it?" ledger reads.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from .runtime import record

VERDICTS = ("ahead", "level", "behind")


def mean_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean of `values` (one per seed) and its Student-t interval (n - 1 degrees of freedom)."""
    x = np.asarray(values, dtype=float).ravel()
    if x.size < 2:
        raise ValueError(f"an interval needs at least 2 seeds, got {x.size}: run more seeds (the book ranks on >= 3)")
    mean = float(x.mean())
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def verdict(low: float, high: float, better: str = "higher") -> str:
    """"ahead", "level" or "behind" for an interval [low, high] of (RL - alternative); `better` says which
    direction of the metric is good ("higher", or "lower" for losses such as NLL)."""
    if better not in ("higher", "lower"):
        raise ValueError(f"better={better!r}: use 'higher' (accuracy, reward) or 'lower' (a loss, an NLL)")
    if low > high:
        raise ValueError(f"empty interval [{low}, {high}]")
    sign = 1.0 if better == "higher" else -1.0
    low, high = sorted((sign * low, sign * high))
    return "ahead" if low > 0 else "behind" if high < 0 else "level"


def compare_arms(rl, alternative, *, paired: bool = True, better: str = "higher", confidence: float = 0.95) -> dict:
    """Gap = RL - alternative over seeds: its mean, a `confidence` interval and the verdict.

    `paired=True` when seed i of both arms shares everything but the method (the same pre-trained model, data and
    evaluation draw): the interval is that of the per-seed differences. Otherwise Welch's interval for two
    independent means (Welch-Satterthwaite degrees of freedom).
    """
    a, b = np.asarray(rl, dtype=float).ravel(), np.asarray(alternative, dtype=float).ravel()
    if paired:
        if a.size != b.size:
            raise ValueError(f"paired arms need one value per seed each, got {a.size} and {b.size}")
        mean, low, high = mean_interval(a - b, confidence)
    else:
        if min(a.size, b.size) < 2:
            raise ValueError("Welch's interval needs at least 2 seeds per arm")
        va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
        mean = float(a.mean() - b.mean())
        se = float(np.sqrt(va + vb))
        df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if se > 0 else float(a.size + b.size - 2)
        half = float(stats.t.ppf(0.5 + confidence / 2, df) * se)
        low, high = mean - half, mean + half
    return {"gap": mean, "low": low, "high": high, "seeds": int(min(a.size, b.size)),
            "verdict": verdict(low, high, better), "better": better}


def record_comparison(area: str, comparison: dict) -> dict:
    """Record a `compare_arms` result for the ledger: `<area>/ledger_gap`, `_gap_low`, `_gap_high`, `<area>/ledger_seeds`."""
    record(f"{area}/ledger_gap", comparison["gap"])
    record(f"{area}/ledger_gap_low", comparison["low"])
    record(f"{area}/ledger_gap_high", comparison["high"])
    record(f"{area}/ledger_seeds", comparison["seeds"])
    return comparison
