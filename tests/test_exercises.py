"""The exercises' checks (rlgen_utils.exercises): every check passes its reference, calls a stub "not yet solved" and
returns the reference, and names each known mistake (written as code) with its own message; the book has at least
50 exercises and one in every content notebook; a check leaves the global random states alone. Then the
references written in the exercises package, each against an independent computation (a loop, a closed form,
brute force, autograd, a library)."""
import itertools
import json
import math
import random
import statistics
from importlib import resources

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F

from rlgen_utils.exercises import EXERCISES, exercises_of, overview_markdown, run_check
from rlgen_utils.exercises import applications as ap
from rlgen_utils.exercises import applications_domains as ad
from rlgen_utils.exercises import background_likelihood as bl
from rlgen_utils.exercises import background_models as bm
from rlgen_utils.exercises import background_rl as br
from rlgen_utils.exercises import benefits as be
from rlgen_utils.exercises import benefits_rewards as bw
from rlgen_utils.exercises import challenges as ch
from rlgen_utils.exercises import challenges_credit as cc

IDS = list(EXERCISES)


def _stub_raises(*args, **kwargs):
    raise NotImplementedError("Exercise: write me")


def _stub_none(*args, **kwargs):
    return None


def _stub_ellipsis(*args, **kwargs):
    return ...


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_reference_passes_its_own_check(exercise_id):
    exercise = EXERCISES[exercise_id]
    outcome = run_check(exercise, exercise.reference)
    assert outcome.status == "solved", outcome.message
    assert outcome.message.startswith(f"✓ Exercise {exercise_id} solved: matches the reference on")
    assert outcome.fn is exercise.reference


@pytest.mark.parametrize("exercise_id", IDS)
def test_a_stub_is_not_yet_solved_and_the_notebook_goes_on_with_the_reference(exercise_id):
    exercise = EXERCISES[exercise_id]
    for stub in (_stub_raises, _stub_none, _stub_ellipsis, None):
        outcome = run_check(exercise, stub)
        assert outcome.status == "unsolved" and outcome.fn is exercise.reference
        assert outcome.message == (f"Exercise {exercise_id} not yet solved — the notebook continues with the reference "
                                   "implementation")


@pytest.mark.parametrize("exercise_id", IDS)
def test_every_known_mistake_is_named(exercise_id):
    exercise = EXERCISES[exercise_id]
    assert len(exercise.mistakes) >= 2, f"{exercise_id} checks fewer than two common mistakes"
    for mistake in exercise.mistakes:
        outcome = run_check(exercise, mistake.fn)
        assert outcome.status == "failed" and outcome.fn is exercise.reference
        assert outcome.message == f"✗ Exercise {exercise_id}: {mistake.message} — continuing with the reference"


def test_the_book_has_its_exercises_with_their_metadata():
    index = json.loads(resources.files("rlgen_utils").joinpath("book", "book_index.json").read_text())
    notebooks = [entry["notebook"] for entry in index]
    assert len(EXERCISES) >= 50
    assert all(exercises_of(stem) for stem in notebooks), [s for s in notebooks if not exercises_of(s)]
    names = [e.name for e in EXERCISES.values()]
    assert len(set(names)) == len(names), "two exercises ask for functions of the same name"
    for stem in notebooks:
        own = exercises_of(stem)
        assert [e.id for e in own] == [f"{stem.split('_')[0]}.{i}" for i in range(1, len(own) + 1)]
    for e in EXERCISES.values():
        assert e.stars in (1, 2, 3) and e.name.isidentifier() and e.check.__name__ == f"check_{e.name}"
        assert all(len(text) > 20 for text in (e.title + "." * 20, e.statement, e.contract, e.hint)), e.id
    assert {e.stars for e in EXERCISES.values()} == {1, 2, 3}
    text = overview_markdown()
    assert all(e.id in text for e in EXERCISES.values()) and "colab.research.google.com" in text


