"""The generative models of survey §1.1 and the digit classifier that later notebooks reuse as a reward.

The survey's framing: a discriminative model is y = f_w(x) (x an image, y its 10 class scores); a
generative model learns the data distribution p(x) (or p(x, y)) instead. Every model here works on
flattened images x of `x_dim` pixels in [0, 1] (64 on scikit-learn digits, 784 on MNIST).

- `DigitClassifier`, `train_digit_classifier`: y = f_w(x), the held-out judge of generated samples.
- `VAE`, `gaussian_kl`, `bernoulli_log_likelihood`: Kingma & Welling (2014).
- `Generator`, `Discriminator`: Goodfellow et al. (2014), as MLPs.
- `JointEnergy`, `label_contrastive_loss`, `langevin_sample`: the seed's E = f_w(x, y) (Grathwohl et al. 2020, JEM).
- `MADE`: masked autoencoder for distribution estimation (Germain et al. 2015).
Normalizing flows (RealNVP) live in `rlgen_utils.flows`.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


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


# ----------------------------------------------------------------------------- classifier: y = f_w(x)
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
    """Fit a `DigitClassifier` on `images.x_train` (an `rlgen_utils.data.Images`); return it (eval mode,
    on `device`) and its accuracy on the held-out `images.x_test`.

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


# ----------------------------------------------------------------------------- VAE
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


# ----------------------------------------------------------------------------- GAN
class Generator(nn.Module):
    """G(z): noise z ~ N(0, I) → an image with pixels in (0, 1)."""

    def __init__(self, z_dim: int, x_dim: int, hidden: int = 256):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(mlp([z_dim, hidden, hidden, x_dim], act=lambda: nn.LeakyReLU(0.2)), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """D(x): an image → the logit of "x is real"."""

    def __init__(self, x_dim: int, hidden: int = 256):
        super().__init__()
        self.x_dim = x_dim
        self.net = mlp([x_dim, hidden, hidden, 1], act=lambda: nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_x(x, self.x_dim, "Discriminator")
        return self.net(x).squeeze(-1)


# ----------------------------------------------------------------------------- EBM: E = f_w(x, y)
class JointEnergy(nn.Module):
    """The seed's energy-based model: E = f_w(x, y), an MLP whose input is the concatenation of the
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


# ----------------------------------------------------------------------------- autoregressive: MADE
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


def bits_per_dim(nll_nats: torch.Tensor | float, dim: int) -> float:
    """Mean negative log-likelihood per example in nats → bits per dimension: nll / (dim · ln 2)."""
    nll = nll_nats.mean().item() if isinstance(nll_nats, torch.Tensor) else float(nll_nats)
    return nll / (dim * math.log(2))
