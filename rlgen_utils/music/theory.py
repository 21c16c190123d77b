"""Music-theory reward r_MT(s, a) and the Table 1 metrics of Jaques et al. (2017), RL Tuner (survey §4, music).

The paper's rules, simplified and written for the token encoding of `tokens` (T steps of sixteenths; windows
of 8 steps, the paper's "bar" for motifs), all vectorised over a batch of melodies (B, T):
- **key**: a note whose pitch class is outside C major is out of key;
- **excessive repetition**: a note with the same pitch as each of the 3 notes before it (the 4th of a run);
- **tonic**: the melody's first step is a note-on of a C;
- **leaps**: an interval of a fifth or more (≥ 7 semitones) between consecutive notes is a leap; it is
  *resolved* when the next interval moves back in the opposite direction;
- **unique extremes**: the highest (lowest) pitch is played exactly once;
- **motif**: an 8-step window with at least 3 distinct pitches; a *repeated motif* is a motif whose 8 tokens
  equal those of an earlier window of the same melody;
- **autocorrelation** of the note pitches at lags 1, 2, 3 (the usual sample ACF: lagged sum over total sum of
  squares, per melody, about the melody's mean).

`music_theory_reward` gives each step the reward of the rules its action completes (so r_MT(s_t, a_t) uses only
tokens up to t); `table1_metrics` gives the paper's Table 1 rows as fractions.
"""
from __future__ import annotations

import numpy as np

from .tokens import IN_KEY, VOCAB_SIZE, is_onset, pitch_of

WINDOW = 8
LEAP = 7
REPEATS = 3  # a note equal to the previous REPEATS notes is "excessively repeated"

DEFAULT_WEIGHTS = dict(key=-1.0, repeat=-1.0, tonic=1.0, leap_resolved=1.0, leap_unresolved=-1.0, motif=0.5,
                       repeated_motif=0.5, unique_max=1.0, unique_min=1.0)


def notes(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The notes of each melody, left-aligned: (pitches (B, N), step of each note (B, N), mask (B, N)), N = T."""
    tokens = np.asarray(tokens)
    onset = is_onset(tokens)
    order = np.argsort(~onset, axis=1, kind="stable")     # note steps first, in time order
    pitches = np.take_along_axis(pitch_of(tokens), order, axis=1)
    mask = np.take_along_axis(onset, order, axis=1)
    return np.where(mask, pitches, 0), order, mask


def _shift(x: np.ndarray, k: int, fill) -> np.ndarray:
    """x[:, i - k] at column i (fill where i < k)."""
    out = np.full_like(x, fill)
    out[:, k:] = x[:, :-k] if k else x
    return out


def note_features(tokens: np.ndarray) -> dict:
    """Per-note flags (B, N) of the rules above, and per-melody flags (B,)."""
    pitches, steps, mask = notes(tokens)
    out_of_key = mask & ~IN_KEY[pitches % 12]
    repeated = mask.copy()
    for k in range(1, REPEATS + 1):
        repeated &= _shift(mask, k, False) & (_shift(pitches, k, -1) == pitches)
    interval = np.where(mask & _shift(mask, 1, False), pitches - _shift(pitches, 1, 0), 0)
    leap = np.abs(interval) >= LEAP                                   # the note that arrives by a leap
    after_leap = _shift(leap, 1, False) & mask                        # the note that must resolve it
    resolved = after_leap & (np.sign(interval) == -np.sign(_shift(interval, 1, 0))) & (interval != 0)
    any_note = mask.any(1)
    high = np.where(mask, pitches, -1).max(1, keepdims=True)
    low = np.where(mask, pitches, 1000).min(1, keepdims=True)
    tokens = np.asarray(tokens)
    first = tokens[:, 0]
    return dict(pitches=pitches, steps=steps, mask=mask, out_of_key=out_of_key, repeated=repeated, leap=leap,
                after_leap=after_leap, resolved=resolved,
                tonic_start=is_onset(first) & (pitch_of(first) % 12 == 0),
                unique_max=any_note & ((mask & (pitches == high)).sum(1) == 1),
                unique_min=any_note & ((mask & (pitches == low)).sum(1) == 1))


def motif_windows(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is a motif (B, W), is a repeated motif (B, W)) for the W = T // 8 windows of each melody."""
    tokens = np.asarray(tokens)
    b, t = tokens.shape
    w = t // WINDOW
    windows = tokens[:, : w * WINDOW].reshape(b, w, WINDOW)
    present = np.zeros((b, w, VOCAB_SIZE), dtype=bool)
    np.put_along_axis(present, windows, True, axis=2)
    motif = present[:, :, 2:].sum(2) >= 3
    same = (windows[:, :, None, :] == windows[:, None, :, :]).all(-1)     # (B, W, W'): window w equals w'
    earlier = np.tril(np.ones((w, w), dtype=bool), k=-1)                   # w' < w
    return motif, motif & (same & earlier).any(2)


def autocorrelation(pitches: np.ndarray, mask: np.ndarray, lag: int) -> np.ndarray:
    """Sample autocorrelation at `lag` of each melody's note pitches (B,); NaN when it has ≤ lag notes or no spread."""
    n = mask.sum(1)
    mean = np.where(mask, pitches, 0).sum(1) / np.maximum(n, 1)
    x = np.where(mask, pitches - mean[:, None], 0.0)
    num = (x[:, lag:] * x[:, :-lag]).sum(1)
    den = (x ** 2).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n > lag) & (den > 0), num / den, np.nan)