def test_a_check_prints_one_line_and_returns_the_function_to_use(capsys):
    from rlgen_utils.exercises import check_gae

    def my_gae(rewards, values, dones, last_value, gamma, lam):
        """A vectorised GAE (a discounted convolution of the TD errors), different code from the reference."""
        T = len(rewards)
        not_done = 1.0 - dones
        next_values = torch.cat([values[1:], last_value[None]])
        delta = rewards + gamma * next_values * not_done - values
        advantages = torch.zeros_like(rewards)
        for t in range(T):
            weight = torch.ones_like(rewards[0])
            for u in range(t, T):
                advantages[t] += weight * delta[u]
                weight = weight * gamma * lam * not_done[u]
        return advantages, advantages + values

    assert check_gae(my_gae) is my_gae
    assert capsys.readouterr().out == "✓ Exercise 1.2b.1 solved: matches the reference on 25 random cases\n"
    assert check_gae(_stub_raises) is EXERCISES["1.2b.1"].reference
    assert capsys.readouterr().out.count("\n") == 1


def test_an_unknown_mistake_gets_the_first_difference_and_the_hint():
    exercise = EXERCISES["1.1a.2"]
    outcome = run_check(exercise, lambda mu, logvar: 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1) + 0.1)
    assert outcome.status == "failed" and "on case 1 of 25" in outcome.message and "hint:" in outcome.message
    outcome = run_check(exercise, lambda mu, logvar: 3 * exercise.reference(mu, logvar))
    assert "your result is 3 times the reference's" in outcome.message
    outcome = run_check(exercise, lambda mu, logvar: mu.sum())
    assert "raised" not in outcome.message and "shape" in outcome.message
    outcome = run_check(exercise, lambda mu, logvar: mu.undefined)
    assert "raised AttributeError" in outcome.message and outcome.fn is exercise.reference
    assert "should be a function" in run_check(exercise, 3.0).message


def test_a_check_leaves_the_global_random_states_alone():
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    expected = torch.rand(3), np.random.rand(3), random.random()
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    greedy = lambda *args, **kwargs: torch.rand(1) + np.random.rand() + random.random()  # noqa: E731  uses every global stream
    for exercise_id in ("1.1a.1", "1.2b.1", "3.2.2"):
        run_check(EXERCISES[exercise_id], EXERCISES[exercise_id].reference)
        run_check(EXERCISES[exercise_id], greedy)
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


# ------------------------------------------------------------------------------ the references written here
def test_iwae_bound_is_the_log_of_the_mean_weight():
    log_w = torch.randn(7, 4, dtype=torch.float64) * 3 - 20
    naive = torch.log(torch.exp(log_w).mean(0))
    assert torch.allclose(bm._iwae_bound(log_w), naive)
    assert torch.isfinite(bm._iwae_bound(log_w - 500)).all()


def test_gan_losses_and_straight_through():
    g = torch.Generator().manual_seed(0)
    (D, real, fake), _ = bm._gan_case(g, True)
    p_real, p_fake = torch.sigmoid(D(real)), torch.sigmoid(D(fake))
    assert torch.isclose(bm._discriminator_loss(D, real, fake), -(p_real.log().mean() + (1 - p_fake).log().mean()), atol=1e-6)
    assert torch.isclose(bm._generator_loss(D, fake), -p_fake.log().mean(), atol=1e-6)
    x = torch.rand(5, 3, requires_grad=True)
    y = bm._straight_through_round(x)
    y.sum().backward()
    assert torch.equal(y, torch.round(x.detach())) and torch.equal(x.grad, torch.ones_like(x))


def test_free_energy_by_brute_force():
    ebm, x = bm.FixedEnergies(torch.randn(6, 4)), torch.rand(3, 6)
    E = ebm.energies(x).double()
    brute = [-math.log(sum(math.exp(-e) for e in row)) for row in E.tolist()]
    assert np.allclose(bm._free_energy(ebm, x).numpy(), brute, atol=1e-5)


def test_made_masks_equal_the_library_made_and_are_autoregressive():
    from rlgen_utils.genmodels.made import MADE, MaskedLinear

    D, H, seed = 9, 16, 3
    made = MADE(D, hidden=H, n_hidden=2, seed=seed)
    g = torch.Generator().manual_seed(seed)
    hidden = [torch.randint(1, D, (H,), generator=g) for _ in range(2)]
    masks = bl._made_masks(torch.arange(1, D + 1), hidden)
    assert all(torch.equal(m, layer.mask) for m, layer in zip(masks, [m for m in made.net if isinstance(m, MaskedLinear)]))
    connectivity = masks[0]
    for m in masks[1:]:
        connectivity = (m @ connectivity).clamp(max=1)
    assert connectivity.triu().sum() == 0  # output i reaches only inputs j < i


