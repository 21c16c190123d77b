"""The melody encoding of Jaques et al. (2017), RL Tuner (survey §4, music): one token per sixteenth-note step.

Token 0 = note-off (silence from this step on), token 1 = no event (the sounding note, or the silence, goes on),
token 2 + k = note-on of MIDI pitch FIRST_PITCH + k, k = 0..35 (three octaves, C3 = 48 to B5 = 83), as in the
paper's 38 actions. A melody is a fixed-length row of tokens (B, T).
"""
from __future__ import annotations

import numpy as np

NOTE_OFF, NO_EVENT = 0, 1
FIRST_PITCH, N_PITCHES = 48, 36
VOCAB_SIZE = 2 + N_PITCHES
C_MAJOR = (0, 2, 4, 5, 7, 9, 11)  # pitch classes of the key
IN_KEY = np.zeros(12, dtype=bool)
IN_KEY[list(C_MAJOR)] = True


def is_onset(tokens: np.ndarray) -> np.ndarray:
    """True where a step starts a note."""
    return np.asarray(tokens) >= 2


def pitch_of(tokens: np.ndarray) -> np.ndarray:
    """MIDI pitch of a note-on token (meaningless elsewhere: −1 for note-off / no-event)."""
    tokens = np.asarray(tokens)
    return np.where(tokens >= 2, tokens - 2 + FIRST_PITCH, -1)


def token_of(pitch) -> np.ndarray:
    """The note-on token of a MIDI pitch (must lie in FIRST_PITCH .. FIRST_PITCH + 35)."""
    pitch = np.asarray(pitch)
    if np.any((pitch < FIRST_PITCH) | (pitch >= FIRST_PITCH + N_PITCHES)):
        raise ValueError(f"pitches must lie in {FIRST_PITCH}..{FIRST_PITCH + N_PITCHES - 1} (C3..B5)")
    return pitch - FIRST_PITCH + 2
