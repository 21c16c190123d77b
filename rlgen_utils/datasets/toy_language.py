"""The toy language of survey §2.2 (notebooks 2.2a–2.2d, reused in section 3): quality known exactly.

A tiny grammar generates the pre-training data (sentences such as "the good cat likes a dog ."); a
recurrent generator is pre-trained on it by MLE (`pretrained_generator`); a hidden *gold* scorer (grammar
violations plus a hidden taste for some words) says how good any generated sequence really is. Every reward
a notebook builds (a discriminator, hand-written rules, a learned reward model) is a proxy for that gold
score, so each notebook can report what its reward actually achieved, not just the reward it optimised.

Sequences are (B, T) token tensors; token 0 is the end mark "."; everything after the first "." is
padding (`content_mask` marks the tokens that count, the "." included because emitting it is an action).
"""
from __future__ import annotations

import numpy as np
import torch

from ..rewards.base import Reward
from ..runtime import sample_categorical
from ..sequences.masks import through_end
from ..sequences.policy import SequencePolicy, sequence_mle_loss

WORDS = [".", "the", "a", "good", "big", "small", "red", "cat", "dog", "bird", "sees", "likes", "chases"]


EOS = 0


VOCAB = len(WORDS)


MAX_LEN = 12


CLASSES = {"DET": ["the", "a"], "ADJ": ["good", "big", "small", "red"], "NOUN": ["cat", "dog", "bird"],
           "VERB": ["sees", "likes", "chases"], "END": ["."]}


# The grammar: which word class may follow which ("START" is before the first word).
FOLLOWS = {"START": {"DET": 1.0}, "DET": {"ADJ": 0.4, "NOUN": 0.6}, "ADJ": {"NOUN": 1.0},
           "NOUN": {"END": 0.5, "VERB": 0.5}, "VERB": {"DET": 1.0}}


# The hidden taste of the gold scorer: how much a reader likes each word (the grammar words are neutral).
TASTE = {"good": 1.0, "big": 0.4, "small": -0.4, "red": 0.2, "cat": 0.8, "dog": 0.0, "bird": -0.6,
         "sees": 0.0, "likes": 0.6, "chases": -0.8}


VIOLATION_COST = 1.0


_CLASS_OF = {w: c for c, ws in CLASSES.items() for w in ws}


_START = VOCAB  # row index of the START state in the transition tables


def _tables():
    """(allowed (V+1, V) bool, data transition probabilities (V+1, V)); row VOCAB is the START state."""
    rng = np.random.default_rng(0)  # fixed: the language is part of the testbed, not of a run
    word_probs = {c: rng.dirichlet(np.full(len(ws), 2.0)) for c, ws in CLASSES.items()}
    allowed = np.zeros((VOCAB + 1, VOCAB), dtype=bool)
    probs = np.zeros((VOCAB + 1, VOCAB))
    for prev in range(VOCAB + 1):
        cls = "START" if prev == _START else _CLASS_OF[WORDS[prev]]
        for nxt_cls, p in FOLLOWS.get(cls, {}).items():
            for w, q in zip(CLASSES[nxt_cls], word_probs[nxt_cls]):
                allowed[prev, WORDS.index(w)] = True
                probs[prev, WORDS.index(w)] = p * q
    return torch.tensor(allowed), torch.tensor(probs, dtype=torch.float32)


ALLOWED, DATA_PROBS = _tables()


TASTE_VECTOR = torch.tensor([TASTE.get(w, 0.0) for w in WORDS])


def content_mask(tokens: torch.Tensor) -> torch.Tensor:
    """(B, T) float mask of the tokens up to and including the first "." (all T if there is none)."""
    return through_end(tokens, EOS).float()


def lengths(tokens: torch.Tensor) -> torch.Tensor:
    """Number of words before the first "." (the end mark not counted)."""
    return (content_mask(tokens) * (tokens != EOS).float()).sum(1)


def tokens_to_text(tokens: torch.Tensor) -> list[str]:
    """Sequences as text, cut after the first "."."""
    out = []
    for row, m in zip(tokens.tolist(), content_mask(tokens).tolist()):
        out.append(" ".join(WORDS[t] for t, keep in zip(row, m) if keep))
    return out


