"""The survey's energy-based model E = f_w(x, y) over the concatenated (x, one-hot y), its label-contrastive
loss and Langevin sampling (survey §1.1, notebook 1.1c)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import _check_x, mlp


class JointEnergy(nn.Module):
    """The survey's energy-based model: E = f_w(x, y), an MLP whose input is the concatenation of the
    image x and the one-hot label y (64 + 10 = 74 values on digits, 784 + 10 = 794 on MNIST).
    Low energy means (x, y) match; p(x, y) ∝ exp(−E(x, y))."""

    def __init__(self, x_dim: int, n_classes: int = 10, hidden: int = 256):
        super().__init__()
        self.x_dim, self.n_classes = x_dim, n_classes
        self.net = mlp([x_dim + n_classes, hidden, hidden, 1], act=nn.SiLU)  # smooth, for Langevin gradients

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """E(x, y), shape (B,); y is (B,) labels or (B, n_classes) one-hot/soft labels."""
        _check_x(x, self.x_dim, "JointEnergy")
        if y.dim() == 1:
            y = F.one_hot(y.long(), self.n_classes).to(x.dtype)
        return self.net(torch.cat([x, y], dim=-1)).squeeze(-1)

    def energies(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_classes): E(x, y) for every label y, in one batched pass."""
        b, k = len(x), self.n_classes
        labels = torch.arange(k, device=x.device).repeat(b)
        return self(x.repeat_interleave(k, dim=0), labels).view(b, k)


def label_contrastive_loss(energies: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """−log p(y | x) with p(y | x) = exp(−E(x, y)) / Σ_y' exp(−E(x, y')), averaged over the batch:
    push the matching label's energy down and every other label's up."""
    return (energies.gather(1, y.view(-1, 1)).squeeze(1) + torch.logsumexp(-energies, dim=1)).mean()


def langevin_sample(energy_fn, x: torch.Tensor, steps: int, step_size: float, noise: float,
                    clamp: tuple | None = (0.0, 1.0), generator: torch.Generator | None = None) -> torch.Tensor:
    """Stochastic-gradient Langevin dynamics: x ← x − step_size · ∇_x E(x) + noise · ε, ε ~ N(0, I).

    With noise = sqrt(2 · step_size) and small steps this samples p(x) ∝ exp(−E(x)); JEM-style training
    uses a larger step and smaller noise (short-run chains). `energy_fn(x)` returns (B,) energies.
    """
    x = x.detach().clone()
    for _ in range(steps):
        x.requires_grad_(True)
        grad, = torch.autograd.grad(energy_fn(x).sum(), x)
        eps = torch.randn(x.shape, generator=generator).to(x.device) if generator is not None else torch.randn_like(x)
        x = (x - step_size * grad + noise * eps).detach()
        if clamp is not None:
            x = x.clamp(*clamp)
    return x
