"""A digit classifier used as a judge: class coverage and confidence of generated digits (1.1b, 2.2a).
The survey's framing of a discriminative model, y = f_w(x)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import _check_x


class DigitClassifier(nn.Module):
    """y = f_w(x): an MLP from a flattened image to 10 class logits (the survey's discriminative model)."""

    def __init__(self, x_dim: int, n_classes: int = 10, hidden: int = 128, dropout: float = 0.2):
        super().__init__()
        self.x_dim = x_dim
        self.net = nn.Sequential(nn.Linear(x_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_x(x, self.x_dim, "DigitClassifier")
        return self.net(x)

    @torch.no_grad()
    def probs(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 10) class probabilities, in eval mode (no dropout)."""
        was_training = self.training
        self.eval()
        p = torch.softmax(self(x), dim=-1)
        self.train(was_training)
        return p


def train_digit_classifier(images, epochs: int = 40, hidden: int = 128, lr: float = 1e-3, batch_size: int = 64,
                           noise: float = 0.1, device=None, seed: int = 0) -> tuple[DigitClassifier, float]:
    """Fit a `DigitClassifier` on the training images of `images` (an `rlgen_utils.datasets.images.Images`); return it (eval mode,
    on `device`) and its accuracy on the held-out test images.

    Training adds Gaussian pixel noise (std `noise`) so the judge is not thrown by the slightly blurry or
    noisy images generators make. Deterministic for a given `seed` on CPU.
    """
    device = torch.device(device or "cpu")
    g = torch.Generator().manual_seed(seed)
    x, y = images.x_train.to(device), images.y_train.to(device)
    with torch.random.fork_rng(devices=[]):  # seeds weights and dropout without touching the caller's RNG
        torch.manual_seed(seed)
        clf = DigitClassifier(x.shape[1], int(images.y_train.max()) + 1, hidden).to(device)
        opt = torch.optim.Adam(clf.parameters(), lr=lr, weight_decay=1e-4)
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=g).split(batch_size):
                xb = x[idx] + noise * torch.randn(len(idx), x.shape[1], generator=g).to(device)
                loss = F.cross_entropy(clf(xb.clamp(0, 1)), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    clf.eval()
    accuracy = (clf.probs(images.x_test.to(device)).argmax(-1) == images.y_test.to(device)).float().mean().item()
    return clf, accuracy


def class_coverage(predicted: torch.Tensor, n_classes: int = 10, min_fraction: float = 0.02) -> int:
    """How many classes receive at least `min_fraction` of the predicted labels (a mode-dropping measure)."""
    counts = torch.bincount(predicted.flatten().long(), minlength=n_classes).float()
    return int((counts / counts.sum() >= min_fraction).sum())


def classifier_confidence(probs: torch.Tensor) -> float:
    """Mean over samples of max_y p(y | x): high when samples look like one clear digit."""
    return probs.max(dim=-1).values.mean().item()
