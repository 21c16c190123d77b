"""rlgen_utils.genmodels.diffusion (DDPM, Ho et al. 2020; the reverse chain as DDPO's policy, Black et al. 2023)
against independent references: the one-step forward process iterated (exact moments and samples), Bayes'
rule for Gaussians, DDPM's eq. 11, torch.distributions.Normal, and the CPU-generator convention."""
import math

import pytest
import torch

from rlgen_utils.genmodels.diffusion import (EpsilonNet, cosine_betas, ddpm_loss, gaussian_kl_same_std, gaussian_log_prob,
    linear_betas,
    make_schedule, predict_x0, q_posterior_mean_variance, q_sample, q_step, reverse_log_prob, reverse_mean_std,
    sample_chain)


@pytest.fixture(scope="module")
def schedule():
    return make_schedule(linear_betas(12, 1e-3, 0.3))


def test_marginal_equals_iterated_one_step_moments_exactly(schedule):
    # x_t = a_t x_{t-1} + b_t ε: mean m_t = a_t m_{t-1}, variance v_t = a_t² v_{t-1} + β_t, from x_0 (v_0 = 0)
    m, v = 1.0, 0.0
    for t in range(schedule.T):
        m, v = math.sqrt(1 - schedule.betas[t].item()) * m, (1 - schedule.betas[t].item()) * v + schedule.betas[t].item()
        assert math.isclose(m, schedule.alpha_bars[t].sqrt().item(), rel_tol=1e-5, abs_tol=1e-6)
        assert math.isclose(v, 1 - schedule.alpha_bars[t].item(), rel_tol=1e-5, abs_tol=1e-6)


def test_marginal_equals_iterated_one_step_by_sampling(schedule):
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([[0.8, -0.5, 0.0]]).expand(100_000, 3)
    t = 7
    x = x0
    for s in range(t + 1):
        x = q_step(schedule, x, s, torch.randn(x.shape, generator=g))
    direct = q_sample(schedule, x0, t, torch.randn(x0.shape, generator=g))
    assert torch.allclose(x.mean(0), direct.mean(0), atol=0.02)
    assert torch.allclose(x.var(0), direct.var(0), atol=0.02)
    assert torch.allclose(direct.mean(0), schedule.alpha_bars[t].sqrt() * x0[0], atol=0.02)
    # a vector of step indices broadcasts per row
    ts = torch.tensor([0, 11])
    out = q_sample(schedule, torch.ones(2, 3), ts, torch.zeros(2, 3))
    assert torch.allclose(out[:, 0], schedule.alpha_bars[ts].sqrt())


def test_posterior_matches_bayes_rule_for_gaussians(schedule):
    # q(x_{t-1}|x_t,x_0) ∝ N(x_t; √α_t x_{t-1}, β_t) N(x_{t-1}; √ᾱ_{t-1} x_0, 1 − ᾱ_{t-1}): precisions add
    g = torch.Generator().manual_seed(1)
    x0, xt = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    for t in range(1, schedule.T):
        a, b = schedule.alphas[t].item(), schedule.betas[t].item()
        ab_prev = torch.cumprod(1 - schedule.betas, 0)[t - 1].item()
        precision = a / b + 1 / (1 - ab_prev)
        ref_var = 1 / precision
        ref_mean = ref_var * (math.sqrt(a) * xt / b + math.sqrt(ab_prev) * x0 / (1 - ab_prev))
        mean, var = q_posterior_mean_variance(schedule, x0, xt, t)
        assert torch.allclose(mean, ref_mean, atol=1e-5)
        assert torch.allclose(var, torch.full_like(var, ref_var), rtol=1e-5)
    # at the first step (t = 1 in the paper) the posterior is the point x_0
    mean, var = q_posterior_mean_variance(schedule, x0, xt, 0)
    assert torch.allclose(mean, x0, atol=1e-5) and torch.allclose(var, torch.zeros_like(var))


