"""PPO on generated token sequences with a KL penalty to a reference policy: the RLHF step (Ziegler et al.
2019; Stiennon et al. 2020; Ouyang et al. 2022; survey §2.2). Defined in notebook 2.2a, where it is
explained; this copy is what later notebooks import (tests/test_notebook_copies.py keeps the two identical)."""
from __future__ import annotations

from typing import Callable

import torch

from ..rl.advantages import gae
from ..rl.kl import kl_penalised_reward
from ..rl.policy_gradient import ppo_update


# Defined in notebooks/2.2a_reward_by_discriminator.ipynb, which explains it (tests/test_notebook_copies.py keeps the two identical).
def sequence_ppo_step(policy, ref_policy, score: Callable, optimizer: torch.optim.Optimizer, n: int, length: int,
                      kl_coef: float, mask_fn: Callable | None = None, lam: float = 0.95,
                      generator: torch.Generator | None = None, **ppo_kwargs) -> dict:
    """One PPO iteration on generated token sequences with a KL penalty to a reference policy
    (Ziegler et al. 2019; Stiennon et al. 2020; Ouyang et al. 2022) — the RLHF step, for any sequence score.

    Per-token reward r_t = −β (log π(y_t|y_<t) − log π_ref(y_t|y_<t)), plus score(y) at the last token, so
    Σ_t r_t is `kl_penalised_reward` of the sequence; advantages by GAE (γ = 1) with the policy's value head
    (zero values if it has none); then `ppo_update`. `mask_fn(tokens) -> (B, T)` marks the valid tokens.
    Returns PPO's statistics plus the batch's mean score, KL (Σ_t log π/π_ref, k1) and objective.
    """
    with torch.no_grad():
        tokens, _ = policy.sample(n, length, generator=generator)
        mask = mask_fn(tokens).float() if mask_fn is not None else torch.ones(tokens.shape, device=tokens.device)
        logp, _, values = policy.logp_entropy_value(tokens)
        values = torch.zeros_like(logp) if values is None else values * mask
        logp_ref = ref_policy.log_prob(tokens)
        scores = torch.as_tensor(score(tokens), dtype=logp.dtype, device=logp.device)
        rows, last = torch.arange(n, device=tokens.device), mask.sum(1).long() - 1
        rewards = kl_penalised_reward(torch.zeros_like(logp), logp, logp_ref, kl_coef) * mask
        rewards[rows, last] += scores
        dones = torch.zeros_like(logp)
        dones[rows, last] = 1.0
        advantages, returns = gae(rewards.T, values.T, dones.T, torch.zeros(n, device=logp.device), 1.0, lam)
    batch = {"tokens": tokens, "mask": mask, "logp_old": logp, "advantages": advantages.T, "returns": returns.T}
    stats = ppo_update(lambda mb: policy.logp_entropy_value(mb["tokens"]), optimizer, batch, generator=generator, **ppo_kwargs)
    kl = ((logp - logp_ref) * mask).sum(1)
    stats.update(score=float(scores.mean()), kl=float(kl.mean()), objective=float((scores - kl_coef * kl).mean()))
    return stats
