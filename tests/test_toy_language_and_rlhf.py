"""The §2.2 testbed (rlgen_utils.datasets.toy_language: toy language, gold scorer; rlgen_utils.rewards.learned:
preferences, reward model), the KL-regularised optimum and best-of-n's exact distribution (rlgen_utils.rl.kl), and
the RLHF step (rlgen_utils.sequences.rlhf.sequence_ppo_step)."""
import copy
import itertools
import math

import numpy as np
import pytest
import torch

from rlgen_utils.datasets.toy_language import (DATA_PROBS, EOS, MAX_LEN, VOCAB, WORDS, GoldReward, content_mask,
    data_log_prob, distinct_fraction, gold_score, lengths, sample_data, taste, text_to_tokens, tokens_to_text,
    violations)
from rlgen_utils.rewards.learned import RewardModel, fit_reward_model, preference_accuracy, preference_pairs
from rlgen_utils.rl.kl import best_of_n_kl, best_of_n_kl_exact, best_of_n_probs, kl_regularised_optimum
from rlgen_utils.sequences.policy import SequencePolicy
from rlgen_utils.sequences.rlhf import sequence_ppo_step


def test_mask_lengths_decode_encode_round_trip():
    x = text_to_tokens(["the cat .", "a good dog likes the bird .", ". the"], length=8)
    assert x.shape == (3, 8)
    assert content_mask(x).sum(1).tolist() == [3, 7, 1]  # the end mark counts as an action
    assert lengths(x).tolist() == [2, 6, 0]
    assert tokens_to_text(x) == ["the cat .", "a good dog likes the bird .", "."]
    no_end = torch.full((1, 5), WORDS.index("cat"))
    assert content_mask(no_end).sum() == 5 and lengths(no_end).item() == 5
    with pytest.raises(ValueError, match="words are"):
        text_to_tokens(["the unicorn ."])


def test_gold_score_by_hand():
    x = text_to_tokens(["the good cat .", "good good good .", "a dog sees the bird .", "."])
    # "good good good .": START→good, good→good twice, good→. are four violations; taste 1.0.
    assert violations(x).tolist() == [0, 4, 0, 1]
    expected_taste = [(0 + 1.0 + 0.8) / 3, 1.0, (0 + 0.0 + 0.0 + 0 - 0.6) / 5, 0.0]
    assert torch.allclose(taste(x), torch.tensor(expected_taste))
    assert torch.allclose(gold_score(x), torch.tensor(expected_taste) - torch.tensor([0, 4.0, 0, 1]))
    assert torch.allclose(GoldReward()(x), gold_score(x))
    unterminated = torch.full((1, MAX_LEN), WORDS.index("the"))
    assert violations(unterminated).item() == 1 + (MAX_LEN - 1)  # never ends + the→the each step


def test_data_is_grammatical_and_follows_the_chain():
    g = torch.Generator().manual_seed(0)
    x = sample_data(4000, generator=g)
    assert x.shape == (4000, MAX_LEN)
    assert violations(x).sum() == 0
    assert torch.isfinite(data_log_prob(x)).all()
    # First-word frequencies match the chain's START row (binomial 5-sigma tolerance).
    freq = torch.bincount(x[:, 0], minlength=VOCAB).float() / len(x)
    p = DATA_PROBS[VOCAB]
    assert torch.all((freq - p).abs() <= 5 * torch.sqrt(p * (1 - p) / len(x)) + 1e-6)
    # log P("the cat .") by hand from the chain.
    the, cat = WORDS.index("the"), WORDS.index("cat")
    by_hand = math.log(DATA_PROBS[VOCAB, the] * DATA_PROBS[the, cat] * DATA_PROBS[cat, EOS])
    assert data_log_prob(text_to_tokens(["the cat ."])).item() == pytest.approx(by_hand, rel=1e-5)
    assert data_log_prob(text_to_tokens(["cat the ."])).item() == -math.inf


def test_distinct_fraction():
    assert distinct_fraction(text_to_tokens(["the cat .", "the cat . dog", "a cat ."])) == pytest.approx(2 / 3)


