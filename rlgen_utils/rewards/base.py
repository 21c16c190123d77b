"""One reward interface for every reward source of survey §2.2 (and the domain scorers of §4).

A reward maps a batch of generated samples (token tensors, images, ...) to one float per sample.
Trainers only see that tensor, which is the survey's point: only the reward changes.
"""
from __future__ import annotations

from typing import Callable

import torch


class Reward:
    """A reward source: `reward(samples, **context) -> (B,) float tensor`. Subclasses set `name`."""

    name = "reward"

    def __call__(self, samples, **context) -> torch.Tensor:
        raise NotImplementedError

    def __mul__(self, weight: float) -> "WeightedSum":
        return WeightedSum([(float(weight), self)])

    __rmul__ = __mul__

    def __add__(self, other: "Reward") -> "WeightedSum":
        return WeightedSum(_terms(self) + _terms(other))


def _terms(reward: Reward) -> list:
    return list(reward.terms) if isinstance(reward, WeightedSum) else [(1.0, reward)]


class FunctionReward(Reward):
    """Wrap a plain function `fn(samples, **context) -> (B,)` as a named reward."""

    def __init__(self, fn: Callable, name: str):
        self.fn, self.name = fn, name

    def __call__(self, samples, **context) -> torch.Tensor:
        return torch.as_tensor(self.fn(samples, **context), dtype=torch.float32)


class WeightedSum(Reward):
    """Σ_i w_i r_i(x): rewards composed with weights (`0.5 * bleu + 0.1 * length`)."""

    def __init__(self, terms: list):
        self.terms = terms
        self.name = " + ".join(f"{w:g}·{r.name}" for w, r in terms)

    def components(self, samples, **context) -> dict:
        """Each term's unweighted reward, by name: what a notebook plots to show which rule moved."""
        return {r.name: r(samples, **context) for _, r in self.terms}

    def __call__(self, samples, **context) -> torch.Tensor:
        return sum(w * r(samples, **context) for w, r in self.terms)