def test_ancestral_sampling_equals_the_library_made():
    from rlgen_utils.genmodels.made import MADE

    made = MADE(7, hidden=12, order=torch.randperm(7, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        ours = bl._sample_autoregressive(made, 20, made.order, torch.Generator().manual_seed(2))
    assert torch.equal(ours, made.sample(20, generator=torch.Generator().manual_seed(2)))


def test_coupling_log_prob_by_autograd_jacobian():
    from rlgen_utils.genmodels.flows import AffineCoupling

    layer = AffineCoupling(torch.tensor([1.0, 0.0, 1.0, 0.0]), hidden=8)
    x = torch.randn(3, 4, dtype=torch.float32)
    ours = bl._coupling_log_prob(x, layer.mask, layer._s_t)
    for i in range(3):
        J = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0][0], x[i])
        z = layer(x[i:i + 1])[0][0]
        exact = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum() + torch.linalg.slogdet(J)[1]
        assert torch.isclose(ours[i], exact, atol=1e-4)


def test_the_mdp_references_against_loops_and_iteration():
    g = torch.Generator().manual_seed(0)
    (V, T, R, gamma), _ = br._bellman_case(g)
    loop = [max(R[s, a] + gamma * sum(T[s, a, t] * V[t] for t in range(len(V))) for a in range(R.shape[1]))
            for s in range(len(V))]
    assert np.allclose(br._bellman_optimality_backup(V, T, R, gamma), loop)
    (T, R, pi, gamma), _ = br._evaluation_case(g)
    V = np.zeros(len(R))
    for _ in range(3000):
        V = (pi * (R + gamma * T @ V)).sum(1)
    assert np.allclose(br._policy_evaluation_exact(T, R, pi, gamma), V, atol=1e-8)


def test_puct_and_alphazero_loss_against_the_library():
    from rlgen_utils.rl.mcts import Node, puct_score

    parent = Node((0,) * 9)
    parent.expand(np.full(9, 1 / 9))
    parent.visits = 10
    children = list(parent.children.values())
    for i, child in enumerate(children):
        child.visits, child.value_sum, child.prior = i, 0.3 * i, (i + 1) / 45
    q = np.array([c.q() for c in children])
    ours = br._puct_score(q, np.array([c.prior for c in children]), 10, np.array([c.visits for c in children]), 1.5)
    assert np.allclose(ours, [puct_score(parent, c, 1.5) for c in children])
    logits, v, pi, z = torch.randn(4, 9), torch.rand(4), torch.softmax(torch.randn(4, 9), 1), torch.tensor([1.0, -1, 0, 1])
    value_loss, policy_loss = br._alphazero_loss(logits, v, pi, z)
    assert torch.isclose(policy_loss, F.cross_entropy(logits, pi)) and torch.isclose(value_loss, F.mse_loss(v, z))


def test_score_function_estimates_are_unbiased_and_match_autograd():
    from rlgen_utils.rl.gradient_estimators import exact_gradient

    theta, c = torch.randn(5), torch.linspace(0, 1, 5)
    f = lambda z: (z @ c - 0.4) ** 2  # noqa: E731
    every = torch.arange(5)
    estimates = be._reinforce_estimates(theta, every, f(torch.eye(5)), baseline=0.2)
    expectation = (torch.softmax(theta, 0)[:, None] * estimates).sum(0)
    assert torch.allclose(expectation, exact_gradient(theta, f), atol=1e-6)
    thetas = theta.clone().requires_grad_(True)
    torch.log_softmax(thetas, 0)[3].backward()
    assert torch.allclose(be._reinforce_estimates(theta, torch.tensor([3]), torch.tensor([1.0]))[0], thetas.grad)


