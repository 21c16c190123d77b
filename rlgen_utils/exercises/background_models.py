"""Exercises of survey §1.1, part 1 (notebooks 1.1a–1.1c): the VAE's reparameterisation, KL and importance-weighted
bound; the GAN's losses and the straight-through estimator; the energy model's label loss, Langevin sampler and
free energy. References: the library's functions where the notebook imports them, else written here (and tested
in tests/test_exercises.py against an independent computation)."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..genmodels.ebm import label_contrastive_loss as _label_contrastive_loss
from ..genmodels.ebm import langevin_sample as _langevin_sample
from ..genmodels.vae import gaussian_kl as _gaussian_kl
from ..genmodels.vae import reparameterise as _reparameterise
from .harness import Seeded, pick, randint, randn, register, uniform, with_grads

# ------------------------------------------------------------------------------------------------ 1.1a VAE
check_reparameterise = register(
    id="1.1a.1", name="reparameterise", stars=1, title="The reparameterisation trick",
    statement="Draw z ~ q(z|x) = N(μ, diag σ²) so that gradients flow back into μ and log σ²: draw the noise first, "
              "then make z a differentiable function of μ and σ.",
    contract="`reparameterise(mu, logvar, generator=None)`: `mu`, `logvar` (B, Z) with logvar = log σ²; returns z (B, Z). "
             "Draw ε with `torch.randn(mu.shape, generator=generator).to(mu.device)` (or `torch.randn_like(mu)` when "
             "`generator` is None).",
    hint="σ = exp(½ log σ²); z = μ + σ ⊙ ε.",
    equation=r"z = \mu + \sigma \odot \varepsilon,\quad \varepsilon \sim \mathcal N(0, I),\quad \sigma = e^{\frac12 \log\sigma^2}",
    reference=_reparameterise,
    cases=lambda g: ((randn(g, 5, 3), randn(g, 5, 3, scale=0.7), Seeded(int(randint(g, 0, 10**6)))), {}),
    probe=with_grads(0, 1),
    mistakes=[
        ("you used the variance as the standard deviation: σ = exp(½ log σ²), not exp(log σ²)",
         lambda mu, lv, generator=None: mu + torch.exp(lv) * torch.randn(mu.shape, generator=generator)),
        ("no gradient reaches μ and log σ²: compute z = μ + σ ⊙ ε from them, do not draw z with torch.normal or detach it",
         lambda mu, lv, generator=None: (mu + torch.exp(0.5 * lv) * torch.randn(mu.shape, generator=generator)).detach()),
    ])

check_gaussian_kl = register(
    id="1.1a.2", name="gaussian_kl", stars=1, title="The ELBO's KL term in closed form",
    statement="The ELBO's regulariser KL(q(z|x) ‖ p(z)) between the encoder's diagonal Gaussian and the prior N(0, I) "
              "has a closed form: write it, one value per image.",
    contract="`gaussian_kl(mu, logvar)`: `mu`, `logvar` (B, Z); returns (B,), the KL of each row in nats.",
    hint="Sum over the latent dimensions, not over the batch; σ² = exp(log σ²).",
    equation=r"\mathrm{KL}\big(\mathcal N(\mu, \mathrm{diag}\,\sigma^2)\,\|\,\mathcal N(0, I)\big) = \tfrac12 \sum_j \big(\mu_j^2 + \sigma_j^2 - \log\sigma_j^2 - 1\big)",
    reference=_gaussian_kl,
    cases=lambda g: ((randn(g, 6, 4), randn(g, 6, 4)), {}),
    mistakes=[
        ("your KL is twice the reference's: the closed form has a factor ½",
         lambda mu, lv: (mu.pow(2) + lv.exp() - lv - 1).sum(-1)),
        ("you summed over the batch instead of the latent dimensions: one KL per row, summed over z",
         lambda mu, lv: 0.5 * (mu.pow(2) + lv.exp() - lv - 1).sum(0)),
        ("you left out the −1: the KL of q = p = N(0, I) must be 0",
         lambda mu, lv: 0.5 * (mu.pow(2) + lv.exp() - lv).sum(-1)),
        ("you squared σ² again: exp(log σ²) is already the variance",
         lambda mu, lv: 0.5 * (mu.pow(2) + lv.exp().pow(2) - lv - 1).sum(-1)),
    ])


def _iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


check_iwae_bound = register(
    id="1.1a.3", name="iwae_bound", stars=2, title="The importance-weighted bound L_k",
    statement="Given the log importance weights log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x) of k draws "
              "z_i ~ q(z|x) per image, return L_k, the log of the *average weight*. Weights of images are tiny "
              "(log w ≈ −100 for 64 pixels, far less on MNIST): exponentiating them underflows.",
    contract="`iwae_bound(log_w)`: `log_w` (k, N), draws along dim 0, images along dim 1; returns (N,) in nats.",
    hint="log (1/k) Σ_i w_i = logsumexp_i(log w_i) − log k.",
    equation=r"\mathcal L_k(x) = \log \frac1k \sum_{i=1}^k w_i,\qquad w_i = \frac{p_\theta(x|z_i)\,p(z_i)}{q_\phi(z_i|x)}",
    reference=_iwae_bound,
    cases=lambda g: ((randn(g, int(randint(g, 2, 9)), 5, scale=3.0) + uniform(g, 1, 5, low=-400.0, high=-5.0),), {}),
    mistakes=[
        ("you averaged the log-weights: that is the ELBO, not L_k — average the weights themselves, in log space (logsumexp)",
         lambda lw: lw.mean(0)),
        ("you summed the weights instead of averaging them: subtract log k",
         lambda lw: torch.logsumexp(lw, 0)),
        ("exp(log w) underflows to 0 for log-weights this small (log 0 = −∞): stay in log space with torch.logsumexp",
         lambda lw: torch.log(torch.exp(lw).mean(0))),
        ("you reduced over the images (dim 1) instead of the k draws (dim 0)",
         lambda lw: torch.logsumexp(lw, 1) - math.log(lw.shape[1])),
    ])


# ------------------------------------------------------------------------------------------------ 1.1b GAN
class TinyDiscriminator(nn.Module):
    """D(x): a fixed random linear map to one logit per image (B,), for the GAN exercises' cases."""

    def __init__(self, weight: torch.Tensor, bias: float):
        super().__init__()
        self.weight, self.bias = nn.Parameter(weight), nn.Parameter(torch.tensor(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ self.weight) * 2.0 + self.bias


def _gan_case(g, both: bool):
    d = TinyDiscriminator(randn(g, 6), float(randn(g, 1)))
    real, fake = uniform(g, 8, 6), uniform(g, 8, 6)
    return ((d, real, fake) if both else (d, fake)), {}


def _discriminator_loss(D, real, fake):
    logit_real, logit_fake = D(real), D(fake.detach())
    return F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real)) + \
        F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake))


