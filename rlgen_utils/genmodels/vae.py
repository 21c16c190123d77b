"""Variational autoencoder (Kingma & Welling 2014), survey §1.1, notebook 1.1a: a Gaussian encoder, a
Bernoulli decoder, the reparameterisation trick and the two terms of the ELBO."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import _check_x, mlp


class VAE(nn.Module):
    """Gaussian encoder q(z|x) = N(μ(x), diag σ²(x)), Bernoulli decoder p(x|z) = Bern(sigmoid(logits(z))),
    prior p(z) = N(0, I) (Kingma & Welling 2014)."""

    def __init__(self, x_dim: int, z_dim: int = 2, hidden: int = 256):
        super().__init__()
        self.x_dim, self.z_dim = x_dim, z_dim
        self.encoder = mlp([x_dim, hidden, hidden, 2 * z_dim])
        self.decoder = mlp([z_dim, hidden, hidden, x_dim])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²), each (B, z_dim)."""
        _check_x(x, self.x_dim, "VAE")
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of p(x | z), (B, x_dim)."""
        return self.decoder(z)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = μ + σ ⊙ ε with ε ~ N(0, I): a sample of q(z|x) that gradients flow through to μ and σ."""
    eps = torch.randn(mu.shape, generator=generator).to(mu.device) if generator is not None else torch.randn_like(mu)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) per row, in closed form: ½ Σ (μ² + σ² − log σ² − 1)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | logits) = Σ_i x_i log σ(l_i) + (1 − x_i) log(1 − σ(l_i)) per row (nats)."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
