"""Returns, advantages and baselines (survey §1.2; used from 1.2b on): discounted returns, GAE(λ)
(Schulman et al. 2016), normalisation, masked means and a moving-average baseline.

Shapes: per-step tensors are (T, N) time-major for environments, or (B, T) with a mask for token sequences."""
from __future__ import annotations

import torch


def discounted_returns(rewards: torch.Tensor, gamma: float, dones: torch.Tensor | None = None,
                       last_value: torch.Tensor | None = None) -> torch.Tensor:
    """G_t = r_t + γ (1 - done_t) G_{t+1}, time-major (T, ...); `last_value` bootstraps after the last step."""
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0]) if last_value is None else last_value.to(rewards)
    for t in reversed(range(rewards.shape[0])):
        not_done = 1.0 if dones is None else 1.0 - dones[t].to(rewards)
        running = rewards[t] + gamma * not_done * running
        returns[t] = running
    return returns


def gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor,
        gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016), time-major (T, N).

    δ_t = r_t + γ V(s_{t+1}) (1 - done_t) - V(s_t);  A_t = δ_t + γ λ (1 - done_t) A_{t+1}.
    `dones[t]` says the episode ended at step t (V(s_{t+1}) is then not used). Returns (advantages, returns).
    """
    advantages = torch.zeros_like(rewards)
    next_value, running = last_value.to(rewards), torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        not_done = 1.0 - dones[t].to(rewards)
        delta = rewards[t] + gamma * next_value * not_done - values[t]
        running = delta + gamma * lam * not_done * running
        advantages[t] = running
        next_value = values[t]
    return advantages, advantages + values


def normalise(x: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over the valid entries."""
    if mask is None:
        return (x - x.mean()) / (x.std() + eps)
    m = mask.to(x)
    mean = (x * m).sum() / m.sum()
    var = (((x - mean) ** 2) * m).sum() / (m.sum() - 1).clamp(min=1)
    return (x - mean) / (var.sqrt() + eps) * m


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    return x.mean() if mask is None else (x * mask.to(x)).sum() / mask.to(x).sum().clamp(min=1)


class MovingAverageBaseline:
    """b ← decay·b + (1 - decay)·mean(reward): the baseline of Zoph & Le (2017) and Williams (1992)."""

    def __init__(self, decay: float = 0.9):
        self.decay, self.value = decay, None

    def update(self, rewards: torch.Tensor) -> float:
        """Returns the baseline to subtract *before* it absorbs this batch (so it stays unbiased)."""
        before = float(rewards.mean()) if self.value is None else self.value
        self.value = self.decay * before + (1 - self.decay) * float(rewards.mean())
        return before
