"""rlgen_utils.music: the Table 1 metrics and r_MT on hand-made melodies with answers counted by hand, the
composer's rates against its configuration, and the MIDI round trip read back through pretty_midi."""
import numpy as np
import pytest

from rlgen_utils.music import (ComposerConfig, NO_EVENT, NOTE_OFF, compose, midi_to_tokens, music_theory_reward,
                               synthesize, table1_metrics, token_of, tokens_to_midi)
from rlgen_utils.music.theory import (DEFAULT_WEIGHTS, autocorrelation, autocorrelation_penalty, leap_outcomes,
                                      motif_windows, notes)

H, R = NO_EVENT, NOTE_OFF
C4, D4, Eb4, E4, F4, G4, A4, B4, C5 = 60, 62, 63, 64, 65, 67, 69, 71, 72


def melody(*events, length=32):
    """Events are MIDI pitches (a note-on), H (hold) or R (note-off); padded with holds to `length`."""
    row = [int(token_of(e)) if e >= 48 else e for e in events]
    return np.array(row + [H] * (length - len(row)))


def test_not_in_key_and_notes():
    x = melody(C4, H, D4, H, Eb4, H, F4, H)[None]
    pitches, steps, mask = notes(x)
    assert mask.sum() == 4 and list(pitches[0, :4]) == [C4, D4, Eb4, F4] and list(steps[0, :4]) == [0, 2, 4, 6]
    assert table1_metrics(x)["notes not in key"] == pytest.approx(1 / 4)


def test_excessive_repetition_counts_the_fourth_note_of_a_run_on():
    x = melody(G4, G4, H, G4, R, G4, G4, A4, G4)[None]   # run of 5 G's (holds and rests don't break it), A, G
    assert table1_metrics(x)["notes excessively repeated"] == pytest.approx(2 / 7)


def test_tonic_start():
    x = np.stack([melody(C5, D4), melody(H, C4), melody(D4, C4)])
    assert table1_metrics(x)["starting with tonic"] == pytest.approx(1 / 3)


def test_leaps_resolved_by_returning_to_the_note_leapt_from():
    gradual = melody(C4, A4, G4, E4, C4)          # up 9 from C4, then steps and skips back down to C4: resolved
    short = melody(C4, A4, G4)                    # moves back but never reaches C4: no outcome
    doubled = melody(C4, G4, 74)                  # up 7 and up 7 again: a doubled leap
    zigzag = melody(C4, A4, C4, A4, C4)           # leaps back at once: no reward (the debt is cleared, not paid)
    late = melody(C4, A4, *([H] * 7), C4)         # leaps back after more than 6 steps: resolved
    resolved, doubled_steps = leap_outcomes(np.stack([gradual, short, doubled, zigzag, late]))
    assert resolved.sum(1).tolist() == [1, 0, 0, 0, 1] and doubled_steps.sum(1).tolist() == [0, 0, 1, 0, 0]
    assert resolved[0, 4] and resolved[4, 9] and doubled_steps[2, 2]
    assert table1_metrics(np.stack([gradual, doubled]))["leaps resolved"] == pytest.approx(1 / 2)
    assert np.isnan(table1_metrics(short[None])["leaps resolved"])


def reference_leap_outcomes(row):
    """One melody, note by note, as magenta's RL Tuner code does it (detect_leap_up_back): the independent reference."""
    direction, leapt_from, since, previous, out = 0, None, 0, None, []
    for token in row.tolist():
        outcome = 0
        if token < 2:
            since += 1
        elif previous is None:
            since += 1
        else:
            pitch = token - 2 + 48
            interval = pitch - previous
            if abs(interval) >= 7:
                sign = 1 if interval > 0 else -1
                if direction != 0:
                    if direction != sign:
                        outcome = 1 if since > 6 else 0
                        direction, leapt_from = 0, None
                    else:
                        outcome = -1
                else:
                    direction, leapt_from = sign, previous
                since = 0
            else:
                since += 1
                if (direction == 1 and pitch <= leapt_from) or (direction == -1 and pitch >= leapt_from):
                    outcome, direction, leapt_from = 1, 0, None
        if token >= 2:
            previous = token - 2 + 48
        out.append(outcome)
    return np.array(out)


def test_leap_outcomes_match_the_reference_code_note_by_note():
    x = compose(300, np.random.default_rng(4), ComposerConfig(p_step=0.2, p_skip=0.2))   # many leaps
    resolved, doubled = leap_outcomes(x)
    want = np.stack([reference_leap_outcomes(row) for row in x])
    np.testing.assert_array_equal(resolved, want == 1)
    np.testing.assert_array_equal(doubled, want == -1)
    assert (want == 1).sum() > 50 and (want == -1).sum() > 20


def test_autocorrelation_penalty_against_a_loop_over_prefixes():
    x = compose(200, np.random.default_rng(5))
    pitches, _, mask = notes(x)
    penalty = autocorrelation_penalty(pitches, mask)
    for b in range(200):
        for k in range(int(mask[b].sum())):
            d = pitches[b, : k + 1].astype(float) - pitches[b, : k + 1].mean()
            rhos = [abs((d[lag:] * d[:-lag]).sum() / (d ** 2).sum()) for lag in (1, 2, 3) if k + 1 > lag and (d ** 2).sum() > 0]
            if any(abs(rho - 0.15) < 1e-9 for rho in rhos):
                continue                                              # exactly at the threshold: rounding decides
            assert penalty[b, k] == pytest.approx(sum(rho for rho in rhos if rho > 0.15), abs=1e-9)
    assert (penalty[~mask] == 0).all()