def _generator_loss(D, fake):
    logit = D(fake)
    return F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))


check_discriminator_loss = register(
    id="1.1b.1", name="discriminator_loss", stars=1, title="The discriminator's loss",
    statement="D maximises log D(x) + log(1 − D(G(z))): the binary cross-entropy with label 1 for real images and 0 "
              "for generated ones. D's step must not train G, so no gradient may flow into the generated images.",
    contract="`discriminator_loss(D, real, fake)`: `D(x)` returns logits (B,); `real`, `fake` (B, D_X); returns a scalar "
             "(the sum of the two mean cross-entropies).",
    hint="`F.binary_cross_entropy_with_logits(logits, labels)`; detach `fake`.",
    equation=r"\mathcal L_D = -\mathbb E_x[\log D(x)] - \mathbb E_z[\log(1 - D(G(z)))]",
    reference=_discriminator_loss, cases=lambda g: _gan_case(g, True), probe=with_grads(2),
    mistakes=[
        ("the discriminator's loss sends gradient into the generated images: use fake.detach(), or D's step also moves G",
         lambda D, real, fake: F.binary_cross_entropy_with_logits(D(real), torch.ones(len(real)))
         + F.binary_cross_entropy_with_logits(D(fake), torch.zeros(len(fake)))),
        ("you swapped the labels: real images are labelled 1, generated ones 0",
         lambda D, real, fake: F.binary_cross_entropy_with_logits(D(real), torch.zeros(len(real)))
         + F.binary_cross_entropy_with_logits(D(fake.detach()), torch.ones(len(fake)))),
    ])

