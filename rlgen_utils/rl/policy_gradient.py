"""Policy-gradient losses (survey §1.2, 2.1; taught in 1.2b): REINFORCE (Williams 1992), PPO's clipped
surrogate (Schulman et al. 2017) and PPO's optimisation phase for any policy (written out in 4.1).

They take log-probabilities and advantages as tensors, so one implementation serves Gymnasium actions
(1.2b), generated tokens (2.1, 2.2, sections 3 and 4) and NAS decisions (2.3)."""
from __future__ import annotations

from typing import Callable

import torch

from .advantages import masked_mean, normalise


def reinforce_loss(logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Score-function (REINFORCE) surrogate: -E[log π(a) · A]; its gradient is the policy gradient."""
    return -masked_mean(logp * advantages.detach(), mask)


def ppo_clip_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor, clip: float,
                  mask: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """PPO's clipped surrogate (Schulman et al. 2017): -E[min(ρ A, clip(ρ, 1-ε, 1+ε) A)], ρ = π/π_old."""
    ratio = torch.exp(logp_new - logp_old.detach())
    adv = advantages.detach()
    surrogate = torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)
    with torch.no_grad():
        stats = {
            "clip_fraction": float(masked_mean(((ratio - 1).abs() > clip).float(), mask)),
            "approx_kl": float(masked_mean((ratio - 1) - (logp_new - logp_old), mask)),  # k3 estimator
        }
    return -masked_mean(surrogate, mask), stats


# Defined in notebooks/4.1_nlp.ipynb, which explains it (tests/test_notebook_copies.py keeps the two identical).
def ppo_update(recompute: Callable[[dict], tuple], optimizer: torch.optim.Optimizer, batch: dict,
               epochs: int = 4, minibatch_size: int = 64, clip: float = 0.2, value_coef: float = 0.5,
               entropy_coef: float = 0.0, max_grad_norm: float = 0.5, normalise_advantages: bool = True,
               generator: torch.Generator | None = None) -> dict:
    """PPO's optimisation phase for any policy.

    `batch` holds tensors with the samples along dim 0: "logp_old", "advantages", "returns" and whatever
    `recompute` needs (observations, tokens, ...), plus an optional "mask" for padded token steps.
    `recompute(minibatch) -> (logp, entropy, value)` recomputes them under the current policy
    (`value` may be None for a critic-free policy). Returns mean statistics of the last epoch.
    """
    n = batch["logp_old"].shape[0]
    params = [p for group in optimizer.param_groups for p in group["params"]]
    stats = {}
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        epoch_stats = []
        for start in range(0, n, minibatch_size):
            idx = order[start:start + minibatch_size]
            mb = {k: v[idx] for k, v in batch.items()}
            mask = mb.get("mask")
            adv = normalise(mb["advantages"], mask) if normalise_advantages else mb["advantages"]
            logp, entropy, value = recompute(mb)
            policy_loss, s = ppo_clip_loss(logp, mb["logp_old"], adv, clip, mask)
            loss = policy_loss - entropy_coef * masked_mean(entropy, mask)
            if value is not None:
                value_loss = masked_mean((value - mb["returns"]) ** 2, mask)
                loss = loss + value_coef * value_loss
                s["value_loss"] = float(value_loss.detach())
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            optimizer.step()
            s["policy_loss"] = float(policy_loss.detach())
            epoch_stats.append(s)
        stats = {k: sum(s[k] for s in epoch_stats) / len(epoch_stats) for k in epoch_stats[0]}
    return stats