def text_to_tokens(sentences: list[str], length: int = MAX_LEN) -> torch.Tensor:
    """Text such as "the cat ." to a (B, length) token tensor padded with "."."""
    rows = []
    for s in sentences:
        try:
            ids = [WORDS.index(w) for w in s.split()]
        except ValueError as err:
            raise ValueError(f"{err}: the testbed's words are {WORDS}") from None
        if len(ids) > length:
            raise ValueError(f"{s!r} has {len(ids)} tokens, more than length={length}")
        rows.append(ids + [EOS] * (length - len(ids)))
    return torch.tensor(rows, dtype=torch.long)


def sample_data(n: int, generator: torch.Generator | None = None, length: int = MAX_LEN) -> torch.Tensor:
    """n sentences of the true language (the grammar's Markov chain), those ending within `length` tokens."""
    kept, need = [], n
    while need > 0:
        m = 2 * need + 16
        tokens = torch.empty(m, length, dtype=torch.long)
        state = torch.full((m,), _START, dtype=torch.long)
        chain = DATA_PROBS.clone()
        chain[EOS, EOS] = 1.0  # after "." the sentence is over: pad with "."
        for t in range(length):
            tokens[:, t] = sample_categorical(chain[state], generator)
            state = tokens[:, t]
        ok = (tokens == EOS).any(1)
        kept.append(tokens[ok][:need])
        need -= int(ok.sum().clamp(max=need))
    return torch.cat(kept)


def violations(tokens: torch.Tensor) -> torch.Tensor:
    """Grammar violations per sequence: disallowed transitions (from START to the end mark), plus 1 when
    the sequence never ends."""
    mask = content_mask(tokens)
    prev = torch.cat([torch.full_like(tokens[:, :1], _START), tokens[:, :-1]], 1)
    bad = (~ALLOWED.to(tokens.device)[prev, tokens]).float() * mask
    unterminated = (~(tokens == EOS).any(1)).float()
    return bad.sum(1) + unterminated


def taste(tokens: torch.Tensor) -> torch.Tensor:
    """Mean hidden taste of the words before the end mark (0 for an empty sequence)."""
    words = content_mask(tokens) * (tokens != EOS).float()
    return (TASTE_VECTOR.to(tokens.device)[tokens] * words).sum(1) / words.sum(1).clamp(min=1)


def gold_score(tokens: torch.Tensor) -> torch.Tensor:
    """The hidden true quality: mean word taste − VIOLATION_COST · grammar violations."""
    return taste(tokens) - VIOLATION_COST * violations(tokens)


class GoldReward(Reward):
    """The gold scorer as a Reward: what a notebook measures, and what the preference labels come from."""

    name = "gold"

    def __call__(self, samples, **context):
        return gold_score(samples)


def data_log_prob(tokens: torch.Tensor) -> torch.Tensor:
    """Exact log-probability of each sequence under the true language (−inf if it cannot be generated)."""
    mask = content_mask(tokens)
    prev = torch.cat([torch.full_like(tokens[:, :1], _START), tokens[:, :-1]], 1)
    logp = torch.log(DATA_PROBS.to(tokens.device)[prev, tokens]) * mask
    logp = torch.where(mask > 0, logp, torch.zeros_like(logp))
    return logp.sum(1) + torch.where((tokens == EOS).any(1), 0.0, -float("inf"))


def distinct_fraction(tokens: torch.Tensor) -> float:
    """Fraction of distinct sequences in a batch (after the end mark): 1 = all different, 1/B = collapsed."""
    return len(set(tokens_to_text(tokens))) / len(tokens)


def sequence_log_prob(policy: SequencePolicy, tokens: torch.Tensor) -> torch.Tensor:
    """log π(y) = Σ_t log π(y_t | y_<t) over the content tokens (the end mark included)."""
    return (policy.log_prob(tokens) * content_mask(tokens)).sum(1)


def pretrained_generator(steps: int = 300, hidden: int = 48, batch_size: int = 128, lr: float = 3e-3,
                         seed: int = 0, device=None) -> SequencePolicy:
    """A GRU generator (with a value head for PPO) pre-trained by MLE on sentences of the true language.

    Fewer `steps` give a weaker generator that still breaks the grammar now and then (2.2a uses that).
    Seeds torch's global generator with `seed` (for the weights), so the model does not depend on what ran before.
    """
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    policy = SequencePolicy(VOCAB, hidden=hidden, cell="gru", value_head=True).to(device or "cpu")
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    data = sample_data(steps * batch_size if steps * batch_size <= 20_000 else 20_000, generator=g)
    for _ in range(steps):
        batch = data[torch.randint(len(data), (batch_size,), generator=g)].to(policy.head.weight.device)
        loss = sequence_mle_loss(policy, batch, content_mask(batch))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return policy.eval()
