"""A small denoising diffusion model (DDPM, Ho et al. 2020) whose reverse chain is a policy (DDPO, Black et al.
2023; survey §4.3, notebook 4.3): the noise schedule, the forward process q(x_t | x_0), an ε-prediction
network with a time embedding, the reverse step p_θ(x_{t-1} | x_t) as a Gaussian with its mean and std exposed
(so log p_θ(x_{t-1} | x_t) is available for a policy gradient), and batched sampling that keeps the chain.

Indexing: the paper's steps t = 1..T are the tensor indices t = 0..T-1 here (`betas[t]` is the paper's β_{t+1}).
Data live in [-1, 1] (`to_model_range` / `to_pixel_range` convert from and to [0, 1] pixels).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn as nn

from .layers import mlp


# ----------------------------------------------------------------------------- the noise schedule
class NoiseSchedule(NamedTuple):
    """β_t, α_t = 1 − β_t, ᾱ_t = Π_{s≤t} α_s, ᾱ_{t-1} (1 for the first step) and the reverse step's variance σ_t²."""
    betas: torch.Tensor
    alphas: torch.Tensor
    alpha_bars: torch.Tensor
    alpha_bars_prev: torch.Tensor
    sigmas2: torch.Tensor

    @property
    def T(self) -> int:
        return len(self.betas)

    def to(self, device) -> "NoiseSchedule":
        return NoiseSchedule(*(v.to(device) for v in self))


def make_schedule(betas: torch.Tensor, variance: str = "posterior") -> NoiseSchedule:
    """The schedule from β_1..β_T. `variance` picks the reverse step's σ_t² (DDPM §3.2): "beta" (σ_t² = β_t) or
    "posterior" (σ_t² = β̃_t = (1 − ᾱ_{t-1}) / (1 − ᾱ_t) · β_t, except β_1 at the first step, where β̃_1 = 0 would
    make the last action deterministic and its log-probability undefined)."""
    betas = torch.as_tensor(betas, dtype=torch.float32)
    if betas.dim() != 1 or not ((betas > 0) & (betas < 1)).all():
        raise ValueError("betas must be a 1-D tensor with every β_t in (0, 1)")
    alphas = 1.0 - betas
    alpha_bars = torch.cumprod(alphas, 0)
    alpha_bars_prev = torch.cat([torch.ones(1), alpha_bars[:-1]])
    if variance == "beta":
        sigmas2 = betas.clone()
    elif variance == "posterior":
        sigmas2 = (1 - alpha_bars_prev) / (1 - alpha_bars) * betas
        sigmas2[0] = betas[0]
    else:
        raise ValueError(f"unknown variance {variance!r}: use 'posterior' or 'beta'")
    return NoiseSchedule(betas, alphas, alpha_bars, alpha_bars_prev, sigmas2)


