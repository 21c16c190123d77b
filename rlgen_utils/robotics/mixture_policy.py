"""A mixture-density action policy π_φ(a | s) = Σ_k w_k(s) N(a; μ_k(s), diag σ_k(s)²) for survey §4 (robotics).

The classic multimodal policy class (Bishop's mixture density network, 1994): one MLP gives, for each of K
components, a mixing logit, a mean and a log standard deviation. Behaviour cloning maximises the exact
log-likelihood (a log-sum-exp over components). Unlike a single Gaussian it can put mass on several separated
modes; unlike a flow or diffusion policy it does so without a sampling chain, in one forward pass.

Policy improvement through a Q-function needs E_{a~π}[Q(s, a)] with a gradient. The component choice is discrete,
so `expected_q` sums over it exactly: E[Q] = Σ_k w_k(s) E_ε[Q(s, μ_k + σ_k ε)], one reparameterised draw per
component, so the gradient reaches the weights, the means and the scales (K critic evaluations per state).
Randomness follows the book's rule: draws are made with a CPU `torch.Generator` and moved to the network's device.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from rlgen_utils.genmodels.layers import mlp
from rlgen_utils.runtime import sample_categorical


class MixturePolicy(nn.Module):
    """K diagonal-Gaussian components over `action_dim`-dimensional actions, conditioned on a `state_dim` state."""

    def __init__(self, action_dim: int, state_dim: int, components: int = 5, hidden: int = 128, depth: int = 3):
        super().__init__()
        self.action_dim, self.components = action_dim, components
        self.net = mlp([state_dim] + [hidden] * depth + [components * (1 + 2 * action_dim)], act=nn.SiLU)

    def forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log w (B, K), means (B, K, A), log σ (B, K, A)); the log weights are normalised."""
        out = self.net(s)
        k, a = self.components, self.action_dim
        logits, rest = out[:, :k], out[:, k:].view(-1, k, 2 * a)
        mean, log_std = rest[..., :a], rest[..., a:].clamp(-5.0, 2.0)
        return torch.log_softmax(logits, -1), mean, log_std

    def log_prob(self, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """(B,) log π(a | s) = log Σ_k w_k N(a; μ_k, σ_k²) (exact, by log-sum-exp)."""
        log_w, mean, log_std = self(s)
        z = (a[:, None, :] - mean) / log_std.exp()
        log_n = (-0.5 * z ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        return torch.logsumexp(log_w + log_n, -1)

    def sample(self, s: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, A) actions: a component k ~ w(s), then a = μ_k + σ_k ε (not differentiable in the choice of k)."""
        log_w, mean, log_std = self(s)
        k = sample_categorical(log_w.exp(), generator)
        eps = torch.randn(mean.shape[0], mean.shape[2], generator=generator).to(mean.device)
        pick = k.view(-1, 1, 1).expand(-1, 1, mean.shape[2])
        return mean.gather(1, pick)[:, 0] + log_std.gather(1, pick)[:, 0].exp() * eps

    def expected_q(self, q_fn, s: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B,) Σ_k w_k(s) Q(s, μ_k + σ_k ε_k): an unbiased, differentiable estimate of E_{a~π(·|s)}[Q(s, a)],
        exact over the component choice. `q_fn(states, actions)` maps (N, S), (N, A) to (N,) values."""
        log_w, mean, log_std = self(s)
        b, k, a = mean.shape
        eps = torch.randn(b, k, a, generator=generator).to(mean.device)
        actions = mean + log_std.exp() * eps
        q = q_fn(s.repeat_interleave(k, 0), actions.reshape(b * k, a)).view(b, k)
        return (log_w.exp() * q).sum(-1)