check_generator_loss = register(
    id="1.1b.2", name="generator_loss", stars=1, title="The non-saturating generator loss",
    statement="The generator is trained through D: it maximises log D(G(z)) (the non-saturating loss) rather than "
              "minimising log(1 − D(G(z))) (the minimax loss, whose gradient vanishes when D rejects the samples).",
    contract="`generator_loss(D, fake)`: `D(x)` returns logits (B,); `fake` = G(z) (B, D_X), with its graph to G; "
             "returns a scalar. Its gradient must reach `fake`.",
    hint="−log D(x) is the cross-entropy of D's logit with the label 1 (\"real\").",
    equation=r"\mathcal L_G = -\mathbb E_z\big[\log D(G(z))\big]",
    reference=_generator_loss, cases=lambda g: _gan_case(g, False), probe=with_grads(1),
    mistakes=[
        ("that is the minimax loss log(1 − D(G(z))), whose gradient vanishes when D rejects the samples; "
         "the non-saturating loss is −log D(G(z))",
         lambda D, fake: -F.binary_cross_entropy_with_logits(D(fake), torch.zeros(len(fake)))),
        ("you labelled the generated images 0 (fake): the generator wants D to call them real (label 1)",
         lambda D, fake: F.binary_cross_entropy_with_logits(D(fake), torch.zeros(len(fake)))),
        ("no gradient reaches the generated images: the generator learns through D's input, do not detach `fake`",
         lambda D, fake: F.binary_cross_entropy_with_logits(D(fake.detach()), torch.ones(len(fake)))),
    ])


def _straight_through_round(x):
    return x + (torch.round(x) - x).detach()


check_straight_through_round = register(
    id="1.1b.3", name="straight_through_round", stars=2, title="The straight-through estimator",
    statement="Round each pixel to a token in {0, 1} in the forward pass, but let the backward pass treat rounding "
              "as the identity (Bengio, Léonard & Courville 2013): a biased gradient, but one that flows.",
    contract="`straight_through_round(x)`: `x` (B, D) in (0, 1); returns the rounded values (B, D), with "
             "∂output/∂x = 1 everywhere.",
    hint="Add the rounding as a constant: x + (round(x) − x) with the bracket detached.",
    equation=r"\mathrm{forward}: \mathrm{round}(x),\qquad \mathrm{backward}: \partial/\partial x \equiv 1",
    reference=_straight_through_round,
    cases=lambda g: ((uniform(g, 4, 7, low=0.01, high=0.99),), {}), probe=with_grads(0),
    mistakes=[
        ("torch.round has a zero gradient, so the chain is cut: add the rounding as a constant, x + (round(x) − x).detach()",
         lambda x: torch.round(x)),
        ("you returned x unrounded: the forward pass must give the discrete tokens",
         lambda x: x * 1.0),
    ])


# ------------------------------------------------------------------------------------------------ 1.1c EBM
check_label_contrastive_loss = register(
    id="1.1c.1", name="label_contrastive_loss", stars=1, title="−log p(y|x) from energies",
    statement="An energy E(x, y) defines p(y|x) = exp(−E(x, y)) / Σ_y' exp(−E(x, y')). Write the mean negative "
              "log-likelihood of the true labels: it pushes the matching energy down and every other label's up.",
    contract="`label_contrastive_loss(energies, y)`: `energies` (B, K) = E(x_b, k), `y` (B,) int64 labels; returns a scalar.",
    hint="−log p(y|x) = E(x, y) + logsumexp_y'(−E(x, y')); gather the true label's energy.",
    equation=r"-\log p(y|x) = E(x, y) + \log \sum_{y'} e^{-E(x, y')}",
    reference=_label_contrastive_loss,
    cases=lambda g: ((randn(g, 7, 5, scale=2.0), randint(g, 0, 5, 7)), {}),
    mistakes=[
        ("you used exp(+E): low energy means likely, p(y|x) ∝ exp(−E(x, y))",
         lambda E, y: (-E.gather(1, y[:, None])[:, 0] + torch.logsumexp(E, 1)).mean()),
        ("you normalised over the batch (dim 0): p(y|x) normalises over the labels of each image (dim 1)",
         lambda E, y: (E.gather(1, y[:, None])[:, 0] + torch.logsumexp(-E, 0)[y]).mean()),
        ("you only pushed the matching energy down: the log-normaliser log Σ_y' exp(−E(x, y')) must push the others up",
         lambda E, y: E.gather(1, y[:, None])[:, 0].mean()),
    ])


def _quadratic_energy(g):
    centre, weight = uniform(g, 4, low=-0.5, high=1.5), uniform(g, 4, low=0.5, high=3.0)
    return lambda x: ((x - centre) ** 2 * weight).sum(1)