def linear_betas(T: int, beta_1: float = 1e-3, beta_T: float = 0.2) -> torch.Tensor:
    """β_t evenly spaced from β_1 to β_T (DDPM used 1e-4..0.02 over T = 1000; few steps need larger β)."""
    return torch.linspace(beta_1, beta_T, T)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal (2021): ᾱ(t) = cos²((t/T + s)/(1 + s) · π/2), β_t = 1 − ᾱ(t)/ᾱ(t−1), clipped."""
    f = torch.cos((torch.arange(T + 1, dtype=torch.float64) / T + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta).float()


def to_model_range(x01: torch.Tensor) -> torch.Tensor:
    return 2 * x01 - 1


def to_pixel_range(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1) / 2).clamp(0, 1)


def _at(values: torch.Tensor, t: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
    """values[t] broadcast against `like` (B, d): t is an int or a (B,) tensor of step indices."""
    if isinstance(t, int):
        return values[t].to(like)
    return values.to(like.device)[t.to(like.device)].to(like).view(-1, *([1] * (like.dim() - 1)))


# ----------------------------------------------------------------------------- the forward process
def q_sample(schedule: NoiseSchedule, x0: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
    """x_t ~ q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I), written x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε (DDPM eq. 4)."""
    ab = _at(schedule.alpha_bars, t, x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def q_step(schedule: NoiseSchedule, x_prev: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
    """One forward step x_t ~ q(x_t | x_{t-1}) = N(√(1 − β_t) x_{t-1}, β_t I) (DDPM eq. 2)."""
    beta = _at(schedule.betas, t, x_prev)
    return (1 - beta).sqrt() * x_prev + beta.sqrt() * eps


def q_posterior_mean_variance(schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor, t):
    """q(x_{t-1} | x_t, x_0) = N(μ̃_t, β̃_t I) (DDPM eq. 6–7):
    μ̃_t = √ᾱ_{t-1} β_t / (1 − ᾱ_t) · x_0 + √α_t (1 − ᾱ_{t-1}) / (1 − ᾱ_t) · x_t,  β̃_t = (1 − ᾱ_{t-1}) / (1 − ᾱ_t) · β_t."""
    beta, alpha = _at(schedule.betas, t, x_t), _at(schedule.alphas, t, x_t)
    ab, ab_prev = _at(schedule.alpha_bars, t, x_t), _at(schedule.alpha_bars_prev, t, x_t)
    mean = ab_prev.sqrt() * beta / (1 - ab) * x0 + alpha.sqrt() * (1 - ab_prev) / (1 - ab) * x_t
    variance = (1 - ab_prev) / (1 - ab) * beta
    return mean, variance.expand_as(x_t)


# ----------------------------------------------------------------------------- the ε-prediction network
def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 1000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer steps (Vaswani et al. 2017, as in DDPM): (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class EpsilonNet(nn.Module):
    """ε_θ(x_t, t): an MLP on [x_t, embed(t)] predicting the noise that made x_t (a conv net is not needed at 8×8)."""

    def __init__(self, x_dim: int, hidden: int = 256, depth: int = 3, time_dim: int = 32):
        super().__init__()
        self.x_dim, self.time_dim = x_dim, time_dim
        self.time_mlp = mlp([time_dim, hidden, time_dim], act=nn.SiLU)
        self.net = mlp([x_dim + time_dim] + [hidden] * depth + [x_dim], act=nn.SiLU)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x_t.dim() != 2 or x_t.shape[1] != self.x_dim:
            raise ValueError(f"EpsilonNet expects (batch, {self.x_dim}) inputs, got {tuple(x_t.shape)}")
        t = t.expand(len(x_t)) if t.dim() == 0 else t
        emb = self.time_mlp(timestep_embedding(t.to(x_t.device), self.time_dim))
        return self.net(torch.cat([x_t, emb], dim=-1))


def ddpm_loss(model: nn.Module, schedule: NoiseSchedule, x0: torch.Tensor, generator: torch.Generator,
              weights: torch.Tensor | None = None) -> torch.Tensor:
    """DDPM's simple loss E_{t, ε} ‖ε − ε_θ(√ᾱ_t x_0 + √(1 − ᾱ_t) ε, t)‖² (eq. 14), one (t, ε) per image; with
    `weights` (B,) a weighted sum over images instead of the mean (reward-weighted regression)."""
    t = torch.randint(schedule.T, (len(x0),), generator=generator).to(x0.device)
    eps = torch.randn(x0.shape, generator=generator).to(x0.device)
    per_image = (eps - model(q_sample(schedule, x0, t, eps), t)).pow(2).mean(-1)
    return per_image.mean() if weights is None else (weights.to(per_image) * per_image).sum()


# ----------------------------------------------------------------------------- the reverse step as a policy
def predict_x0(schedule: NoiseSchedule, x_t: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
    """x̂_0 = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t: eq. 4 solved for x_0 given the (predicted) noise."""
    ab = _at(schedule.alpha_bars, t, x_t)
    return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()


def reverse_mean_std(model: nn.Module, schedule: NoiseSchedule, x_t: torch.Tensor, t, clip_x0: bool = True):
    """p_θ(x_{t-1} | x_t) = N(μ_θ, σ_t² I) with μ_θ = μ̃_t(x̂_0, x_t), the posterior mean at the predicted
    x̂_0 = (x_t − √(1 − ᾱ_t) ε_θ(x_t, t)) / √ᾱ_t. Unclipped this is DDPM's eq. 11,
    μ_θ = (x_t − β_t / √(1 − ᾱ_t) · ε_θ) / √α_t; `clip_x0` clips x̂_0 to the data range [-1, 1] first, as
    DDPM's sampler does (with few steps, β_T near 1 would otherwise blow errors up by 1/√α_T).
    Returns (μ_θ, σ_t) broadcast to x_t's shape."""
    t_vec = torch.full((len(x_t),), t, dtype=torch.long, device=x_t.device) if isinstance(t, int) else t.to(x_t.device)
    x0_hat = predict_x0(schedule, x_t, t_vec, model(x_t, t_vec))
    if clip_x0:
        x0_hat = x0_hat.clamp(-1, 1)
    mean, _ = q_posterior_mean_variance(schedule, x0_hat, x_t, t_vec)
    std = _at(schedule.sigmas2, t_vec, x_t).sqrt().expand_as(x_t)
    return mean, std


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag std²) summed over the last dimension: one log-probability per image."""
    return (-0.5 * ((x - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)


def gaussian_kl_same_std(mean_p: torch.Tensor, mean_q: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL(N(mean_p, diag std²) ‖ N(mean_q, diag std²)) = Σ (mean_p − mean_q)² / (2 std²) over the last dimension.
    Between two models' reverse steps p_θ(x_{t-1} | x_t) and p_ref(x_{t-1} | x_t), which share σ_t, this is the
    per-step KL that DPOK (Fan et al. 2023) sums over t to bound KL(p_θ(x_0) ‖ p_ref(x_0))."""
    return (((mean_p - mean_q) / std) ** 2).sum(-1) / 2


