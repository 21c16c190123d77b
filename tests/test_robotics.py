"""rlgen_utils.robotics against independent references: the closed-form optimum of the flow-matching loss
on a 1-D two-point target (its ODE carries noise onto the two points; the loss is minimal there, by the
bias-variance identity), Gymnasium's own environment checker, and hand computations of the rewards."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
from gymnasium.utils.env_checker import check_env

from rlgen_utils.robotics.flow_policy import FlowPolicy, euler_sample, flow_matching_loss, time_features
from rlgen_utils.robotics.tasks import (GOAL_BONUS, HORIZON, STEP_COST, MultimodalBandit, PointObstacleEnv,
                                        collect_demos, expert_actions, point_step, rollout)


class TwoPointOptimum(nn.Module):
    """The minimiser of L_FM for x₁ ∈ {−1, +1} (equal odds), x₀ ~ N(0, 1), x_t = (1 − t)x₀ + t·x₁:
    v*(x, t) = E[x₁ − x₀ | x_t = x] = (E[x₁ | x_t = x] − x) / (1 − t), and since x_t | x₁ ~ N(t·x₁, (1 − t)²),
    E[x₁ | x_t = x] = tanh(t·x / (1 − t)²)."""

    def __init__(self, offset: float = 0.0):
        super().__init__()
        self.action_dim, self.offset = 1, offset
        self.dummy = nn.Parameter(torch.zeros(()))

    def velocity(self, x, t, state=None):
        t = t.reshape(-1, 1).clamp(max=1 - 1e-4)
        return (torch.tanh(t * x / (1 - t) ** 2) - x) / (1 - t) + self.offset


def test_euler_sampling_of_the_optimal_field_reproduces_the_two_points():
    x = euler_sample(TwoPointOptimum(), 4000, steps=400, generator=torch.Generator().manual_seed(0))
    assert ((x - 1).abs() < 0.05).float().mean() + ((x + 1).abs() < 0.05).float().mean() > 0.99
    assert abs(float((x > 0).float().mean()) - 0.5) < 0.03      # the two points with equal odds


def test_flow_matching_loss_is_minimal_at_the_closed_form_optimum():
    """L(v* + c) − L(v*) = c² (the cross term vanishes because v* is the conditional mean of the target)."""
    x1 = torch.where(torch.rand(200_000, 1, generator=torch.Generator().manual_seed(1)) < 0.5, -1.0, 1.0)
    losses = {c: float(flow_matching_loss(TwoPointOptimum(c), x1, generator=torch.Generator().manual_seed(2)))
              for c in (0.0, 0.3, -0.5)}
    assert losses[0.3] - losses[0.0] == pytest.approx(0.09, abs=0.02)
    assert losses[-0.5] - losses[0.0] == pytest.approx(0.25, abs=0.03)


def test_flow_matching_target_is_the_straight_line_velocity():
    """The regression target x₁ − x₀ is d/dt of (1 − t)x₀ + t·x₁, checked by a finite difference through the loss:
    a network that outputs exactly x₁ − x₀ at x_t has zero loss."""
    x0, x1, t, h = torch.randn(5, 2), torch.randn(5, 2), torch.rand(5, 1), 1e-3
    path = lambda s: (1 - s) * x0 + s * x1
    assert torch.allclose((path(t + h) - path(t - h)) / (2 * h), x1 - x0, atol=1e-3)

    class Oracle(nn.Module):   # knows x₀ and x₁, so it can return the target itself
        action_dim = 2

        def velocity(self, x_t, tt, state=None):
            return x1 - torch.randn(x1.shape, generator=torch.Generator().manual_seed(9))

    g = torch.Generator().manual_seed(9)
    assert float(flow_matching_loss(Oracle(), x1, generator=g)) == pytest.approx(0.0, abs=1e-10)


def test_a_trained_flow_policy_puts_its_samples_on_the_two_points():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    policy = FlowPolicy(1, state_dim=0, hidden=64, depth=2)
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    data = torch.tensor([[-1.0], [1.0]]).repeat(128, 1)
    for _ in range(800):
        loss = flow_matching_loss(policy, data, generator=g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        x = euler_sample(policy, 2000, steps=16, generator=g)
    near = ((x - 1).abs() < 0.25) | ((x + 1).abs() < 0.25)
    assert near.float().mean() > 0.8
    assert 0.3 < float((x > 0).float().mean()) < 0.7


def test_conditional_flow_policy_shapes_and_time_features():
    policy = FlowPolicy(4, state_dim=3, hidden=16, depth=2)
    s = torch.randn(7, 3)
    a = euler_sample(policy, 7, s, steps=3, generator=torch.Generator().manual_seed(0))
    assert a.shape == (7, 4) and flow_matching_loss(policy, a.detach(), s).shape == ()
    f = time_features(torch.tensor([0.0, 0.25]), 2)
    assert torch.allclose(f[1], torch.tensor([0.25, 1.0, 0.0, 0.0, -1.0]), atol=1e-6)


# ----------------------------------------------------------------------------- the bandit
def test_bandit_reward_matches_a_hand_computation():
    bandit = MultimodalBandit()
    a = [(1.0, 1.0), (0.0, 0.0), (1.0, 0.5), (-0.9, 1.2)]
    w2 = 2 * 0.25 ** 2
    hand = [sum(h * math.exp(-((x - mx) ** 2 + (y - my) ** 2) / w2)
                for (mx, my), h in zip([(1, 1), (-1, 1), (-1, -1), (1, -1)], [1.0, 0.8, 0.6, 0.4])) for x, y in a]
    got = bandit.reward(torch.tensor(a, dtype=torch.float64))
    assert np.allclose(got.numpy(), hand, rtol=1e-10, atol=1e-14)
    assert got[0] == pytest.approx(1.0, abs=1e-10) and got[2] == pytest.approx(math.exp(-2), rel=1e-6)
    assert bandit.in_modes(torch.tensor([[1.2, 1.0], [1.0, 0.65], [0.0, 0.0]])).tolist() == [True, False, False]


def test_bandit_demos_are_on_the_modes_evenly():
    bandit = MultimodalBandit()
    demos = torch.tensor(bandit.demos(8000, np.random.default_rng(0)))
    assert bandit.in_modes(demos).float().mean() > 0.98            # 3σ radius in 2-D: 1 − e^{−4.5} ≈ 0.989
    nearest = ((demos[:, None] - torch.tensor(bandit.modes)[None]) ** 2).sum(-1).argmin(1)
    assert np.allclose(np.bincount(nearest.numpy(), minlength=4) / 8000, 0.25, atol=0.02)


# ----------------------------------------------------------------------------- the point robot
def test_environment_passes_gymnasiums_checker_and_seeded_reset():
    env = PointObstacleEnv()
    with warnings.catch_warnings():
        warnings.simplefilter("error")                               # the checker's warnings fail the test
        check_env(env, skip_render_check=True)
    assert np.array_equal(env.reset(seed=3)[0], env.reset(seed=3)[0])
    assert not np.array_equal(env.reset(seed=3)[0], env.reset(seed=4)[0])


def test_point_step_rewards_by_hand():
    pos = np.array([[0.0, -1.5], [0.0, -0.65], [0.0, 1.25], [0.0, -1.5]])
    act = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 5.0]])     # the last is clipped to (0, 1)
    new, r, reached = point_step(pos, act)
    assert np.allclose(new, [[0, -1.4], [0, -0.65], [0, 1.35], [0, -1.4]])   # the second is blocked by the obstacle
    assert np.allclose(r, [0.1 - STEP_COST, -STEP_COST, 0.1 - STEP_COST + GOAL_BONUS, 0.1 - STEP_COST])
    assert reached.tolist() == [False, False, True, False]


def test_env_steps_agree_with_the_batched_function():
    env = PointObstacleEnv()
    env.reset(seed=0)
    pos = env._pos[None].copy()
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = rng.uniform(-1, 1, 2).astype(np.float32)
        obs, r, terminated, truncated, _ = env.step(a)
        pos, r_ref, reached = point_step(pos, a[None].astype(float))
        assert np.allclose(obs, pos[0], atol=1e-6) and r == pytest.approx(r_ref[0]) and terminated == reached[0]


def test_demonstrations_reach_the_goal_on_both_sides_and_chunks_shift():
    data = collect_demos(40, np.random.default_rng(0), noise=0.05, chunk=3)
    assert (data["episode_returns"] > 2.5).all() and sorted(set(data["sides"])) == [-1.0, 1.0]
    one = collect_demos(1, np.random.default_rng(1), chunk=3)
    a = one["actions"]
    assert a.shape[1] == 6 and np.allclose(a[:-1, 2:4], a[1:, 0:2])      # chunk t's 2nd action = step t+1's action
    assert one["returns"][0] == pytest.approx(sum(0.99 ** t * r for t, r in enumerate(one["rewards"])))
    # each step knows its episode: the steps of episode e sum to its return, and they come in time order
    for e in range(40):
        assert data["rewards"][data["episodes"] == e].sum() == pytest.approx(data["episode_returns"][e])
    assert len(data["episodes"]) == len(data["states"])


def test_rollout_of_the_expert_reaches_and_straight_up_is_blocked():
    rng = np.random.default_rng(0)
    expert = rollout(lambda pos: expert_actions(pos, np.ones(len(pos))), 16, rng)
    assert expert["reached"].all() and (expert["paths"][:, :, 0].max(0) > 0.5).all()   # round on the right
    up = rollout(lambda pos: np.tile([0.0, 1.0, 0.0, 1.0], (len(pos), 1)), 16, rng, chunk=2)
    assert not up["reached"].any() and up["paths"].shape == (HORIZON + 1, 16, 2)
    assert (np.linalg.norm(up["paths"][-1], axis=1) < 0.75).all()         # stuck against the obstacle


# ----------------------------------------------------------------------------- the mixture-density policy
def mixture_reference(policy, s):
    """torch.distributions' own mixture of diagonal Gaussians, built from the policy's outputs."""
    log_w, mean, log_std = policy(s)
    components = torch.distributions.Independent(torch.distributions.Normal(mean, log_std.exp()), 1)
    return torch.distributions.MixtureSameFamily(torch.distributions.Categorical(logits=log_w), components)


def test_mixture_log_prob_matches_torch_distributions():
    from rlgen_utils.robotics.mixture_policy import MixturePolicy
    torch.manual_seed(0)
    policy = MixturePolicy(3, 2, components=4, hidden=16, depth=2)
    s, a = torch.randn(50, 2), torch.randn(50, 3)
    assert torch.allclose(policy.log_prob(a, s), mixture_reference(policy, s).log_prob(a), atol=1e-5)
    assert torch.allclose(policy(s)[0].exp().sum(-1), torch.ones(50), atol=1e-6)


def test_mixture_samples_match_the_components_by_monte_carlo():
    """Sample moments against the mixture's closed-form mean and per-dimension second moment."""
    from rlgen_utils.robotics.mixture_policy import MixturePolicy
    torch.manual_seed(1)
    policy = MixturePolicy(2, 1, components=3, hidden=16, depth=1)
    n = 200_000
    s = torch.ones(n, 1)
    with torch.no_grad():
        a = policy.sample(s, torch.Generator().manual_seed(2))
        log_w, mean, log_std = policy(s[:1])
    w, mu, var = log_w.exp()[0], mean[0], (2 * log_std[0]).exp()
    expected_mean = (w[:, None] * mu).sum(0)
    expected_second = (w[:, None] * (var + mu ** 2)).sum(0)
    sd = (expected_second - expected_mean ** 2).sqrt()
    assert ((a.mean(0) - expected_mean).abs() < 5 * sd / n ** 0.5).all()
    assert ((a.pow(2).mean(0) - expected_second).abs() < 0.02 * expected_second + 0.01).all()


