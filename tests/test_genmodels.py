"""rlgen_utils.genmodels (VAE, GAN, EBM, MADE, flows) against independent references: torch.distributions, autograd
Jacobians, brute-force enumeration, hand computation, sklearn; and broken variants that must fail."""
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rlgen_utils.datasets.images import load_images
from rlgen_utils.genmodels.classifier import class_coverage, classifier_confidence, train_digit_classifier
from rlgen_utils.genmodels.ebm import JointEnergy, label_contrastive_loss, langevin_sample
from rlgen_utils.genmodels.flows import (AffineCoupling, RealNVP, dequantise, logit_inverse, logit_transform,
    standard_normal_log_prob)
from rlgen_utils.genmodels.layers import binarise, bits_per_dim
from rlgen_utils.genmodels.made import MADE, MaskedLinear
from rlgen_utils.genmodels.vae import VAE, bernoulli_log_likelihood, gaussian_kl, reparameterise


@pytest.fixture(scope="module")
def digits():
    return load_images("digits")


# ----------------------------------------------------------------------------- VAE
def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    reference = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(gaussian_kl(mu, logvar), reference, atol=1e-5)
    assert torch.allclose(gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)), torch.zeros(2))


def test_gaussian_kl_matches_monte_carlo():
    mu, logvar = torch.tensor([[0.7, -1.2]]), torch.tensor([[-0.5, 0.3]])
    z = reparameterise(mu.expand(200_000, 2), logvar.expand(200_000, 2), torch.Generator().manual_seed(1))
    log_q = torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    assert (log_q - log_p).mean().item() == pytest.approx(gaussian_kl(mu, logvar).item(), abs=0.02)


def test_reparameterise_has_right_moments_and_passes_gradients():
    mu = torch.tensor([1.0, -2.0], requires_grad=True)
    logvar = torch.tensor([0.0, math.log(0.25)], requires_grad=True)
    z = reparameterise(mu.expand(100_000, 2), logvar.expand(100_000, 2), torch.Generator().manual_seed(0))
    assert torch.allclose(z.mean(0), mu.detach(), atol=0.02)
    assert torch.allclose(z.std(0), torch.tensor([1.0, 0.5]), atol=0.02)
    z.sum().backward()
    assert mu.grad is not None and torch.allclose(mu.grad, torch.full((2,), 100_000.0))
    assert logvar.grad is not None and logvar.grad.abs().sum() > 0


def test_bernoulli_log_likelihood_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    logits, x = torch.randn(5, 6, generator=g), (torch.rand(5, 6, generator=g) > 0.5).float()
    reference = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
    assert torch.allclose(bernoulli_log_likelihood(logits, x), reference, atol=1e-5)


def test_vae_shapes_and_clear_error():
    vae = VAE(64, z_dim=2, hidden=16)
    mu, logvar = vae.encode(torch.rand(3, 64))
    assert mu.shape == logvar.shape == (3, 2) and vae.decode(mu).shape == (3, 64)
    with pytest.raises(ValueError, match="reshape"):
        vae.encode(torch.rand(3, 8, 8))