def test_reverse_mean_is_ddpm_eq11_unclipped_and_the_posterior_at_the_true_noise(schedule):
    torch.manual_seed(0)
    model = EpsilonNet(4, hidden=16)
    g = torch.Generator().manual_seed(2)
    xt = torch.randn(6, 4, generator=g)
    t = torch.tensor([0, 3, 5, 7, 9, 11])
    mean, std = reverse_mean_std(model, schedule, xt, t, clip_x0=False)
    beta, alpha, ab = (v[t][:, None] for v in (schedule.betas, schedule.alphas, schedule.alpha_bars))
    with torch.no_grad():
        eq11 = (xt - beta / (1 - ab).sqrt() * model(xt, t)) / alpha.sqrt()
    assert torch.allclose(mean, eq11, atol=1e-5)
    assert torch.allclose(std, schedule.sigmas2[t][:, None].sqrt().expand_as(std))
    # with the true noise, x̂_0 is x_0 exactly
    x0, eps = torch.rand(6, 4, generator=g) * 2 - 1, torch.randn(6, 4, generator=g)
    assert torch.allclose(predict_x0(schedule, q_sample(schedule, x0, t, eps), t, eps), x0, atol=1e-4)


def test_reverse_log_prob_matches_torch_distributions(schedule):
    torch.manual_seed(0)
    model = EpsilonNet(5, hidden=16)
    g = torch.Generator().manual_seed(3)
    xt, xp = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    t = torch.randint(schedule.T, (8,), generator=g)
    mean, std = reverse_mean_std(model, schedule, xt, t)
    reference = torch.distributions.Normal(mean, std).log_prob(xp).sum(-1)
    assert torch.allclose(reverse_log_prob(model, schedule, xt, t, xp), reference, atol=1e-4)
    assert torch.allclose(gaussian_log_prob(xp, mean, std), reference, atol=1e-4)


def test_sample_chain_log_probs_are_the_policy_log_probs_and_repeatable():
    sched = make_schedule(cosine_betas(6))
    torch.manual_seed(0)
    model = EpsilonNet(4, hidden=16)
    chain = sample_chain(model, sched, 10, torch.Generator().manual_seed(4))
    assert chain.states.shape == (7, 10, 4) and chain.log_probs.shape == (6, 10)
    assert chain.timesteps.tolist() == [5, 4, 3, 2, 1, 0]
    with torch.no_grad():
        for k, t in enumerate(chain.timesteps.tolist()):
            lp = reverse_log_prob(model, sched, chain.states[k], t, chain.states[k + 1])
            assert torch.allclose(lp, chain.log_probs[k], atol=1e-4)
    again = sample_chain(model, sched, 10, torch.Generator().manual_seed(4))
    assert torch.equal(chain.states, again.states)


def test_schedules_and_loss():
    sched = make_schedule(cosine_betas(20))
    assert sched.alpha_bars[-1] < 1e-3 and (sched.sigmas2 > 0).all()
    beta_sched = make_schedule(linear_betas(20), variance="beta")
    assert torch.equal(beta_sched.sigmas2, beta_sched.betas)
    with pytest.raises(ValueError):
        make_schedule(torch.tensor([0.1, 1.0]))
    torch.manual_seed(0)
    model = EpsilonNet(4, hidden=16)
    x0 = torch.zeros(32, 4)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    plain = ddpm_loss(model, sched, x0, g1)
    weighted = ddpm_loss(model, sched, x0, g2, weights=torch.full((32,), 1 / 32))
    assert torch.allclose(plain, weighted, atol=1e-6)
    with pytest.raises(ValueError):
        model(torch.zeros(3, 5), torch.zeros(3, dtype=torch.long))


def test_gaussian_kl_same_std_matches_torch_distributions():
    g = torch.Generator().manual_seed(3)
    mean_p, mean_q = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    std = torch.rand(5, 7, generator=g) + 0.1
    p = torch.distributions.Independent(torch.distributions.Normal(mean_p, std), 1)
    q = torch.distributions.Independent(torch.distributions.Normal(mean_q, std), 1)
    assert torch.allclose(gaussian_kl_same_std(mean_p, mean_q, std), torch.distributions.kl_divergence(p, q), atol=1e-5)
    assert torch.equal(gaussian_kl_same_std(mean_p, mean_p, std), torch.zeros(5))
