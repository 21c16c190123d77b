"""Melody tokens ↔ MIDI (pretty_midi) and sine-wave audio, for listening to the RL Tuner's melodies (survey §4, music).

A note starts at its note-on step and sounds until the next note-on, a note-off, or the end of the melody; one
step is a sixteenth note (0.125 s at 120 beats per minute). `PrettyMIDI.synthesize` renders sine waves, so no
sound font is needed.
"""
from __future__ import annotations

import warnings

import numpy as np

from .tokens import FIRST_PITCH, NOTE_OFF, N_PITCHES

with warnings.catch_warnings():  # pretty_midi's dependencies may warn on import (pkg_resources and the like)
    warnings.simplefilter("ignore")
    import pretty_midi

STEP_SECONDS = 0.125


def tokens_to_midi(tokens, step_seconds: float = STEP_SECONDS, program: int = 0, velocity: int = 90,
                   gap_steps: int = 0) -> "pretty_midi.PrettyMIDI":
    """One melody (T,) or several (B, T), played one after another with `gap_steps` of silence between them."""
    rows = np.atleast_2d(np.asarray(tokens))
    midi = pretty_midi.PrettyMIDI(initial_tempo=60.0 / (4 * step_seconds))
    instrument = pretty_midi.Instrument(program=program)
    offset = 0.0
    for row in rows:
        start, pitch = None, None
        for t, token in enumerate(row.tolist() + [NOTE_OFF]):   # a final note-off closes the last note
            if token == NOTE_OFF or token >= 2:
                if pitch is not None:
                    instrument.notes.append(pretty_midi.Note(velocity, pitch, offset + start * step_seconds,
                                                             offset + t * step_seconds))
                start, pitch = (t, FIRST_PITCH + token - 2) if token >= 2 else (None, None)
        offset += (len(row) + gap_steps) * step_seconds
    midi.instruments.append(instrument)
    return midi


def midi_to_tokens(midi: "pretty_midi.PrettyMIDI", length: int, step_seconds: float = STEP_SECONDS) -> np.ndarray:
    """The tokens (length,) of a one-melody MIDI: note starts and ends quantised to the step grid."""
    tokens = np.ones(length, dtype=np.int64)
    notes = sorted((n for inst in midi.instruments for n in inst.notes), key=lambda n: n.start)
    for note in notes:
        start, end = int(round(note.start / step_seconds)), int(round(note.end / step_seconds))
        if not FIRST_PITCH <= note.pitch < FIRST_PITCH + N_PITCHES:
            raise ValueError(f"pitch {note.pitch} is outside the encoding's range")
        if start < length:
            tokens[start] = note.pitch - FIRST_PITCH + 2
        if end < length and tokens[end] == 1:
            tokens[end] = NOTE_OFF
    return tokens


def synthesize(tokens, fs: int = 8000, step_seconds: float = STEP_SECONDS, gap_steps: int = 0) -> np.ndarray:
    """Mono float audio of the melody (or melodies) as sine waves at sample rate `fs`, peak-normalised."""
    audio = tokens_to_midi(tokens, step_seconds, gap_steps=gap_steps).synthesize(fs=fs)
    return audio / max(float(np.abs(audio).max()), 1e-9)