def test_preference_labels_follow_bradley_terry():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    policy = SequencePolicy(VOCAB, hidden=16, cell="gru")  # untrained: diverse, often ungrammatical
    tau = 0.5
    chosen, rejected = preference_pairs(policy, 6000, temperature=tau, generator=g)
    diff = gold_score(chosen) - gold_score(rejected)
    untied = diff != 0
    # P(the better one is chosen) = σ(|Δ|/τ) for each pair: compare the empirical rate with its expectation.
    expected = torch.sigmoid(diff[untied].abs() / tau).mean()
    observed = (diff[untied] > 0).float().mean()
    se = math.sqrt(float(expected * (1 - expected)) / int(untied.sum()))
    assert abs(float(observed - expected)) < 5 * se
    # Noise-free limit: the chosen one is never worse.
    c, r = preference_pairs(policy, 500, temperature=1e-6, generator=g)
    assert (gold_score(c) >= gold_score(r)).all()


def test_reward_model_learns_gold_preferences():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    policy = SequencePolicy(VOCAB, hidden=16, cell="gru")
    chosen, rejected = preference_pairs(policy, 3000, temperature=1e-6, generator=g)
    model = RewardModel()
    losses = fit_reward_model(model, chosen[:2500], rejected[:2500], steps=250, generator=g)
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:5])
    assert preference_accuracy(model, chosen[2500:], rejected[2500:]) > 0.8
    # A scorer that cannot tell the sequences apart gets exactly one half (ties count half).
    assert preference_accuracy(lambda y: torch.zeros(len(y)), chosen, rejected) == 0.5
    assert model(chosen[:4]).shape == (4,)


def _enumerated_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    logp0 = torch.log_softmax(torch.randn(27, generator=g), 0)
    reward = torch.rand(27, generator=g)
    return logp0, reward


def _objective(logp, logp0, reward, beta):
    p = logp.exp()
    return float((p * (reward - beta * (logp - logp0))).sum())


@pytest.mark.parametrize("beta", [0.05, 0.5, 3.0])
def test_kl_regularised_optimum_matches_closed_form_and_is_the_maximiser(beta):
    logp0, reward = _enumerated_problem()
    logp_star = kl_regularised_optimum(logp0, reward, beta)
    unnormalised = np.exp(logp0.double().numpy()) * np.exp(reward.double().numpy() / beta)
    assert np.allclose(logp_star.exp().numpy(), unnormalised / unnormalised.sum(), atol=1e-6)
    best = _objective(logp_star, logp0, reward, beta)
    assert best == pytest.approx(beta * math.log(unnormalised.sum()), rel=1e-4)  # J(π*) = β log Z
    g = torch.Generator().manual_seed(1)
    for _ in range(200):
        q = torch.log_softmax(logp_star + 0.2 * torch.randn(27, generator=g), 0)
        assert _objective(q, logp0, reward, beta) < best
    # A numerical optimiser of J over softmax logits lands on the same distribution.
    logits = torch.zeros(27, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.05)
    for _ in range(3000):
        logp = torch.log_softmax(logits, 0)
        loss = -(logp.exp() * (reward - beta * (logp - logp0))).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.allclose(torch.softmax(logits, 0).detach(), logp_star.exp(), atol=2e-3)
    with pytest.raises(ValueError, match="beta must be > 0"):
        kl_regularised_optimum(logp0, reward, 0.0)


