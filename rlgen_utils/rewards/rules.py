"""Hand-designed rule rewards (survey §2.2, notebook 2.2b): length, repetition and keyword rules, each
computed on the tokens before the first end mark; compose them with weights (`rewards.base`)."""
from __future__ import annotations

import torch

from ..sequences.masks import before_end
from .base import Reward


class LengthReward(Reward):
    """min(length, target) / target: a rule against terse outputs (length = tokens before the first `eos`)."""

    name = "length"

    def __init__(self, eos: int, target: int):
        if target <= 0:
            raise ValueError(f"target must be a positive length, got {target}")
        self.eos, self.target = eos, target

    def __call__(self, samples, **context) -> torch.Tensor:
        length = before_end(samples, self.eos).sum(-1).float()
        return length.clamp(max=self.target) / self.target


class RepetitionPenalty(Reward):
    """−(repeated n-grams / n-grams) before the first `eos`: 0 when no n-gram repeats, → −1 for a loop.

    An n-gram counts as repeated each time it occurs after its first occurrence (1 − distinct-n ratio).
    """

    name = "repetition"

    def __init__(self, eos: int, n: int = 2):
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.eos, self.n = eos, n

    def __call__(self, samples, **context) -> torch.Tensor:
        B, T = samples.shape
        if T < self.n:
            return torch.zeros(B, device=samples.device)
        valid = before_end(samples, self.eos)
        base = int(samples.max()) + 1
        codes = sum(samples[:, i:T - self.n + 1 + i].long() * base ** i for i in range(self.n))
        ok = valid[:, self.n - 1:]  # an n-gram is valid when its last token is before the end
        codes = torch.where(ok, codes, -1 - torch.arange(codes.shape[1], device=codes.device))  # invalid: all distinct
        sorted_codes = codes.sort(-1).values
        repeats = ((sorted_codes[:, 1:] == sorted_codes[:, :-1]) & (sorted_codes[:, 1:] >= 0)).sum(-1).float()
        return -repeats / ok.sum(-1).clamp(min=1).float()


class KeywordReward(Reward):
    """A keyword rule: 1 if any of `keywords` occurs before the first `eos` ("any"), or the number of
    occurrences ("count", the kind of rule a policy can game by repeating the keyword)."""

    name = "keyword"

    def __init__(self, keywords: list, eos: int, mode: str = "any"):
        if mode not in ("any", "count"):
            raise ValueError(f"unknown mode {mode!r}: use 'any' or 'count'")
        self.keywords, self.eos, self.mode = list(keywords), eos, mode

    def __call__(self, samples, **context) -> torch.Tensor:
        hits = torch.isin(samples, torch.tensor(self.keywords, device=samples.device)) & before_end(samples, self.eos)
        count = hits.sum(-1).float()
        return (count > 0).float() if self.mode == "any" else count
