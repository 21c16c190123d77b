"""Music generation with RL (survey §4, "speech and music"): the RL Tuner of Jaques et al. (2017) in miniature.

`tokens` holds the melody encoding (the paper's: note-off, no-event, one note-on per pitch; sixteenth-note
steps), `composer` the stochastic C-major melody composer that writes the pre-training corpus, `theory` the
music-theory reward r_MT and the paper's Table 1 metrics, `midi` tokens → pretty_midi and audio.
"""
from .composer import ComposerConfig, compose
from .midi import midi_to_tokens, synthesize, tokens_to_midi
from .theory import music_theory_reward, table1_metrics
from .tokens import FIRST_PITCH, NO_EVENT, NOTE_OFF, VOCAB_SIZE, is_onset, pitch_of, token_of

__all__ = ["ComposerConfig", "compose", "midi_to_tokens", "synthesize", "tokens_to_midi", "music_theory_reward",
           "table1_metrics", "FIRST_PITCH", "NO_EVENT", "NOTE_OFF", "VOCAB_SIZE", "is_onset", "pitch_of", "token_of"]
