"""Normalizing flows for survey §1.1: RealNVP affine coupling layers (Dinh, Sohl-Dickstein & Bengio 2017).

Change of variables: for an invertible z = f(x) with base density N(0, I),
    log p(x) = log N(f(x); 0, I) + log |det ∂f/∂x|.
A coupling layer keeps the masked half x_a and transforms the rest, x_b ↦ x_b ⊙ exp(s(x_a)) + t(x_a);
its Jacobian is triangular, so log |det| = Σ s(x_a). Also: dequantisation and the logit pre-transform
used on images.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .layers import mlp


class AffineCoupling(nn.Module):
    """z = x_a + (1 − m) ⊙ (x ⊙ exp(s(x_a)) + t(x_a)) with x_a = m ⊙ x; s is bounded by a learned
    scale · tanh(·) for stable training. Returns (z, log |det ∂z/∂x|) per row."""

    def __init__(self, mask: torch.Tensor, hidden: int = 128):
        super().__init__()
        dim = len(mask)
        self.register_buffer("mask", mask.float())
        self.net = mlp([dim, hidden, hidden, 2 * dim])
        self.scale = nn.Parameter(torch.ones(dim))

    def _s_t(self, x_a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.net(x_a).chunk(2, dim=-1)
        free = 1 - self.mask  # only the unmasked coordinates change
        return self.scale * torch.tanh(s) * free, t * free

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_a = x * self.mask
        s, t = self._s_t(x_a)
        z = x_a + (1 - self.mask) * (x * torch.exp(s) + t)
        return z, s.sum(-1)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        z_a = z * self.mask
        s, t = self._s_t(z_a)
        return z_a + (1 - self.mask) * ((z - t) * torch.exp(-s))


def alternating_masks(dim: int, n_layers: int) -> list[torch.Tensor]:
    """Masks that cycle through: even coordinates, odd coordinates, first half, second half, so every
    coordinate is transformed and conditioned on many others."""
    i = torch.arange(dim)
    cycle = [i % 2 == 0, i % 2 == 1, i < dim // 2, i >= dim // 2]
    return [cycle[k % 4].float() for k in range(n_layers)]


class RealNVP(nn.Module):
    """A stack of affine couplings, x → z, with a standard-normal base density."""

    def __init__(self, dim: int, n_layers: int = 8, hidden: int = 128, masks: list | None = None):
        super().__init__()
        if dim < 2:
            raise ValueError("a coupling flow needs at least 2 dimensions (one to condition on, one to transform)")
        self.dim = dim
        masks = masks if masks is not None else alternating_masks(dim, n_layers)
        self.layers = nn.ModuleList(AffineCoupling(m, hidden) for m in masks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z = f(x) and log |det ∂f/∂x| (summed over the layers), per row."""
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"RealNVP expects (batch, {self.dim}) inputs, got {tuple(x.shape)}")
        logdet = torch.zeros(len(x), device=x.device)
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = log N(f(x); 0, I) + log |det ∂f/∂x| per row (nats)."""
        z, logdet = self(x)
        return standard_normal_log_prob(z) + logdet

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = self.layers[0].mask.device
        z = torch.randn(n, self.dim, generator=generator).to(device) if generator is not None else torch.randn(n, self.dim, device=device)
        return self.inverse(z)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) per row: −½ Σ (z² + log 2π)."""
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)


def dequantise(x: torch.Tensor, levels: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Images with `levels` grey levels k/(levels−1) in [0, 1] → continuous (k + u)/levels, u ~ U[0, 1).

    A density p on the result gives the discrete image a probability ≥ exp(E_u log p) / levels^D
    (Theis et al. 2016), so bits/dim of the discrete data add log2(levels) to the continuous ones.
    """
    k = torch.round(x * (levels - 1))
    u = torch.rand(x.shape, generator=generator).to(x.device) if generator is not None else torch.rand_like(x)
    return (k + u) / levels


def logit_transform(x: torch.Tensor, alpha: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """y = logit(α + (1 − 2α) x) for x in [0, 1] (RealNVP's pre-processing), and log |det ∂y/∂x| per row."""
    p = alpha + (1 - 2 * alpha) * x
    y = torch.log(p) - torch.log1p(-p)
    logdet = (math.log(1 - 2 * alpha) - torch.log(p) - torch.log1p(-p)).sum(-1)
    return y, logdet


def logit_inverse(y: torch.Tensor, alpha: float = 0.05) -> torch.Tensor:
    """The inverse of `logit_transform`: x = (sigmoid(y) − α) / (1 − 2α), clamped to [0, 1]."""
    return ((torch.sigmoid(y) - alpha) / (1 - 2 * alpha)).clamp(0, 1)
