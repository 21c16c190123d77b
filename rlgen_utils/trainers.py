"""Policy-gradient pieces shared by every notebook: returns, GAE, REINFORCE, PPO, KL control, DPO.

They take log-probabilities and rewards as tensors, so one implementation serves Gymnasium actions
(1.2b), generated tokens (2.1, 2.2, section 3 and 4) and NAS decisions (2.3). Shapes: per-step tensors
are (T, N) time-major for environments, or (B, T) with a mask for token sequences; per-sample tensors (B,).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F


# ----------------------------------------------------------------------------- returns and advantages
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


# ----------------------------------------------------------------------------- losses
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


def ppo_update(evaluate: Callable[[dict], tuple], optimizer: torch.optim.Optimizer, batch: dict,
               epochs: int = 4, minibatch_size: int = 64, clip: float = 0.2, value_coef: float = 0.5,
               entropy_coef: float = 0.0, max_grad_norm: float = 0.5, normalise_advantages: bool = True,
               generator: torch.Generator | None = None) -> dict:
    """PPO's optimisation phase for any policy.

    `batch` holds tensors with the samples along dim 0: "logp_old", "advantages", "returns" and whatever
    `evaluate` needs (observations, tokens, ...), plus an optional "mask" for padded token steps.
    `evaluate(minibatch) -> (logp, entropy, value)` recomputes them under the current policy
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
            logp, entropy, value = evaluate(mb)
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


# ----------------------------------------------------------------------------- KL to a reference policy
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


# ----------------------------------------------------------------------------- preference learning
def bradley_terry_loss(reward_chosen: torch.Tensor, reward_rejected: torch.Tensor) -> torch.Tensor:
    """-log σ(r(y_w) - r(y_l)): the negative log-likelihood of the preferences under Bradley–Terry."""
    return -F.logsigmoid(reward_chosen - reward_rejected).mean()


def dpo_loss(logp_chosen: torch.Tensor, logp_rejected: torch.Tensor, ref_logp_chosen: torch.Tensor,
             ref_logp_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Direct preference optimisation (Rafailov et al. 2023).

    The implied reward is r̂(y) = β (log π(y) - log π_ref(y)); the loss is Bradley–Terry on r̂:
    -log σ(r̂(y_w) - r̂(y_l)). Returns (loss, r̂_chosen, r̂_rejected); log-probs are per sequence.
    """
    reward_chosen = beta * (logp_chosen - ref_logp_chosen)
    reward_rejected = beta * (logp_rejected - ref_logp_rejected)
    return bradley_terry_loss(reward_chosen, reward_rejected), reward_chosen.detach(), reward_rejected.detach()


def best_of_n_kl(n: int) -> float:
    """KL(best-of-n ‖ base) = log n - (n - 1)/n, the analytic value used for best-of-n sampling
    (Stiennon et al. 2020; exact for continuous rewards without ties, an upper bound otherwise)."""
    return math.log(n) - (n - 1) / n


# ----------------------------------------------------------------------------- KL-regularised RL on sequences (survey §2.2)
def kl_regularised_optimum(logp_ref: torch.Tensor, reward: torch.Tensor, beta: float) -> torch.Tensor:
    """log π*(x) for max_π E_π[r] − β KL(π‖π_ref) over an enumerated set: π*(x) ∝ π_ref(x) exp(r(x)/β)."""
    if beta <= 0:
        raise ValueError(f"beta must be > 0 (got {beta}); beta → 0 is plain reward maximisation")
    return torch.log_softmax(logp_ref + reward / beta, dim=-1)


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
        logp, _, values = policy.evaluate(tokens)
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
    stats = ppo_update(lambda mb: policy.evaluate(mb["tokens"]), optimizer, batch, generator=generator, **ppo_kwargs)
    kl = ((logp - logp_ref) * mask).sum(1)
    stats.update(score=float(scores.mean()), kl=float(kl.mean()), objective=float((scores - kl_coef * kl).mean()))
    return stats
