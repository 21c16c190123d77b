"""KL to a reference policy (survey §2.2, notebooks 2.2c–2.2d, 3.5): Monte-Carlo KL estimators, the KL-penalised
reward, fixed and adaptive KL controllers (Ziegler et al. 2019), the closed-form optimum of the
KL-regularised objective, and best-of-n sampling: its analytic KL, and its exact distribution and KL over a
discrete base distribution with ties."""
from __future__ import annotations

import math

import torch


def kl_estimates(logp: torch.Tensor, logp_ref: torch.Tensor) -> dict:
    """Monte-Carlo estimators of KL(π‖π_ref) from samples of π (Schulman's k1, k2, k3).

    With log r = log π_ref - log π: k1 = -log r (unbiased), k2 = (log r)²/2 (low variance, biased),
    k3 = (r - 1) - log r (unbiased and ≥ 0). Each is returned per sample.
    """
    log_ratio = logp_ref - logp
    return {"k1": -log_ratio, "k2": 0.5 * log_ratio ** 2, "k3": torch.expm1(log_ratio) - log_ratio}


def kl_penalised_reward(reward: torch.Tensor, logp: torch.Tensor, logp_ref: torch.Tensor, beta: float) -> torch.Tensor:
    """r(x) - β (log π(x) - log π_ref(x)): the per-sample reward whose expectation is E[r] - β KL(π‖π_ref)."""
    return reward - beta * (logp - logp_ref).detach()


class FixedKLController:
    """A constant KL coefficient β."""

    def __init__(self, beta: float):
        self.value = beta

    def update(self, current_kl: float, n_steps: int) -> float:
        return self.value


class AdaptiveKLController:
    """β that steers KL(π‖π_ref) toward a target (Ziegler et al. 2019, 'Fine-tuning LMs from human preferences').

    e = clip(KL / target - 1, -0.2, 0.2);  β ← β (1 + e · n_steps / horizon).
    """

    def __init__(self, beta: float, target: float, horizon: int = 10_000):
        self.value, self.target, self.horizon = beta, target, horizon

    def update(self, current_kl: float, n_steps: int) -> float:
        error = max(-0.2, min(0.2, current_kl / self.target - 1.0))
        self.value *= 1.0 + error * n_steps / self.horizon
        return self.value


def kl_regularised_optimum(logp_ref: torch.Tensor, reward: torch.Tensor, beta: float) -> torch.Tensor:
    """log π*(x) for max_π E_π[r] − β KL(π‖π_ref) over an enumerated set: π*(x) ∝ π_ref(x) exp(r(x)/β)."""
    if beta <= 0:
        raise ValueError(f"beta must be > 0 (got {beta}); beta → 0 is plain reward maximisation")
    return torch.log_softmax(logp_ref + reward / beta, dim=-1)


def best_of_n_kl(n: int) -> float:
    """KL(best-of-n ‖ base) = log n - (n - 1)/n, the analytic value used for best-of-n sampling
    (Stiennon et al. 2020; exact for continuous rewards without ties, an upper bound otherwise)."""
    return math.log(n) - (n - 1) / n


def best_of_n_kl_exact(probs: torch.Tensor, rewards: torch.Tensor, n: int) -> float:
    """Exact KL(best-of-n ‖ base) for a discrete base distribution, ties included.

    `probs` (K,) are the base probabilities of K outcomes (summing to 1) and `rewards` (K,) their rewards.
    Best-of-n keeps the highest-reward of n independent draws; outcomes with equal rewards form one level.
    A level with base mass p whose lower levels hold mass F₋ is chosen with q = (F₋ + p)ⁿ − F₋ⁿ, and within
    a level best-of-n keeps the base's proportions, so KL = Σ_levels q log(q / p). Without ties and with
    vanishing atoms this tends to `best_of_n_kl(n)` = log n − (n − 1)/n; heavy atoms make it smaller.
    """
    probs = torch.as_tensor(probs, dtype=torch.float64).cpu()  # K scalars: the CPU whatever the caller's device
    rewards = torch.as_tensor(rewards, dtype=torch.float64).cpu()
    levels, index = torch.unique(rewards, sorted=True, return_inverse=True)
    p = torch.zeros(len(levels), dtype=torch.float64).index_add_(0, index, probs)
    p = p / p.sum()
    below = torch.cumsum(p, 0) - p
    q = (below + p).pow(n) - below.pow(n)
    keep = q > 0
    return float((q[keep] * (q[keep].log() - p[keep].log())).sum())


def best_of_n_probs(probs: torch.Tensor, rewards: torch.Tensor, n: int) -> torch.Tensor:
    """P(best-of-n returns outcome k) for a discrete base distribution, ties included (float64, on the CPU).

    The distribution behind `best_of_n_kl_exact`: a level of equal rewards with base mass p and mass F₋ below it
    is returned with probability (F₋ + p)ⁿ − F₋ⁿ, shared among the level's outcomes in their base proportions.
    So KL(result ‖ probs) equals `best_of_n_kl_exact(probs, rewards, n)`, and the expectation of any score v
    under best-of-n is `(best_of_n_probs(...) * v).sum()`.
    """
    probs = torch.as_tensor(probs, dtype=torch.float64).cpu()
    rewards = torch.as_tensor(rewards, dtype=torch.float64).cpu()
    probs = probs / probs.sum()
    levels, index = torch.unique(rewards, sorted=True, return_inverse=True)
    p = torch.zeros(len(levels), dtype=torch.float64).index_add_(0, index, probs)
    below = torch.cumsum(p, 0) - p
    q = (below + p).clamp(max=1.0).pow(n) - below.pow(n)
    share = torch.where(p[index] > 0, probs / p[index], torch.zeros_like(probs))
    return q[index] * share
