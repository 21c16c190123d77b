"""Small pieces shared by the generative models of survey §1.1 (genmodels/*): an MLP builder, binarised
pixels, input checks and bits per dimension."""
from __future__ import annotations

import math

import torch
import torch.nn as nn


def mlp(sizes: list[int], act=nn.ReLU) -> nn.Sequential:
    """Linear layers of the given sizes with `act` between them (none after the last)."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def binarise(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Pixels in [0, 1] → {0, 1}, so a Bernoulli likelihood is a proper probability of the data."""
    return (x > threshold).float()


def _check_x(x: torch.Tensor, x_dim: int, who: str):
    if x.dim() != 2 or x.shape[1] != x_dim:
        raise ValueError(f"{who} expects flattened images of shape (batch, {x_dim}), got {tuple(x.shape)}: "
                         "use images.reshape(len(images), -1), and build the model with x_dim = pixels per image")


def bits_per_dim(nll_nats: torch.Tensor | float, dim: int) -> float:
    """Mean negative log-likelihood per example in nats → bits per dimension: nll / (dim · ln 2)."""
    nll = nll_nats.mean().item() if isinstance(nll_nats, torch.Tensor) else float(nll_nats)
    return nll / (dim * math.log(2))