def test_gumbel_max_draws_follow_the_softmax_and_straight_through_has_the_soft_gradient():
    theta = torch.tensor([0.5, -1.0, 1.5, 0.0])
    u = torch.rand(200_000, 4, generator=torch.Generator().manual_seed(0)).clamp(1e-12, 1 - 1e-12)
    frequencies = be._gumbel_softmax(theta, u, hard=True).mean(0)
    assert torch.allclose(frequencies, torch.softmax(theta, 0), atol=5e-3)
    a, b = theta.clone().requires_grad_(True), theta.clone().requires_grad_(True)
    w = torch.randn(4)
    (be._gumbel_softmax(a, u[:3], 0.7, hard=True) * w).sum().backward()
    (be._gumbel_softmax(b, u[:3], 0.7, hard=False) * w).sum().backward()
    assert torch.allclose(a.grad, b.grad)


def test_per_token_rlhf_rewards_sum_to_the_penalised_sequence_reward():
    from rlgen_utils.rl.kl import kl_penalised_reward

    (logp, logp_ref, mask, scores, beta), _ = bw._token_rewards_case(torch.Generator().manual_seed(0))
    rewards, dones = bw._token_rewards(logp, logp_ref, mask, scores, beta)
    total = kl_penalised_reward(scores, (logp * mask).sum(1), (logp_ref * mask).sum(1), beta)
    assert torch.allclose(rewards.sum(1), total, atol=1e-5)
    assert torch.equal(dones.argmax(1), mask.sum(1).long() - 1) and dones.sum() == len(mask)


def test_repetition_rule_by_python_loops_and_exact_kl_by_scipy():
    (samples, eos), kw = bw._repetition_case(torch.Generator().manual_seed(3))
    assert torch.allclose(bw._repetition_penalty(samples, eos, **kw), bw._repetition_python(samples, eos, **kw))
    p, q = torch.softmax(torch.randn(6), 0), torch.softmax(torch.randn(6), 0)
    p[2] = 0.0
    p = p / p.sum()
    assert math.isclose(bw._exact_kl(p.log(), q.log()), scipy.stats.entropy(p.numpy(), q.numpy()), rel_tol=1e-5)


def test_leave_one_out_and_tempered_likelihood_by_loops():
    R = torch.randn(6)
    assert torch.allclose(ch._leave_one_out_baseline(R), torch.tensor([statistics.mean(R[[j for j in range(6) if j != i]].tolist())
                                                                       for i in range(6)]), atol=1e-6)
    (policy, y), kw = ch._tempered_case(torch.Generator().manual_seed(0))
    logits = policy.logits(y)
    for b in range(len(y)):
        end = y[b].tolist().index(0) + 1 if 0 in y[b].tolist() else y.shape[1]
        loop = sum(torch.distributions.Categorical(logits=logits[b, t] / kw["temperature"]).log_prob(y[b, t]) for t in range(end))
        assert torch.isclose(ch._tempered_log_prob(policy, y, **kw)[b], loop, atol=1e-5)


def test_kl_shaped_loss_has_the_policy_gradient_of_its_shaped_reward():
    (logp, logp_ref, r, H, beta, alpha), _ = ch._shaped_case(torch.Generator().manual_seed(1))
    lp = logp.clone().requires_grad_(True)
    ch._kl_shaped_loss(lp, logp_ref, r, H, beta, alpha).backward()
    R = r - beta * (logp - logp_ref)
    A = R - (R.sum() - R) / (len(R) - 1)
    assert torch.allclose(lp.grad, -A / len(R), atol=1e-6)


def test_bandit_indices_and_thompson_draws():
    (S, N), t = ch._bandit_counts(torch.Generator().manual_seed(0)), 500
    loop = [[S[r, a] / N[r, a] + math.sqrt(2 * math.log(t) / N[r, a]) for a in range(S.shape[1])] for r in range(S.shape[0])]
    assert np.allclose(ch._ucb1_index(S, N, t), loop)
    S1, N1 = np.full((1, 1), 3.0), np.full((1, 1), 10.0)
    draws = [ch._thompson_draw(S1, N1, np.random.default_rng(i))[0, 0] for i in range(4000)]
    assert abs(np.mean(draws) - 4 / 12) < 0.01  # the Beta(4, 8) posterior's mean


def test_trajectory_balance_is_zero_at_the_balanced_policy():
    log_R = torch.randn(5)
    log_Z = torch.logsumexp(log_R, 0)
    assert ch._trajectory_balance_loss(log_Z, log_R - log_Z, log_R, torch.zeros(5)) < 1e-10