def table1_metrics(tokens: np.ndarray) -> dict:
    """The rows of Jaques et al. (2017), Table 1, over a batch of melodies (fractions in [0, 1], ACF in [−1, 1])."""
    f = note_features(tokens)
    mask = f["mask"]
    n_notes = max(int(mask.sum()), 1)
    motif, repeated_motif = motif_windows(tokens)
    window_of_note = np.minimum(f["steps"] // WINDOW, motif.shape[1] - 1)
    in_motif = mask & np.take_along_axis(motif, window_of_note, 1) & (f["steps"] < motif.shape[1] * WINDOW)
    in_repeated = mask & np.take_along_axis(repeated_motif, window_of_note, 1) & (f["steps"] < motif.shape[1] * WINDOW)
    out = {
        "notes excessively repeated": f["repeated"].sum() / n_notes,
        "notes not in key": f["out_of_key"].sum() / n_notes,
        "starting with tonic": f["tonic_start"].mean(),
        "leaps resolved": f["resolved"].sum() / max(int(f["after_leap"].sum()), 1),
        "unique max note": f["unique_max"].mean(),
        "unique min note": f["unique_min"].mean(),
        "notes in motif": in_motif.sum() / n_notes,
        "notes in repeated motif": in_repeated.sum() / n_notes,
    }
    for lag in (1, 2, 3):
        acf = autocorrelation(f["pitches"], mask, lag)
        out[f"autocorrelation lag {lag}"] = float(acf[~np.isnan(acf)].mean()) if (~np.isnan(acf)).any() else np.nan
    out["notes per melody"] = mask.sum(1).mean()
    return {k: float(v) for k, v in out.items()}


def music_theory_reward(tokens: np.ndarray, weights: dict | None = None) -> np.ndarray:
    """r_MT(s_t, a_t) for every step (B, T): each rule's reward lands on the step whose action completes it
    (a note on its onset step, a leap's resolution on the next note, a motif on its window's last step,
    the tonic on step 0, unique extremes on the last step)."""
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    tokens = np.asarray(tokens)
    b, t = tokens.shape
    f = note_features(tokens)
    per_note = (w["key"] * f["out_of_key"] + w["repeat"] * f["repeated"]
                + w["leap_resolved"] * f["resolved"] + w["leap_unresolved"] * (f["after_leap"] & ~f["resolved"]))
    reward = np.zeros((b, t))
    np.put_along_axis(reward, f["steps"], np.where(f["mask"], per_note, 0.0), axis=1)  # notes sit at distinct steps
    motif, repeated_motif = motif_windows(tokens)
    ends = np.arange(motif.shape[1]) * WINDOW + WINDOW - 1
    reward[:, ends] += w["motif"] * motif + w["repeated_motif"] * repeated_motif
    reward[:, 0] += w["tonic"] * f["tonic_start"]
    reward[:, -1] += w["unique_max"] * f["unique_max"] + w["unique_min"] * f["unique_min"]
    return reward
