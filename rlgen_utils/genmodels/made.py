"""MADE, a masked autoencoder for distribution estimation (Germain et al. 2015): an exact likelihood by the
chain rule over binarised pixels (survey §1.1, notebook 1.1d)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import _check_x
from .vae import bernoulli_log_likelihood


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """p(x) = Π_i p(x_i | x_<i) over binary pixels in one masked MLP pass (Germain et al. 2015).

    Every unit gets a degree; a hidden unit of degree m sees inputs of degree ≤ m, and output i (degree i)
    sees hidden units of degree < i, so logit i depends only on the pixels before i in `order`
    (default: raster order 0, 1, ..., D−1).
    """

    def __init__(self, x_dim: int, hidden: int = 256, n_hidden: int = 2, order: torch.Tensor | None = None, seed: int = 0):
        super().__init__()
        self.x_dim = x_dim
        order = torch.arange(x_dim) if order is None else torch.as_tensor(order)
        if sorted(order.tolist()) != list(range(x_dim)):
            raise ValueError(f"order must be a permutation of 0..{x_dim - 1}")
        self.register_buffer("order", order)
        in_degree = torch.empty(x_dim, dtype=torch.long)
        in_degree[order] = torch.arange(1, x_dim + 1)  # pixel order[k] is the (k+1)-th in the chain
        g = torch.Generator().manual_seed(seed)
        degrees = [in_degree]
        for _ in range(n_hidden):  # hidden degrees in 1..D−1 (a unit of degree D could feed no output)
            degrees.append(torch.randint(1, x_dim, (hidden,), generator=g))
        layers = []
        for d_in, d_out in zip(degrees[:-1], degrees[1:]):
            layers += [MaskedLinear(len(d_in), len(d_out), d_out[:, None] >= d_in[None, :]), nn.ReLU()]
        layers.append(MaskedLinear(hidden if n_hidden else x_dim, x_dim, in_degree[:, None] > degrees[-1][None, :]))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) logits of p(x_i = 1 | x_<i) for every pixel i, from one pass (teacher forcing)."""
        _check_x(x, self.x_dim, "MADE")
        return self.net(x)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = Σ_i log p(x_i | x_<i) per row (nats), for binary x."""
        return bernoulli_log_likelihood(self(x), x)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n images pixel by pixel in `order` (D passes, each over the whole batch)."""
        device = self.order.device
        x = torch.zeros(n, self.x_dim, device=device)
        for i in self.order.tolist():
            p = torch.sigmoid(self(x)[:, i])
            u = torch.rand(n, generator=generator).to(device) if generator is not None else torch.rand(n, device=device)
            x[:, i] = (u < p).float()
        return x