def _train_vae(digits, kl_weight, steps=600):
    """The notebook's ELBO loop (1.1a), with the KL term weighted (kl_weight = 0: the broken variant)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x_train, x_test = binarise(digits.x_train), binarise(digits.x_test)
    vae = VAE(64, 2, 128)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    for _ in range(steps):
        x = x_train[torch.randint(len(x_train), (128,), generator=g)]
        mu, logvar = vae.encode(x)
        rec = bernoulli_log_likelihood(vae.decode(reparameterise(mu, logvar)), x)
        loss = -(rec - kl_weight * gaussian_kl(mu, logvar)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        mu, logvar = vae.encode(x_test)
        kl = gaussian_kl(mu, logvar)
        rec = bernoulli_log_likelihood(vae.decode(reparameterise(mu, logvar, g)), x_test)
    return (rec - kl).mean().item(), kl.mean().item()


def test_vae_without_kl_term_leaves_the_smoke_bands(digits):
    from rlgen_utils.book.bands import load_bands

    band = load_bands()["1.1a_vae"]["smoke"]
    elbo, kl = _train_vae(digits, kl_weight=1.0)
    elbo_broken, kl_broken = _train_vae(digits, kl_weight=0.0)
    inside = lambda v, b: b[0] <= v <= b[1]  # noqa: E731
    assert inside(elbo, band["vae/test_elbo"]) and inside(kl, band["vae/test_kl"])
    assert not inside(elbo_broken, band["vae/test_elbo"]) and not inside(kl_broken, band["vae/test_kl"])


# ----------------------------------------------------------------------------- classifier and its metrics
def test_class_coverage_and_confidence_against_brute_force():
    rng = np.random.default_rng(0)
    labels = rng.choice(10, size=500, p=[0.3, 0.3, 0.2, 0.15, 0.03, 0.015, 0.005, 0, 0, 0])
    expected = sum(1 for c in range(10) if np.mean(labels == c) >= 0.02)
    assert class_coverage(torch.from_numpy(labels)) == expected
    assert class_coverage(torch.tensor([3] * 98 + [5, 6])) == 1
    assert class_coverage(torch.tensor([3] * 98 + [5, 5])) == 2  # exactly 2% counts
    probs = torch.tensor([[0.1, 0.9], [0.6, 0.4], [0.5, 0.5]])
    assert classifier_confidence(probs) == pytest.approx((0.9 + 0.6 + 0.5) / 3)


def test_digit_classifier_is_accurate_and_deterministic(digits):
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    clf, acc = train_digit_classifier(digits, epochs=8, seed=0)
    assert torch.equal(torch.rand(3), before), "training the judge must not move the caller's random stream"
    _, acc_again = train_digit_classifier(digits, epochs=8, seed=0)
    assert acc > 0.9 and acc == acc_again
    p = clf.probs(digits.x_test[:5])
    assert p.shape == (5, 10) and torch.allclose(p.sum(-1), torch.ones(5))
    assert not clf.training


# ----------------------------------------------------------------------------- EBM
def test_joint_energy_takes_concatenated_x_and_one_hot_y():
    ebm = JointEnergy(64, 10, hidden=16)
    assert ebm.net[0].in_features == 74
    x, y = torch.rand(5, 64), torch.tensor([0, 3, 9, 1, 1])
    e = ebm(x, y)
    assert e.shape == (5,)
    assert torch.allclose(e, ebm(x, F.one_hot(y, 10).float()))
    manual = ebm.net(torch.cat([x, F.one_hot(y, 10).float()], 1)).squeeze(-1)
    assert torch.allclose(e, manual)
    all_e = ebm.energies(x)
    assert all_e.shape == (5, 10)
    assert torch.allclose(all_e[torch.arange(5), y], e, atol=1e-6)


def test_label_contrastive_loss_is_cross_entropy_over_minus_energy():
    g = torch.Generator().manual_seed(0)
    energies, y = torch.randn(8, 10, generator=g) * 3, torch.randint(10, (8,), generator=g)
    assert label_contrastive_loss(energies, y).item() == pytest.approx(F.cross_entropy(-energies, y).item(), rel=1e-6)


def test_langevin_samples_a_gaussian_energy():
    """E(x) = ½‖x − 1‖²: with noise = sqrt(2 · step) Langevin dynamics samples N(1, I) (up to O(step) bias)."""
    step = 0.02
    x = langevin_sample(lambda x: 0.5 * (x - 1).pow(2).sum(-1), torch.zeros(20_000, 2), steps=400,
                          step_size=step, noise=math.sqrt(2 * step), clamp=None, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(x.mean(0), torch.ones(2), atol=0.03)
    assert torch.allclose(x.var(0), torch.full((2,), 1 / (1 - step / 2)), atol=0.04)


def test_auc_used_by_the_ebm_notebook_is_the_pairwise_probability():
    """1.1c uses sklearn's roc_auc_score; check it is P(score of positive > score of negative) on our shapes."""
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(0)
    energies, y = torch.randn(30, 10, generator=g), torch.randint(10, (30,), generator=g)
    matched = F.one_hot(y, 10).bool()
    pos, neg = -energies[matched], -energies[~matched]
    brute = (pos[:, None] > neg[None, :]).float().mean().item()
    assert roc_auc_score(matched.flatten().numpy(), (-energies).flatten().numpy()) == pytest.approx(brute)


# ----------------------------------------------------------------------------- MADE
@pytest.mark.parametrize("order", [None, [3, 0, 5, 1, 4, 2]])
def test_made_is_causal_by_gradients(order):
    made = MADE(6, hidden=32, n_hidden=2, order=order, seed=1)
    jac = torch.autograd.functional.jacobian(lambda x: made(x)[0], torch.rand(1, 6))[:, 0, :]  # (out, in)
    position = torch.empty(6, dtype=torch.long)
    position[made.order] = torch.arange(6)  # where each pixel sits in the chain
    for i in range(6):
        for j in range(6):
            if position[j] >= position[i]:
                assert jac[i, j] == 0, f"output {i} depends on input {j}, which is not before it"
    # not trivially zero: the last pixel in the order sees some earlier pixel
    assert jac[made.order[-1]].abs().sum() > 0


def test_made_probabilities_sum_to_one_and_sampling_matches_them():
    torch.manual_seed(0)
    made = MADE(4, hidden=16, n_hidden=1, seed=0)
    with torch.no_grad():  # perturb so the distribution is far from uniform
        for p in made.parameters():
            p.mul_(4)
    every_x = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))
    probs = made.log_prob(every_x).exp().detach()
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)
    samples = made.sample(40_000, generator=torch.Generator().manual_seed(0))
    codes = (samples * torch.tensor([8.0, 4, 2, 1])).sum(1).long()
    freq = torch.bincount(codes, minlength=16).float() / len(codes)
    assert torch.allclose(freq, probs, atol=0.01)