def test_mixture_expected_q_is_unbiased_and_sums_the_components_exactly():
    """E_{a~π}[Q] by `expected_q` (averaged over draws) against a Monte-Carlo average of Q over sampled actions,
    for Q(a) = −‖a − c‖²; and with zero scales it is exactly Σ_k w_k Q(μ_k), with gradients to the weights."""
    from rlgen_utils.robotics.mixture_policy import MixturePolicy
    torch.manual_seed(3)
    policy = MixturePolicy(2, 1, components=3, hidden=16, depth=1)
    c = torch.tensor([0.5, -0.3])
    q_fn = lambda s, a: -((a - c) ** 2).sum(-1)
    n = 100_000
    s = torch.ones(n, 1)
    with torch.no_grad():
        estimate = policy.expected_q(q_fn, s, torch.Generator().manual_seed(4)).mean()
        monte_carlo = q_fn(s, policy.sample(s, torch.Generator().manual_seed(5))).mean()
    assert abs(float(estimate - monte_carlo)) < 0.02 * abs(float(monte_carlo)) + 0.01
    with torch.no_grad():                    # σ → e^−5 ≈ 0: the draws sit on the means
        policy.net[-1].weight[3:] = 0
        policy.net[-1].bias[3:].view(3, 4)[:, 2:] = -5.0
    log_w, mean, _ = policy(s[:1])
    exact = (log_w.exp()[0] * q_fn(None, mean[0])).sum()
    value = policy.expected_q(q_fn, s[:1000], torch.Generator().manual_seed(6)).mean()
    assert abs(float(value.detach() - exact.detach())) < 1e-3
    value.backward()
    assert policy.net[-1].bias.grad[:3].abs().sum() > 0   # the mixing logits get a gradient