def test_sequence_ppo_step_converges_to_the_kl_regularised_optimum():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    V, T, beta = 3, 2, 0.5
    X = torch.tensor(list(itertools.product(range(V), repeat=T)))
    ref = SequencePolicy(V, hidden=16, value_head=True)
    with torch.no_grad():
        logp0 = ref.log_prob(X).sum(1)

    def score(x):
        return (x[:, 0] == x[:, 1]).float() + 0.5 * (x[:, 1] == 2).float()

    logp_star = kl_regularised_optimum(logp0, score(X), beta)
    policy = copy.deepcopy(ref)
    opt = torch.optim.Adam(policy.parameters(), lr=5e-3)
    before = float((logp0.exp() * (logp0 - logp_star)).sum())
    for _ in range(80):
        stats = sequence_ppo_step(policy, ref, score, opt, 256, T, kl_coef=beta, generator=g, epochs=2, minibatch_size=128)
    with torch.no_grad():
        logp = policy.log_prob(X).sum(1)
    after = float((logp.exp() * (logp - logp_star)).sum())
    assert before > 0.1 and after < 0.01
    # The reported KL is the sampled k1 estimate of the exact KL(π‖π_ref) (of the policy before the step).
    assert {"score", "kl", "objective", "clip_fraction"} <= set(stats)
    assert stats["kl"] == pytest.approx(float((logp.exp() * (logp - logp0)).sum()), abs=0.1)


def test_sequence_ppo_step_masks_tokens_after_the_end():
    torch.manual_seed(0)
    ref = SequencePolicy(VOCAB, hidden=8, cell="gru", value_head=True)
    policy = copy.deepcopy(ref)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    stats = sequence_ppo_step(policy, ref, GoldReward(), opt, 32, MAX_LEN, 0.1, mask_fn=content_mask,
                              epochs=1, minibatch_size=32)
    # Before the first update π = π_ref, so the KL of the batch is exactly zero.
    assert stats["kl"] == pytest.approx(0.0, abs=1e-6)
    assert stats["objective"] == pytest.approx(stats["score"], abs=1e-6)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_best_of_n_probs_matches_brute_force_enumeration(n):
    """Every n-tuple of draws from a small base with tied rewards: the best-of-n distribution, its KL and an
    expectation under it agree with the enumeration (ties keep the first tied draw, as argmax does)."""
    probs = torch.tensor([0.35, 0.05, 0.2, 0.1, 0.3], dtype=torch.float64)
    rewards = torch.tensor([1.0, 2.0, 1.0, 0.5, 3.0], dtype=torch.float64)  # outcomes 0 and 2 tie
    values = torch.tensor([-1.0, 0.5, 2.0, 4.0, 0.25], dtype=torch.float64)
    brute = torch.zeros(5, dtype=torch.float64)
    for draws in itertools.product(range(5), repeat=n):
        best = max(draws, key=lambda k: float(rewards[k]))
        brute[best] += float(torch.prod(probs[list(draws)]))
    q = best_of_n_probs(probs, rewards, n)
    assert torch.allclose(q, brute, atol=1e-12) and float(q.sum()) == pytest.approx(1.0)
    keep = q > 0
    assert float((q[keep] * (q[keep] / probs[keep]).log()).sum()) == pytest.approx(best_of_n_kl_exact(probs, rewards, n), abs=1e-12)
    assert float(q @ values) == pytest.approx(float(brute @ values), abs=1e-12)


def test_best_of_n_probs_limits_and_sampling():
    """n = 1 returns the base; distinct rewards and many atoms give the analytic KL; a Monte-Carlo best-of-n agrees."""
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(40, generator=g, dtype=torch.float64)
    probs /= probs.sum()
    rewards = torch.randn(40, generator=g, dtype=torch.float64)
    assert torch.allclose(best_of_n_probs(probs, rewards, 1), probs)
    big = 50_000
    q = best_of_n_probs(torch.full((big,), 1.0 / big), torch.randperm(big, generator=g).double(), 16)
    assert float((q * (q * big).log()).sum()) == pytest.approx(best_of_n_kl(16), abs=2e-3)
    draws = torch.searchsorted(torch.cumsum(probs, 0), torch.rand(20_000, 8, generator=g, dtype=torch.float64)).clamp(max=39)
    winners = draws.gather(1, rewards[draws].argmax(1, keepdim=True)).squeeze(1)
    empirical = torch.bincount(winners, minlength=40).double() / len(winners)
    expected = best_of_n_probs(probs, rewards, 8)
    assert torch.all((empirical - expected).abs() <= 5 * torch.sqrt(expected * (1 - expected) / len(winners)) + 1e-9)