def test_prefix_values_by_enumeration():
    target, L = torch.tensor([1, 0, 1, 1]), 4
    p_right = torch.tensor([0.6, 0.7, 0.8, 0.9])  # a policy that writes the right token at u with p_right[u]
    y = torch.tensor([1, 0, 0, 1])
    q = ch._exact_prefix_q(y, target, p_right.log())
    for t in range(L):
        total = 0.0
        for rest in itertools.product([0, 1], repeat=L - t - 1):
            full = torch.cat([y[:t + 1], torch.tensor(rest, dtype=torch.long)])
            prob = math.prod(float(p_right[u] if full[u] == target[u] else 1 - p_right[u]) for u in range(t + 1, L))
            total += prob * float(torch.equal(full, target))
        assert math.isclose(float(q[t]), total, abs_tol=1e-6)
    r = (torch.randint(0, 2, (3, 5)) == 1).float()
    credit = ch._credit_process(None, r.long(), torch.ones(5, dtype=torch.long), None)
    assert torch.equal(credit, torch.tensor([[r[b, t:].sum() for t in range(5)] for b in range(3)]))


def test_credit_assignment_references():
    x = torch.randn(2, 4, 3)
    loop = torch.stack([torch.stack([x[:, [j for j in range(4) if j != i]].mean(1) for i in range(4)], 1)])[0]
    assert torch.allclose(cc._leave_one_out_mean(x), loop, atol=1e-6)
    g_prefix, G = torch.randn(2, 3, 6), torch.randn(2, 3)
    assert torch.allclose(cc._redistribute(g_prefix, G).sum(-1), G - g_prefix[..., 0], atol=1e-5)  # return-equivalent
    (s, lp, lpr, m, c), _ = cc._advantages_case(torch.Generator().manual_seed(0))
    R = [float(s[i] - c * sum((lp[i, t] - lpr[i, t]) * m[i, t] for t in range(lp.shape[1]))) for i in range(len(s))]
    A = [R[i] - statistics.mean(R[:i] + R[i + 1:]) for i in range(len(R))]
    assert np.allclose(cc._kl_penalised_advantages(s, lp, lpr, m, c)[:, 0].numpy(), np.array(A) / (statistics.stdev(A) + 1e-8),
                       atol=1e-5)


def test_language_and_code_references_by_loops():
    r, G = torch.tensor([1.0, 0, 0, 1, 1, 1, 0, 1]), 4
    loop = [(r[i] - statistics.mean(r[i // G * G:(i // G + 1) * G].tolist())) / (statistics.stdev(r[i // G * G:(i // G + 1) * G].tolist()) + 1e-4)
            for i in range(len(r))]
    assert torch.allclose(ap._group_advantages(r, G)[:, 0], torch.tensor(loop), atol=1e-6)
    r = torch.rand(3, 4)
    assert torch.allclose(ap._loo_advantages(r), r - (r.sum(1, keepdim=True) - r) / 3)
    T, B = 3, 2
    old, A = torch.randn(T, B), torch.randn(B)
    new = old.reshape(-1) + 0.3 * torch.randn(T * B)
    terms = [min(math.exp(new[t * B + b] - old[t, b]) * A[b], min(max(math.exp(new[t * B + b] - old[t, b]), 0.8), 1.2) * A[b])
             for t in range(T) for b in range(B)]
    assert math.isclose(float(ap._ddpo_clipped_loss(new, old, A, 0.2)), -statistics.mean(float(v) for v in terms), abs_tol=1e-6)


def test_rl_tuner_and_reinvent_references_by_loops():
    (r, lp, lpi, c), _ = ap._tuner_case(torch.Generator().manual_seed(0))
    step = r + c * (lp - lpi)
    G = torch.tensor([[float(step[b, t:].sum()) for t in range(step.shape[1])] for b in range(len(step))])
    assert torch.allclose(ap._rl_tuner_advantage(r, lp, lpi, c), G - G.mean(0), atol=1e-5)
    prior, agent, S = torch.tensor([-10.0, -20.0]), torch.tensor([-12.0, -18.0]), torch.tensor([0.5, 1.0])
    assert math.isclose(float(ad._reinvent_loss(prior, agent, S, 2.0)), ((-9 + 12) ** 2 + (-18 + 18) ** 2) / 2)
