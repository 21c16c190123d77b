"""A documented stochastic melody composer in C major: the pre-training corpus of the RL Tuner notebook (survey §4).

Jaques et al. (2017) pre-trained their Note RNN on 30,000 real MIDI melodies; the book writes its own corpus
offline so that nothing is downloaded and every property of the data is known. The composer walks on the
C-major scale with folk-tune habits *and* with the flaws that music-theory rules punish, at known rates:

- **rhythm**: each note lasts 1, 2, 4 or 8 sixteenths (probabilities `durations`); the melody is cut at T steps;
  a note of ≥ 2 steps ends with a note-off (a short rest) with probability `p_rest`;
- **start**: a scale degree drawn uniformly from C4..B4 (so it starts on the tonic about 1 time in 7);
- **motion** from one note to the next, in scale degrees: repeat the pitch (probability `p_repeat`, or
  `p_repeat_again` right after a repeat: repeated notes come in runs), else a step ±1 (`p_step`), a skip
  ±2..3 (`p_skip`) or a leap ±4..7 (the rest); after a leap the next move steps back (the start of a resolution) with
  probability `p_resolve`; the walk reflects off the range G3..F5;
- **chromatic notes**: with probability `p_chromatic` a note is moved a semitone off the scale (out of key).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .tokens import C_MAJOR, FIRST_PITCH, NO_EVENT, NOTE_OFF, IN_KEY

LOW_DEGREE, HIGH_DEGREE = -3, 10   # G3 .. F5, in scale degrees from C4 (degree 0)


def degree_to_pitch(degree: np.ndarray) -> np.ndarray:
    """MIDI pitch of a C-major scale degree (0 = C4 = 60, 7 = C5, −1 = B3, ...)."""
    degree = np.asarray(degree)
    return 60 + 12 * (degree // 7) + np.asarray(C_MAJOR)[degree % 7]


@dataclass
class ComposerConfig:
    """The composer's habits (see the module docstring); the defaults write the book's corpus."""
    length: int = 32
    durations: dict = field(default_factory=lambda: {1: 0.1, 2: 0.5, 4: 0.35, 8: 0.05})
    p_rest: float = 0.15
    p_repeat: float = 0.2
    p_repeat_again: float = 0.6
    p_step: float = 0.5
    p_skip: float = 0.3
    p_resolve: float = 0.5
    p_chromatic: float = 0.08


def compose(n: int, rng: np.random.Generator, config: ComposerConfig | None = None) -> np.ndarray:
    """`n` melodies of `config.length` sixteenth-note tokens (n, T), all melodies built together step by step."""
    c = config or ComposerConfig()
    lengths = np.array(list(c.durations))
    probs = np.array(list(c.durations.values()), dtype=float)
    probs /= probs.sum()
    tokens = np.full((n, c.length), NO_EVENT, dtype=np.int64)
    degree = rng.integers(0, 7, n)                 # the first note's scale degree (C4..B4)
    remaining = np.zeros(n, dtype=np.int64)        # steps left of the sounding note
    rest_at_end = np.zeros(n, dtype=bool)
    last_move = np.zeros(n, dtype=np.int64)        # the previous motion in degrees (0 = a repeat)
    was_leap = np.zeros(n, dtype=bool)
    first = True
    for t in range(c.length):
        new = remaining == 0
        if not first:
            u = rng.random(n)
            repeat = u < np.where(last_move == 0, c.p_repeat_again, c.p_repeat)
            kind = rng.random(n)
            size = np.where(kind < c.p_step, 1, np.where(kind < c.p_step + c.p_skip, rng.integers(2, 4, n),
                                                         rng.integers(4, 8, n)))
            direction = rng.choice([-1, 1], n)
            resolve = was_leap & (rng.random(n) < c.p_resolve)
            direction = np.where(resolve, -np.sign(last_move), direction)
            size = np.where(resolve, 1, size)
            move = np.where(repeat & ~resolve, 0, direction * size)
            target = degree + move
            move = np.where((target < LOW_DEGREE) | (target > HIGH_DEGREE), -move, move)   # reflect at the range
            degree = np.where(new, degree + move, degree)
            was_leap = np.where(new, np.abs(move) >= 4, was_leap)
            last_move = np.where(new, move, last_move)
        pitch = degree_to_pitch(degree)
        chromatic = rng.random(n) < c.p_chromatic
        pitch = np.where(chromatic, np.where(IN_KEY[(pitch + 1) % 12], pitch - 1, pitch + 1), pitch)
        duration = rng.choice(lengths, n, p=probs)
        rest_at_end = np.where(new, (duration >= 2) & (rng.random(n) < c.p_rest), rest_at_end)
        tokens[:, t] = np.where(new, pitch - FIRST_PITCH + 2, NO_EVENT)
        remaining = np.where(new, duration, remaining) - 1
        tokens[:, t] = np.where(~new & (remaining == 0) & rest_at_end, NOTE_OFF, tokens[:, t])
        first = False
    return tokens
