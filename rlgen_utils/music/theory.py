"""Music-theory reward r_MT(s, a) and the Table 1 metrics of Jaques et al. (2017), RL Tuner (survey §4, music).

The paper's rules (its §3.2 and its reference code, magenta's `rl_tuner`), written for the token encoding of
`tokens` (T steps of sixteenths; windows of 8 steps, the paper's "bar" for motifs), vectorised over a batch of
melodies (B, T):
- **key**: a note whose pitch class is outside C major is out of key;
- **excessive repetition**: a note with the same pitch as each of the 3 notes before it (the 4th of a run);
- **tonic**: the melody's first step is a note-on of a C;
- **leaps** (the paper's rule): an interval of a fifth or more (≥ 7 semitones) is a leap. After a leap from note p
  the melody owes a resolution: it is *resolved* when a later note, arriving by step or skip, returns to p or
  beyond it (gradual movement back), or by a leap in the opposite direction more than 6 steps after the first
  (the reference code's `steps_between_leaps`); an opposite leap sooner clears the debt without reward (so a
  zig-zag between two far notes earns nothing); a second leap in the *same* direction is a *doubled* leap;
- **autocorrelation** (the paper's variety rule): at every note, the sample autocorrelation ρ_k of the pitches
  played so far at lags k = 1, 2, 3 (lagged sum over the total sum of squares, about the prefix's mean); each
  |ρ_k| above 0.15 is penalised in proportion to |ρ_k|;
- **unique extremes**: the highest (lowest) pitch is played exactly once;
- **motif**: an 8-step window with at least 3 distinct pitches; a *repeated motif* is a motif whose 8 tokens
  equal those of an earlier window of the same melody.

`music_theory_reward` gives each step the reward of the rules its action completes (so r_MT(s_t, a_t) uses only
tokens up to t); `table1_metrics` gives the paper's Table 1 rows. Where this differs from the paper's code: rates
here are per note (the code divides by all sixteenth steps, rests and holds counted as in key), the
autocorrelation is that of the note pitches (the code's runs over the raw tokens, rests and holds included),
and the weights are the book's, not the paper's (its −100 for a repeat, ±5 for leaps, 3 per motif).
"""
from __future__ import annotations

import numpy as np

from .tokens import IN_KEY, VOCAB_SIZE, is_onset, pitch_of

WINDOW = 8
LEAP = 7
REPEATS = 3            # a note equal to the previous REPEATS notes is "excessively repeated"
LEAP_BACK_AFTER = 6    # an opposite leap resolves a leap only more than this many steps after it
LAGS = (1, 2, 3)
ACF_THRESHOLD = 0.15   # |ρ_k| above this is penalised (the paper's .15)

DEFAULT_WEIGHTS = dict(key=-1.0, repeat=-1.0, tonic=1.0, leap_resolved=1.0, leap_doubled=-1.0, autocorrelation=-0.25,
                       motif=0.5, repeated_motif=0.5, unique_max=1.0, unique_min=1.0)


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


