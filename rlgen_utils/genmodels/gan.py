"""The generator and discriminator MLPs of a GAN on images (Goodfellow et al. 2014), survey §1.1, notebook 1.1b."""
from __future__ import annotations

import torch
import torch.nn as nn

from .layers import _check_x, mlp


class ImageGenerator(nn.Module):
    """G(z): noise z ~ N(0, I) → an image with pixels in (0, 1)."""

    def __init__(self, z_dim: int, x_dim: int, hidden: int = 256):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(mlp([z_dim, hidden, hidden, x_dim], act=lambda: nn.LeakyReLU(0.2)), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ImageDiscriminator(nn.Module):
    """D(x): an image → the logit of "x is real"."""

    def __init__(self, x_dim: int, hidden: int = 256):
        super().__init__()
        self.x_dim = x_dim
        self.net = mlp([x_dim, hidden, hidden, 1], act=lambda: nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_x(x, self.x_dim, "ImageDiscriminator")
        return self.net(x).squeeze(-1)
