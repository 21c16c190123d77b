"""Slates under a conditional-logit choice model: SlateQ's decomposition and slate optimisation (Ie et al. 2019,
"SlateQ: a tractable decomposition for reinforcement learning with recommendation sets", IJCAI; survey §4).

With the user's choice P(i | s, A) over a slate A plus the no-click option ∅, and a transition that depends on the
consumed item only, the value of a slate decomposes into item-wise values Q̄(s, i):

    Q(s, A) = Σ_{i ∈ A ∪ {∅}} P(i | s, A) Q̄(s, i).

Choosing the slate that maximises it is a fractional problem, (Σ_i w_i Q̄_i + w_∅ Q̄_∅) / (Σ_i w_i + w_∅) with
w_i = exp(v_i); the paper solves it exactly by an LP or approximately by top-k / greedy. `greedy_slate` adds one
item at a time, each the one that raises the slate's value most (the paper's greedy); with Q̄ = 1 for every item
and Q̄_∅ = 0 the value is the click probability and the greedy slate is the top-k items by score (the myopic one).
"""
from __future__ import annotations

import torch

from rlgen_utils.recsys.user_model import choice_probabilities


def slate_value(slate_scores: torch.Tensor, slate_item_values: torch.Tensor, none_value: torch.Tensor,
                no_click_score: float) -> torch.Tensor:
    """Q(s, A) = Σ_{i∈A∪{∅}} P(i | s, A) Q̄(s, i) for slates given as scores (..., k) and item values (..., k)."""
    probs = choice_probabilities(slate_scores, no_click_score)
    values = torch.cat([slate_item_values, none_value[..., None]], -1)
    return (probs * values).sum(-1)


def greedy_slate(scores: torch.Tensor, item_values: torch.Tensor, none_value: torch.Tensor,
                 no_click_score: float, k: int) -> torch.Tensor:
    """A slate of k distinct items (B, k) for each row of scores (B, M) and item values Q̄ (B, M), none_value Q̄_∅ (B,).

    Greedy: slot by slot, add the item that maximises the value of the slate so far."""
    w = torch.exp(scores - no_click_score)                  # exp(v_i − v_∅): the no-click option has weight 1
    numerator, denominator = none_value.clone(), torch.ones_like(none_value)
    taken = torch.zeros_like(scores, dtype=torch.bool)
    slate = []
    for _ in range(k):
        candidate = (numerator[:, None] + w * item_values) / (denominator[:, None] + w)
        best = candidate.masked_fill(taken, -torch.inf).argmax(1)
        slate.append(best)
        taken[torch.arange(len(best)), best] = True
        numerator = numerator + (w * item_values).gather(1, best[:, None])[:, 0]
        denominator = denominator + w.gather(1, best[:, None])[:, 0]
    return torch.stack(slate, 1)


def myopic_slate(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The click-maximising slate: the k items of highest score v (it maximises 1 − P(∅ | s, A) exactly)."""
    return scores.topk(k, dim=1).indices


def random_slate(n_users: int, n_items: int, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """k distinct uniformly random items per user (B, k)."""
    return torch.rand(n_users, n_items, generator=generator).topk(k, dim=1).indices