def reverse_log_prob(model: nn.Module, schedule: NoiseSchedule, x_t: torch.Tensor, t, x_prev: torch.Tensor) -> torch.Tensor:
    """log p_θ(x_{t-1} | x_t): the log-probability of the action x_{t-1} in state (x_t, t), per image (B,)."""
    mean, std = reverse_mean_std(model, schedule, x_t, t)
    return gaussian_log_prob(x_prev, mean, std)


class Chain(NamedTuple):
    """A batch of denoising trajectories: `states[k]` is x_{T-k} (k = 0..T, so states[0] = x_T, states[-1] = x_0),
    `timesteps[k]` the step index t of the transition states[k] -> states[k+1], `log_probs[k]` its
    log p_θ(x_{t-1} | x_t) at sampling time (B,)."""
    states: torch.Tensor     # (T + 1, B, d)
    timesteps: torch.Tensor  # (T,)
    log_probs: torch.Tensor  # (T, B)

    @property
    def x0(self) -> torch.Tensor:
        return self.states[-1]


@torch.no_grad()
def sample_chain(model: nn.Module, schedule: NoiseSchedule, n: int, generator: torch.Generator,
                 device=None) -> Chain:
    """Run the reverse chain for n images at once: x_T ~ N(0, I), then x_{t-1} ~ p_θ(· | x_t) for t = T..1.
    Every draw comes from the CPU `generator` and moves to `device` (same images on a CPU and a GPU)."""
    device = torch.device(device or next(model.parameters()).device)
    x = torch.randn(n, model.x_dim, generator=generator).to(device)
    states, log_probs = [x], []
    for t in reversed(range(schedule.T)):
        mean, std = reverse_mean_std(model, schedule, x, t)
        x = mean + std * torch.randn(n, model.x_dim, generator=generator).to(device)
        log_probs.append(gaussian_log_prob(x, mean, std))
        states.append(x)
    return Chain(torch.stack(states), torch.arange(schedule.T - 1, -1, -1), torch.stack(log_probs))
