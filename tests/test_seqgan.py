"""SeqGAN pieces (rlgen_utils.sequences.seqgan) and the gradient estimators of notebook 2.1a, against exact references."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from rlgen_utils.rl.gradient_estimators import (exact_gradient, gumbel_straight_through_estimates,
    score_function_estimates)
from rlgen_utils.rl.policy_gradient import reinforce_loss
from rlgen_utils.sequences.policy import SequencePolicy
from rlgen_utils.sequences.seqgan import (SequenceDiscriminator, complete, delayed_copy, delayed_update,
    discriminator_step, draw_sequences, make_oracle, oracle_nll, oracle_nll_per_sequence, rollout_rewards)


class TableDiscriminator(nn.Module):
    """A 'discriminator' whose logit is a fixed table of (first token, last token): exact expectations are enumerable."""

    def __init__(self, vocab):
        super().__init__()
        self.table = torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(1))

    def forward(self, tokens):
        return self.table[tokens[:, 0], tokens[:, -1]]


def test_rollout_reward_of_complete_sequence_is_the_discriminator_score():
    torch.manual_seed(0)
    policy, disc = SequencePolicy(7, hidden=8), SequenceDiscriminator(7)
    disc.train()  # rollout_rewards must score in eval mode (no dropout) and restore the mode
    tokens, _ = policy.sample(16, 6)
    q = rollout_rewards(policy, disc, tokens, n_rollouts=3)
    assert disc.training  # mode restored
    disc.eval()
    torch.testing.assert_close(q[:, -1], torch.sigmoid(disc(tokens)))
    assert q.shape == (16, 6) and bool(((q > 0) & (q < 1)).all())


def test_rollout_reward_is_the_expected_discriminator_score_over_completions():
    torch.manual_seed(0)
    vocab = 4
    policy, disc = SequencePolicy(vocab, hidden=8), TableDiscriminator(vocab)
    tokens = torch.tensor([[0, 1, 2], [3, 3, 3]])
    q = rollout_rewards(policy, disc, tokens, n_rollouts=20000, generator=torch.Generator().manual_seed(0))
    # t = 2 (prefix y1 y2 kept, y3 sampled): Σ_y3 π(y3 | y1 y2) σ(D(y1, y3)), enumerated
    for b in range(2):
        prefix = tokens[b:b + 1, :2]
        candidates = torch.cat([prefix.repeat(vocab, 1), torch.arange(vocab).unsqueeze(1)], 1)
        p_last = policy.log_prob(candidates)[:, -1].exp().detach()
        exact = (p_last * torch.sigmoid(disc(candidates))).sum()
        assert q[b, 1].item() == pytest.approx(exact.item(), abs=0.01)
    # t = 1 (y1 kept, y2 and y3 sampled): Σ_{y2, y3} π(y2 | y1) π(y3 | y1 y2) σ(D(y1, y3)), enumerated
    for b in range(2):
        grid = torch.cartesian_prod(torch.arange(vocab), torch.arange(vocab))
        candidates = torch.cat([tokens[b, :1].repeat(len(grid), 1), grid], 1)
        p = policy.log_prob(candidates)[:, 1:].sum(1).exp().detach()
        exact = (p * torch.sigmoid(disc(candidates))).sum()
        assert q[b, 0].item() == pytest.approx(exact.item(), abs=0.01)


def test_complete_keeps_prefixes_and_samples_the_policy():
    torch.manual_seed(0)
    policy = SequencePolicy(5, hidden=8)
    tokens = torch.randint(5, (3000, 4))
    keep = torch.tensor([0, 1, 2, 4]).repeat(750)
    out = complete(policy, tokens, keep, generator=torch.Generator().manual_seed(0))
    for k in (1, 2, 4):
        rows = keep == k
        assert torch.equal(out[rows, :k], tokens[rows, :k])
    first = out[keep == 0, 0]
    p0 = torch.softmax(policy.logits(torch.zeros(1, 1, dtype=torch.long))[0, 0], -1).detach()
    freq = torch.bincount(first, minlength=5).float() / len(first)
    torch.testing.assert_close(freq, p0, atol=0.04, rtol=0)


def test_delayed_update_moves_rollout_parameters_toward_the_generator():
    torch.manual_seed(0)
    g = SequencePolicy(5, hidden=4)
    rollout = delayed_copy(g)
    before = [p.clone() for p in rollout.parameters()]
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
    delayed_update(rollout, g, rate=0.8)
    for b, r, p in zip(before, rollout.parameters(), g.parameters()):
        torch.testing.assert_close(r, 0.8 * b + 0.2 * p)
        assert not r.requires_grad


def test_oracle_is_seeded_normal_and_nll_matches_log_prob():
    a, b = make_oracle(50, hidden=32, seed=3), make_oracle(50, hidden=32, seed=3)
    params = torch.cat([p.flatten() for p in a.parameters()])
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert params.std().item() == pytest.approx(1.0, abs=0.05) and not params.requires_grad
    tokens, _ = a.sample(64, 10)
    assert oracle_nll(a, tokens, batch_size=7) == pytest.approx(-a.log_prob(tokens).mean().item(), rel=1e-5)


def test_discriminator_learns_to_separate_real_from_fake():
    torch.manual_seed(0)
    disc = SequenceDiscriminator(10)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-2)
    real = torch.randint(0, 5, (64, 12))  # "real" uses tokens 0-4, "fake" 5-9
    for _ in range(50):
        stats = discriminator_step(disc, opt, real, torch.randint(5, 10, (64, 12)))
    assert stats["accuracy"] > 0.95 and stats["loss"] < 0.2


def _objective():
    torch.manual_seed(0)
    theta, c = torch.randn(5), torch.linspace(0, 1, 5)
    return theta, (lambda z: (z @ c - 0.45) ** 2)


def test_reinforce_loss_gradient_matches_enumerated_gradient():
    theta, f = _objective()
    exact = exact_gradient(theta, f)
    gen = torch.Generator().manual_seed(0)
    n = 200_000
    logits = theta.clone().requires_grad_(True)
    z = torch.multinomial(torch.softmax(theta, -1), n, replacement=True, generator=gen)
    reward = f(F.one_hot(z, 5).float())
    reinforce_loss(torch.log_softmax(logits, -1)[z], reward).backward()
    estimate = -logits.grad
    per_sample = reward.unsqueeze(1) * (F.one_hot(z, 5).float() - torch.softmax(theta, -1))  # closed form
    stderr = per_sample.std(0) / n ** 0.5
    assert bool(((estimate - exact).abs() < 4 * stderr).all()), (estimate, exact, stderr)
    torch.testing.assert_close(estimate, per_sample.mean(0), atol=2e-4, rtol=1e-3)  # float32 sums of 2e5 terms


def test_score_function_unbiased_with_baseline_and_gumbel_biased():
    theta, f = _objective()
    exact = exact_gradient(theta, f)
    gen = torch.Generator().manual_seed(1)
    for b in (0.0, 0.3):
        est = score_function_estimates(theta, f, 100_000, baseline=b, generator=gen)
        stderr = est.std(0) / len(est) ** 0.5
        assert bool(((est.mean(0) - exact).abs() < 4 * stderr).all())
    st = gumbel_straight_through_estimates(theta, f, 100_000, tau=1.0, generator=gen)
    stderr = st.std(0) / len(st) ** 0.5
    assert ((st.mean(0) - exact).abs() / stderr).max() > 10  # a bias far beyond the noise


def test_gumbel_straight_through_matches_its_closed_form():
    theta, f = _objective()
    c, tau = torch.linspace(0, 1, 5), 0.7
    gen = torch.Generator().manual_seed(2)
    est = gumbel_straight_through_estimates(theta, f, 3, tau=tau, generator=gen)
    u = torch.rand(3, 5, generator=torch.Generator().manual_seed(2)).clamp(1e-12, 1 - 1e-12)
    soft = torch.softmax((theta - torch.log(-torch.log(u))) / tau, -1)
    hard = F.one_hot(soft.argmax(-1), 5).float()
    df_dy = 2 * (hard @ c - 0.45).unsqueeze(1) * c  # ∂f/∂y at the hard sample
    jac = (torch.diag_embed(soft) - soft.unsqueeze(2) * soft.unsqueeze(1)) / tau  # ∂softmax/∂θ
    torch.testing.assert_close(est, (df_dy.unsqueeze(1) @ jac).squeeze(1), atol=1e-5, rtol=1e-4)


def test_oracle_nll_per_sequence_averages_to_oracle_nll_and_matches_log_prob():
    oracle = make_oracle(20, hidden=16, seed=1)
    tokens, _ = oracle.sample(50, 7)
    per_seq = oracle_nll_per_sequence(oracle, tokens, batch_size=9)
    assert per_seq.shape == (50,)
    assert per_seq.mean().item() == pytest.approx(oracle_nll(oracle, tokens), rel=1e-5)
    row = tokens[3:4]  # one sequence by hand: -(1/T) Σ_t log p(y_t | y_<t) from the logits
    logp = torch.log_softmax(oracle.logits(row), -1).gather(-1, row.unsqueeze(-1)).squeeze(-1)
    assert per_seq[3].item() == pytest.approx(-logp.mean().item(), rel=1e-5)


def test_draw_sequences_samples_the_policy_joint_distribution():
    torch.manual_seed(0)
    policy = SequencePolicy(3, hidden=8)
    out = draw_sequences(policy, 20000, 2, generator=torch.Generator().manual_seed(1))
    assert out.shape == (20000, 2) and int(out.min()) >= 0 and int(out.max()) < 3
    pairs = torch.cartesian_prod(torch.arange(3), torch.arange(3))  # all 9 sequences, enumerated
    exact = policy.log_prob(pairs).sum(1).exp().detach()
    freq = torch.bincount(out[:, 0] * 3 + out[:, 1], minlength=9).float() / len(out)
    torch.testing.assert_close(freq, exact, atol=0.015, rtol=0)
