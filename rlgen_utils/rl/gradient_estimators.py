"""Gradient estimators for an objective of a discrete sample, J(θ) = E_{z~Cat(softmax θ)}[f(z)] (survey §2.1).

Sampling z has no gradient, so ∇J must be estimated. Each function returns one estimate per sample,
(n, K), so a notebook can measure an estimator's bias and spread against `exact_gradient`.
`f` maps a batch of (one-hot or relaxed) vectors (n, K) to (n,) and must be differentiable in them.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..runtime import sample_categorical


def exact_gradient(theta: torch.Tensor, f: Callable) -> torch.Tensor:
    """∇_θ Σ_k softmax(θ)_k f(e_k), by enumerating the K outcomes (the reference)."""
    theta = theta.detach().clone().requires_grad_(True)
    values = f(torch.eye(len(theta))).detach()
    (torch.softmax(theta, -1) @ values).backward()
    return theta.grad


def _per_sample_theta(theta: torch.Tensor, n: int) -> torch.Tensor:
    # one copy of θ per sample: the gradient of a sum of per-sample terms is then each sample's gradient
    return theta.detach().expand(n, -1).clone().requires_grad_(True)


def score_function_estimates(theta: torch.Tensor, f: Callable, n: int, baseline: float = 0.0,
                             generator: torch.Generator | None = None) -> torch.Tensor:
    """REINFORCE (Williams 1992): (f(z) - b) ∇_θ log p_θ(z), z ~ p_θ. Unbiased for any constant b."""
    thetas = _per_sample_theta(theta, n)
    z = sample_categorical(torch.softmax(theta.detach(), -1).expand(n, -1), generator)
    reward = f(F.one_hot(z, len(theta)).float()).detach()
    logp = torch.log_softmax(thetas, -1).gather(-1, z.unsqueeze(-1)).squeeze(-1)
    ((reward - baseline) * logp).sum().backward()
    return thetas.grad


def gumbel_straight_through_estimates(theta: torch.Tensor, f: Callable, n: int, tau: float = 1.0,
                                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Straight-through Gumbel-softmax (Jang et al. 2017): the forward pass uses the exact sample
    z = onehot(argmax(θ + g)), the backward pass the gradient of the relaxation softmax((θ + g)/τ). Biased."""
    thetas = _per_sample_theta(theta, n)
    u = torch.rand(thetas.shape, generator=generator).to(thetas.device).clamp(1e-12, 1 - 1e-12)
    soft = torch.softmax((thetas - torch.log(-torch.log(u))) / tau, -1)
    hard = F.one_hot(soft.argmax(-1), len(theta)).float()
    f(hard + soft - soft.detach()).sum().backward()
    return thetas.grad
