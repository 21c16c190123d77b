"""A flow-matching (rectified flow) action policy π_θ(a | s) for survey §4 (robotics: generative policies).

Conditional flow matching (Lipman et al. 2023; rectified flow, Liu et al. 2023): draw noise x₀ ~ N(0, I),
an expert action x₁ = a, a time t ~ U(0, 1), and the point x_t = (1 − t)·x₀ + t·x₁ on the straight line
between them. A velocity network v_θ(x_t, t, s) is regressed onto the line's velocity dx_t/dt = x₁ − x₀:

    L_FM(θ) = E ‖v_θ(x_t, t, s) − (x₁ − x₀)‖².

Sampling integrates dx/dt = v_θ(x, t, s) from t = 0 (noise) to t = 1 (an action) with K Euler steps; the
chain is differentiable, so a Q-function's gradient reaches θ through every step (Diffusion-QL's policy
improvement, Wang et al. 2023, with a flow in place of the diffusion chain). Diffusion Policy (Chi et al.
2023) is the same idea with a denoising diffusion model. Randomness follows the book's rule: noise and
times are drawn with a CPU `torch.Generator` and moved to the network's device.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from rlgen_utils.genmodels.layers import mlp


def time_features(t: torch.Tensor, n_frequencies: int = 4) -> torch.Tensor:
    """(B,) times in [0, 1] → (B, 1 + 2·n_frequencies) features [t, sin(2πkt), cos(2πkt)] for k = 1..n."""
    t = t.reshape(-1, 1)
    k = torch.arange(1, n_frequencies + 1, device=t.device, dtype=t.dtype)
    angles = 2 * math.pi * t * k
    return torch.cat([t, angles.sin(), angles.cos()], dim=1)


class FlowPolicy(nn.Module):
    """The velocity field v_θ(x_t, t, s): an MLP on [x_t, time features, state]. `state_dim = 0` gives an
    unconditional policy (a bandit): pass `state=None` and the batch size to `sample`."""

    def __init__(self, action_dim: int, state_dim: int = 0, hidden: int = 128, depth: int = 3, n_frequencies: int = 4):
        super().__init__()
        self.action_dim, self.state_dim, self.n_frequencies = action_dim, state_dim, n_frequencies
        in_dim = action_dim + 1 + 2 * n_frequencies + state_dim
        self.net = mlp([in_dim] + [hidden] * depth + [action_dim], act=nn.SiLU)

    def velocity(self, x_t: torch.Tensor, t: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        parts = [x_t, time_features(t.expand(len(x_t)) if t.dim() == 0 else t, self.n_frequencies)]
        if self.state_dim:
            parts.append(state)
        return self.net(torch.cat(parts, dim=1))


def flow_matching_loss(policy: FlowPolicy, actions: torch.Tensor, state: torch.Tensor | None = None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """L_FM = mean ‖v_θ(x_t, t, s) − (x₁ − x₀)‖² with x₁ = `actions` (B, A), x₀ ~ N(0, I), t ~ U(0, 1)."""
    device = actions.device
    x1 = actions
    x0 = torch.randn(actions.shape, generator=generator).to(device)
    t = torch.rand(len(actions), generator=generator).to(device)
    x_t = (1 - t[:, None]) * x0 + t[:, None] * x1
    target = x1 - x0
    return ((policy.velocity(x_t, t, state) - target) ** 2).sum(1).mean()


def euler_sample(policy: FlowPolicy, n: int, state: torch.Tensor | None = None, steps: int = 10,
                 generator: torch.Generator | None = None, x0: torch.Tensor | None = None) -> torch.Tensor:
    """Integrate dx/dt = v_θ(x, t, s) from x₀ ~ N(0, I) (drawn on the CPU, moved) over `steps` Euler steps.

    Differentiable through the whole chain (wrap in `torch.no_grad()` to act); returns (n, action_dim)."""
    device = next(policy.parameters()).device
    x = torch.randn((n, policy.action_dim), generator=generator).to(device) if x0 is None else x0
    dt = 1.0 / steps
    for k in range(steps):
        t = torch.full((n,), k * dt, device=device)
        x = x + dt * policy.velocity(x, t, state)
    return x