def test_unique_extremes():
    x = np.stack([melody(C4, E4, G4, E4), melody(C4, G4, C4, G4), melody(E4)])
    m = table1_metrics(x)
    assert m["unique max note"] == pytest.approx(2 / 3)   # G once; G twice; E once
    assert m["unique min note"] == pytest.approx(2 / 3)   # C once; C twice; E once


def test_motifs_and_repeated_motifs():
    a = [C4, H, D4, H, E4, H, H, H]          # 3 distinct pitches: a motif
    b = [C4, H, C4, H, D4, H, H, H]          # 2 distinct: not a motif
    x = melody(*(a + a + b + a))[None]       # windows: motif, repeated motif, none, repeated motif
    motif, repeated = motif_windows(x)
    assert motif.tolist() == [[True, True, False, True]] and repeated.tolist() == [[False, True, False, True]]
    m = table1_metrics(x)
    assert m["notes in motif"] == pytest.approx(9 / 12) and m["notes in repeated motif"] == pytest.approx(6 / 12)


def test_autocorrelation_by_hand():
    x = melody(C4, 61, D4, Eb4)[None]        # pitches 60, 61, 62, 63: deviations −1.5, −0.5, 0.5, 1.5, Σx² = 5
    pitches, _, mask = notes(x)
    assert autocorrelation(pitches, mask, 1)[0] == pytest.approx(1.25 / 5)
    assert autocorrelation(pitches, mask, 2)[0] == pytest.approx(-1.5 / 5)
    assert autocorrelation(pitches, mask, 3)[0] == pytest.approx(-2.25 / 5)
    rng = np.random.default_rng(0)           # against a direct loop over random melodies
    y = compose(20, rng)
    pitches, _, mask = notes(y)
    for i in range(20):
        p = pitches[i, mask[i]].astype(float)
        d = p - p.mean()
        for lag in (1, 2, 3):
            want = (d[lag:] * d[:-lag]).sum() / (d ** 2).sum() if (d ** 2).sum() > 0 else np.nan
            assert autocorrelation(pitches, mask, lag)[i] == pytest.approx(want, nan_ok=True)


def test_reward_lands_on_the_completing_step():
    row = melody(C4, H, Eb4, H, C5, H, G4, H, E4, H, Eb4, G4, G4, G4, G4)
    weights = dict(autocorrelation=0.0)
    r = music_theory_reward(row[None], weights)[0]
    want = np.zeros(32)
    want[0] += 1.0        # tonic start
    want[2] += -1.0       # Eb out of key
    want[7] += 0.5        # window 0 (C, Eb, C5, G) is a motif
    want[10] += -1.0      # Eb out of key again; and Eb4 (63) returns to the note the leap Eb4 → C5 left: resolved
    want[10] += 1.0
    want[15] += 0.5       # window 1 (G, E, Eb, G) is a motif
    want[14] += -1.0      # the 4th G in a row (G4 at steps 11..14)
    want[31] += 1.0       # C5, the highest note, is unique; C4, the lowest, is unique
    want[31] += 1.0
    np.testing.assert_allclose(r, want)
    pitches, steps, mask = notes(row[None])
    with_acf = music_theory_reward(row[None])[0]
    acf = np.zeros(32)
    acf[steps[0, mask[0]]] = DEFAULT_WEIGHTS["autocorrelation"] * autocorrelation_penalty(pitches, mask)[0, mask[0]]
    np.testing.assert_allclose(with_acf, want + acf)                  # the penalty lands on each note's step
    assert music_theory_reward(compose(50, np.random.default_rng(1))).shape == (50, 32)


def test_composer_rates_follow_its_configuration():
    rng = np.random.default_rng(0)
    x = compose(4000, rng)
    assert x.shape == (4000, 32) and x.min() >= 0 and x.max() < 38
    assert (x[:, 0] >= 2).all()                                        # every melody starts with a note
    m = table1_metrics(x)
    assert m["notes not in key"] == pytest.approx(ComposerConfig().p_chromatic, abs=0.01)
    assert m["starting with tonic"] == pytest.approx(1 / 7, abs=0.02)
    clean = table1_metrics(compose(2000, np.random.default_rng(0), ComposerConfig(p_chromatic=0.0)))
    assert clean["notes not in key"] == 0.0
    np.testing.assert_array_equal(compose(5, np.random.default_rng(3)), compose(5, np.random.default_rng(3)))


def test_midi_round_trip():
    x = compose(30, np.random.default_rng(2))
    for row in x:
        midi = tokens_to_midi(row)
        got = midi.instruments[0].notes
        steps = np.flatnonzero(row >= 2)
        assert [n.pitch for n in got] == list(row[steps] - 2 + 48)
        np.testing.assert_allclose([n.start for n in got], steps * 0.125)
        np.testing.assert_array_equal(midi_to_tokens(midi, 32), row)


def test_synthesized_pitch_is_the_note_frequency():
    fs = 8000
    audio = synthesize(melody(A4, length=16), fs=fs)                  # A4 = 440 Hz for 2 seconds
    assert np.abs(audio).max() == pytest.approx(1.0)
    segment = audio[: fs]
    spectrum = np.abs(np.fft.rfft(segment))
    assert np.fft.rfftfreq(len(segment), 1 / fs)[spectrum.argmax()] == pytest.approx(440.0, abs=1.0)