def test_bits_per_dim_by_hand():
    assert bits_per_dim(torch.tensor([64 * math.log(2)] * 3), 64) == pytest.approx(1.0)
    assert bits_per_dim(10.0, 5) == pytest.approx(10 / (5 * 0.6931471805599453))


# ----------------------------------------------------------------------------- flows
def _logdet_by_autograd(fn, x):
    """log |det ∂fn(x)/∂x| row by row, from autograd's full Jacobian."""
    return torch.stack([torch.linalg.slogdet(torch.autograd.functional.jacobian(fn, row))[1] for row in x])


def _perturbed(flow):
    torch.manual_seed(3)
    with torch.no_grad():  # non-trivial s and t
        for p in flow.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return flow


def test_coupling_logdet_matches_autograd_jacobian():
    layer = _perturbed(AffineCoupling(torch.tensor([1.0, 0, 1, 0, 0]), hidden=8))
    x = torch.randn(4, 5)
    ours = layer(x)[1]
    reference = _logdet_by_autograd(lambda r: layer(r[None])[0][0], x)
    assert torch.allclose(ours, reference, atol=1e-5)
    assert ours.abs().min() > 1e-3  # the check is not vacuous


def test_realnvp_logdet_inverse_and_normalisation():
    flow = _perturbed(RealNVP(5, n_layers=4, hidden=8))
    x = torch.randn(4, 5)
    z, logdet = flow(x)
    assert torch.allclose(logdet, _logdet_by_autograd(lambda r: flow(r[None])[0][0], x), atol=1e-4)
    assert torch.allclose(flow.inverse(z), x, atol=1e-5)
    # a 2-D flow's density integrates to 1 (Riemann sum on a wide grid)
    flow2 = _perturbed(RealNVP(2, n_layers=4, hidden=8))
    ticks = torch.linspace(-8, 8, 801)
    grid = torch.cartesian_prod(ticks, ticks)
    with torch.no_grad():
        mass = flow2.log_prob(grid).exp().sum().item() * (ticks[1] - ticks[0]).item() ** 2
    assert mass == pytest.approx(1.0, abs=0.01)


def test_flow_with_wrong_logdet_fails_the_jacobian_check():
    """The broken variant: a coupling that forgets the log-determinant (or uses exp(s) instead of s)."""
    layer = _perturbed(AffineCoupling(torch.tensor([1.0, 0, 1, 0]), hidden=8))
    x = torch.randn(4, 4)
    reference = _logdet_by_autograd(lambda r: layer(r[None])[0][0], x)
    z, logdet = layer(x)
    forgot = torch.zeros_like(logdet)
    s, _ = layer._s_t(x * layer.mask)
    used_exp = (s.exp() * (1 - layer.mask)).sum(-1)
    assert torch.allclose(logdet, reference, atol=1e-5)
    assert not torch.allclose(forgot, reference, atol=1e-3)
    assert not torch.allclose(used_exp, reference, atol=1e-3)


def test_logit_transform_logdet_and_inverse():
    x = torch.rand(3, 4)
    y, logdet = logit_transform(x, alpha=0.05)
    reference = _logdet_by_autograd(lambda r: logit_transform(r[None], 0.05)[0][0], x)
    assert torch.allclose(logdet, reference, atol=1e-4)
    assert torch.allclose(logit_inverse(y, 0.05), x, atol=1e-5)


def test_dequantise_stays_in_its_level():
    k = torch.randint(17, (1000, 3), generator=torch.Generator().manual_seed(0)).float()
    x = dequantise(k / 16, 17, torch.Generator().manual_seed(1))
    assert torch.equal(torch.floor(x * 17), k)
    assert x.min() >= 0 and x.max() < 1


def test_standard_normal_log_prob_matches_torch():
    z = torch.randn(6, 3)
    reference = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    assert torch.allclose(standard_normal_log_prob(z), reference, atol=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        RealNVP(1)


def _train_made(digits, leak: bool, steps=300):
    """The notebook's MADE loop (1.1d); leak=True removes the masks (the broken, non-causal variant)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x_train, x_test = binarise(digits.x_train), binarise(digits.x_test)
    made = MADE(64, hidden=128, n_hidden=2, seed=0)
    if leak:  # drop the masks: every output sees every pixel, so x_i predicts itself
        for layer in made.net:
            if isinstance(layer, MaskedLinear):
                layer.mask.fill_(1.0)
    opt = torch.optim.Adam(made.parameters(), lr=1e-3)
    for _ in range(steps):
        x = x_train[torch.randint(len(x_train), (128,), generator=g)]
        loss = -made.log_prob(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return bits_per_dim(-made.log_prob(x_test), 64)


def test_made_with_a_leaking_mask_leaves_the_smoke_band(digits):
    from rlgen_utils.book.bands import load_bands

    low, high = load_bands()["1.1d_autoregressive"]["smoke"]["ar/test_bits_per_dim"]
    assert low <= _train_made(digits, leak=False) <= high
    assert _train_made(digits, leak=True) < low