def leap_outcomes(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(resolved (B, T), doubled (B, T)): the steps whose note resolves an earlier leap, and those whose note leaps
    a second time in the direction of an unresolved leap — the state machine of the reference code, all melodies at once."""
    tokens = np.asarray(tokens)
    b, t_len = tokens.shape
    direction = np.zeros(b, dtype=np.int64)      # +1 / −1 while a leap is unresolved, else 0
    leapt_from = np.zeros(b, dtype=np.int64)     # the note the unresolved leap left
    since = np.zeros(b, dtype=np.int64)          # steps since the last leap
    previous = np.full(b, -1, dtype=np.int64)    # the last note's pitch (−1: none yet)
    resolved = np.zeros((b, t_len), dtype=bool)
    doubled = np.zeros((b, t_len), dtype=bool)
    for t in range(t_len):
        onset = tokens[:, t] >= 2
        pitch = pitch_of(tokens[:, t])
        interval = np.where(onset & (previous >= 0), pitch - previous, 0)
        sign = np.sign(interval)
        leap = np.abs(interval) >= LEAP
        open_leap = direction != 0
        back = leap & open_leap & (sign != direction)                      # a leap back
        doubled[:, t] = leap & open_leap & (sign == direction)
        gradual = onset & ~leap & (((direction == 1) & (pitch <= leapt_from)) | ((direction == -1) & (pitch >= leapt_from)))
        resolved[:, t] = (back & (since > LEAP_BACK_AFTER)) | gradual
        new_leap = leap & ~open_leap
        leapt_from = np.where(new_leap, previous, leapt_from)
        direction = np.where(new_leap, sign, np.where(back | gradual, 0, direction))
        since = np.where(leap, 0, since + 1)
        previous = np.where(onset, pitch, previous)
    return resolved, doubled


def prefix_autocorrelation(pitches: np.ndarray, mask: np.ndarray, lag: int) -> np.ndarray:
    """ρ_lag of the first k + 1 notes, for every note k (B, N); NaN where the prefix has ≤ lag notes or no spread.
    From running sums: with n, m the prefix's count and mean, Σ_{i≥lag} (x_i − m)(x_{i−lag} − m) =
    Σ x_i x_{i−lag} − m (Σ_{i≥lag} x_i + Σ_{i≤k−lag} x_i) + (n − lag) m², and Σ (x_i − m)² = Σ x_i² − n m²."""
    x = np.where(mask, pitches - 60.0, 0.0)                                # centred near middle C (less cancellation)
    count = np.cumsum(mask, 1)
    s1, s2 = np.cumsum(x, 1), np.cumsum(x * x, 1)
    mean = s1 / np.maximum(count, 1)
    den = s2 - count * mean ** 2
    lagged = np.zeros_like(x)
    lagged[:, lag:] = np.cumsum(x[:, lag:] * x[:, :-lag], 1)              # Σ_{lag≤i≤k} x_i x_{i−lag}
    head = _shift(s1, lag, 0.0)                                            # Σ_{i≤k−lag} x_i
    tail = s1 - np.concatenate([np.zeros((len(x), 1)), s1], 1)[:, np.minimum(np.arange(x.shape[1]), lag)]  # Σ_{lag≤i≤k}
    num = lagged - mean * (tail + head) + (count - lag) * mean ** 2
    ok = mask & (count > lag) & (den > 1e-9)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, num / np.where(ok, den, 1.0), np.nan)


def note_features(tokens: np.ndarray) -> dict:
    """Per-note flags (B, N) of the rules above, per-step leap outcomes (B, T), and per-melody flags (B,)."""
    pitches, steps, mask = notes(tokens)
    out_of_key = mask & ~IN_KEY[pitches % 12]
    repeated = mask.copy()
    for k in range(1, REPEATS + 1):
        repeated &= _shift(mask, k, False) & (_shift(pitches, k, -1) == pitches)
    resolved, doubled = leap_outcomes(tokens)
    any_note = mask.any(1)
    high = np.where(mask, pitches, -1).max(1, keepdims=True)
    low = np.where(mask, pitches, 1000).min(1, keepdims=True)
    tokens = np.asarray(tokens)
    first = tokens[:, 0]
    return dict(pitches=pitches, steps=steps, mask=mask, out_of_key=out_of_key, repeated=repeated,
                resolved=resolved, doubled=doubled,
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
    """The rows of Jaques et al. (2017), Table 1, over a batch of melodies (fractions in [0, 1], ACF in [−1, 1]).
    "leaps resolved" is resolved / (resolved + doubled), as the reference code reports it (NaN without either)."""
    f = note_features(tokens)
    mask = f["mask"]
    n_notes = max(int(mask.sum()), 1)
    motif, repeated_motif = motif_windows(tokens)
    window_of_note = np.minimum(f["steps"] // WINDOW, motif.shape[1] - 1)
    in_motif = mask & np.take_along_axis(motif, window_of_note, 1) & (f["steps"] < motif.shape[1] * WINDOW)
    in_repeated = mask & np.take_along_axis(repeated_motif, window_of_note, 1) & (f["steps"] < motif.shape[1] * WINDOW)
    outcomes = int(f["resolved"].sum() + f["doubled"].sum())
    out = {
        "notes excessively repeated": f["repeated"].sum() / n_notes,
        "notes not in key": f["out_of_key"].sum() / n_notes,
        "starting with tonic": f["tonic_start"].mean(),
        "leaps resolved": f["resolved"].sum() / outcomes if outcomes else np.nan,
        "unique max note": f["unique_max"].mean(),
        "unique min note": f["unique_min"].mean(),
        "notes in motif": in_motif.sum() / n_notes,
        "notes in repeated motif": in_repeated.sum() / n_notes,
    }
    for lag in LAGS:
        acf = autocorrelation(f["pitches"], mask, lag)
        out[f"autocorrelation lag {lag}"] = float(acf[~np.isnan(acf)].mean()) if (~np.isnan(acf)).any() else np.nan
    out["notes per melody"] = mask.sum(1).mean()
    return {k: float(v) for k, v in out.items()}


def autocorrelation_penalty(pitches: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Σ_k |ρ_k| over the lags whose |ρ_k| > 0.15, for the prefix ending at every note (B, N) (0 where undefined)."""
    total = np.zeros(pitches.shape, dtype=float)
    for lag in LAGS:
        rho = np.nan_to_num(np.abs(prefix_autocorrelation(pitches, mask, lag)))
        total += np.where(rho > ACF_THRESHOLD, rho, 0.0)
    return np.where(mask, total, 0.0)


def music_theory_reward(tokens: np.ndarray, weights: dict | None = None) -> np.ndarray:
    """r_MT(s_t, a_t) for every step (B, T): each rule's reward lands on the step whose action completes it
    (a note's rules on its onset step, a leap's outcome on the resolving or doubling note, the autocorrelation of
    the notes so far on each note, a motif on its window's last step, the tonic on step 0, unique extremes on the
    last step)."""
    tokens = np.asarray(tokens)
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    b, t = tokens.shape
    f = note_features(tokens)
    per_note = w["key"] * f["out_of_key"] + w["repeat"] * f["repeated"]
    if w["autocorrelation"]:
        per_note = per_note + w["autocorrelation"] * autocorrelation_penalty(f["pitches"], f["mask"])
    reward = np.zeros((b, t))
    np.put_along_axis(reward, f["steps"], np.where(f["mask"], per_note, 0.0), axis=1)  # notes sit at distinct steps
    reward += w["leap_resolved"] * f["resolved"] + w["leap_doubled"] * f["doubled"]
    motif, repeated_motif = motif_windows(tokens)
    ends = np.arange(motif.shape[1]) * WINDOW + WINDOW - 1
    reward[:, ends] += w["motif"] * motif + w["repeated_motif"] * repeated_motif
    reward[:, 0] += w["tonic"] * f["tonic_start"]
    reward[:, -1] += w["unique_max"] * f["unique_max"] + w["unique_min"] * f["unique_min"]
    return reward
