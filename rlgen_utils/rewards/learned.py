"""Learned rewards (survey §2.2): a discriminator's belief as a reward (2.2a), and a Bradley–Terry reward
model fitted on pairwise preferences from a noisy gold judge on the toy language (2.2d, section 3)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from ..datasets.toy_language import MAX_LEN, VOCAB, content_mask, gold_score
from ..rl.preferences import bradley_terry_loss
from ..sequences.policy import SequencePolicy
from .base import Reward


class DiscriminatorReward(Reward):
    """A discriminator's belief that a sample is real, as a reward (SeqGAN, Yu et al. 2017; survey §2.2).

    `discriminator(samples)` returns logits; kind "prob" gives D(x) = σ(logit), "log" gives log D(x),
    "logit" the logit itself. No gradient flows into the discriminator (it is a reward, not a loss).
    """

    name = "discriminator"

    def __init__(self, discriminator: Callable, kind: str = "prob"):
        if kind not in ("prob", "log", "logit"):
            raise ValueError(f"unknown kind {kind!r}: use 'prob', 'log' or 'logit'")
        self.discriminator, self.kind = discriminator, kind

    def __call__(self, samples, **context) -> torch.Tensor:
        with torch.no_grad():
            logits = self.discriminator(samples).float()
        return {"prob": torch.sigmoid, "log": torch.nn.functional.logsigmoid, "logit": lambda z: z}[self.kind](logits)


def preference_pairs(policy: SequencePolicy, n_pairs: int, temperature: float = 0.2,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs of the policy's samples labelled by a noisy annotator (Bradley–Terry on the gold score):

    P(y_a ≻ y_b) = σ((gold(y_a) − gold(y_b)) / temperature). Returns (chosen, rejected), each (n_pairs, T).
    """
    a, _ = policy.sample(n_pairs, MAX_LEN, generator=generator)
    b, _ = policy.sample(n_pairs, MAX_LEN, generator=generator)
    p_a = torch.sigmoid((gold_score(a) - gold_score(b)) / temperature)
    a_wins = (torch.rand(n_pairs, generator=generator) < p_a.cpu()).to(a.device).unsqueeze(1)
    return torch.where(a_wins, a, b), torch.where(a_wins, b, a)


class RewardModel(nn.Module, Reward):
    """A small learned reward r_φ(y): embedding → GRU → masked mean of the states → linear score."""

    name = "reward model"

    def __init__(self, vocab_size: int = VOCAB, hidden: int = 32):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden)
        self.rnn = nn.GRU(hidden, hidden, batch_first=True)
        self.out = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = content_mask(tokens).unsqueeze(-1)
        h, _ = self.rnn(self.embed(tokens))
        mean = (h * mask).sum(1) / mask.sum(1)
        last = h.gather(1, (mask.sum(1).long() - 1).unsqueeze(-1).expand(-1, 1, h.shape[-1])).squeeze(1)
        return self.out(torch.cat([mean, last], -1)).squeeze(-1)

    def __call__(self, samples, **context):
        return nn.Module.__call__(self, samples)


# Defined in notebooks/2.2d_reward_by_learned_model.ipynb, which explains it (tests/test_notebook_copies.py keeps the two identical).
def fit_reward_model(model: nn.Module, chosen: torch.Tensor, rejected: torch.Tensor, steps: int = 300,
                     batch_size: int = 128, lr: float = 3e-3, generator: torch.Generator | None = None) -> list:
    """Train a scorer on preference pairs with the Bradley–Terry loss −log σ(r(y_w) − r(y_l)); returns losses."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(chosen), (batch_size,), generator=generator)
        loss = bradley_terry_loss(model(chosen[idx]), model(rejected[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@torch.no_grad()
def preference_accuracy(score, chosen: torch.Tensor, rejected: torch.Tensor) -> float:
    """Fraction of pairs where the scorer ranks the chosen sequence higher (ties count half)."""
    a, b = score(chosen), score(rejected)
    return float(((a > b).float() + 0.5 * (a == b).float()).mean())