def _langevin_case(g):
    clamp = pick(g, [(0.0, 1.0), None])
    return ((_quadratic_energy(g), uniform(g, 5, 4), int(randint(g, 1, 5)), 0.1, 0.05),
            dict(clamp=clamp, generator=Seeded(int(randint(g, 0, 10**6)))))


def _langevin_variant(sign: float = -1.0, noise_of=lambda noise, step: noise, clamp_on: bool = True):
    def sampler(energy_fn, x, steps, step_size, noise, clamp=(0.0, 1.0), generator=None):
        x = x.detach().clone()
        for _ in range(steps):
            x.requires_grad_(True)
            grad, = torch.autograd.grad(energy_fn(x).sum(), x)
            eps = torch.randn(x.shape, generator=generator)
            x = (x + sign * step_size * grad + noise_of(noise, step_size) * eps).detach()
            if clamp is not None and clamp_on:
                x = x.clamp(*clamp)
        return x
    return sampler


check_langevin_sample = register(
    id="1.1c.2", name="langevin_sample", stars=2, title="Langevin dynamics",
    statement="Sample from p(x) ∝ exp(−E(x)) by noisy gradient descent on the energy: each step moves x down "
              "∇_x E and adds Gaussian noise, then clamps the pixels to their range.",
    contract="`langevin_sample(energy_fn, x, steps, step_size, noise, clamp=(0.0, 1.0), generator=None)`: "
             "`energy_fn(x)` returns (B,) energies; `x` (B, D) the start; returns x after `steps` steps (B, D), detached. "
             "In each step, after the gradient, draw ε with `torch.randn(x.shape, generator=generator).to(x.device)`; "
             "`clamp=None` means no clamping.",
    hint="`grad, = torch.autograd.grad(energy_fn(x).sum(), x)` on an x that requires grad; detach x after each step.",
    equation=r"x \leftarrow \mathrm{clamp}\big(x - \eta\,\nabla_x E(x) + \sigma\,\varepsilon\big),\quad \varepsilon \sim \mathcal N(0, I)",
    reference=_langevin_sample, cases=_langevin_case,
    mistakes=[
        ("you climbed the energy: Langevin moves down its gradient, x ← x − η ∇E + σ ε", _langevin_variant(sign=1.0)),
        ("you left out the clamp to the pixel range after each step", _langevin_variant(clamp_on=False)),
        ("your noise term is not `noise` · ε: this sampler uses the given noise scale (the notebook's short-run chains)",
         _langevin_variant(noise_of=lambda noise, step: math.sqrt(2 * step))),
    ])


class FixedEnergies:
    """An energy model for the cases: `energies(x)` = a fixed random map (B, D) -> (B, K)."""

    def __init__(self, weight: torch.Tensor):
        self.weight = weight

    def energies(self, x: torch.Tensor) -> torch.Tensor:
        return 3 * torch.tanh(x @ self.weight)


def _free_energy(ebm, x):
    return -torch.logsumexp(-ebm.energies(x), dim=1)


check_free_energy = register(
    id="1.1c.3", name="free_energy", stars=1, title="The free energy of an image",
    statement="The joint energy E(x, y) gives p(x) ∝ Σ_y exp(−E(x, y)) = exp(−F(x)): the free energy F(x) scores "
              "an image without a label (this notebook ranks real digits against noise and corrupted digits by −F).",
    contract="`free_energy(ebm, x)`: `ebm.energies(x)` returns (B, K) energies of every label; `x` (B, D); returns F (B,).",
    hint="F(x) = −logsumexp_y(−E(x, y)), over the labels (dim 1).",
    equation=r"F(x) = -\log \sum_y e^{-E(x, y)}",
    reference=_free_energy,
    cases=lambda g: ((FixedEnergies(randn(g, 6, 4)), uniform(g, 5, 6)), {}),
    mistakes=[
        ("both minus signs matter: F(x) = −log Σ_y exp(−E(x, y))",
         lambda ebm, x: torch.logsumexp(ebm.energies(x), 1)),
        ("you took min_y E(x, y), the zero-temperature limit: F sums over every label with logsumexp",
         lambda ebm, x: ebm.energies(x).min(1).values),
        ("you normalised over the batch (dim 0) instead of the labels (dim 1)",
         lambda ebm, x: -torch.logsumexp(-ebm.energies(x), 0)),
    ])
