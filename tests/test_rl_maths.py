"""The RL maths of rlgen_utils.rl (advantages, policy-gradient losses, KL estimators and controllers, preference losses) against independent references: direct sums, hand numbers, closed forms."""
import math

import pytest
import torch

from rlgen_utils.rl.advantages import MovingAverageBaseline, discounted_returns, gae
from rlgen_utils.rl.kl import (AdaptiveKLController, FixedKLController, best_of_n_kl, best_of_n_kl_exact, kl_estimates,
                               kl_penalised_reward)
from rlgen_utils.rl.policy_gradient import ppo_clip_loss, ppo_update, reinforce_loss
from rlgen_utils.rl.preferences import bradley_terry_loss, dpo_loss


def direct_gae(rewards, values, dones, last_value, gamma, lam):
    """A_t = Σ_l (γλ)^l δ_{t+l}, summed explicitly until the episode ends."""
    n_steps, n_envs = rewards.shape
    v_next = torch.cat([values[1:], last_value[None]])
    deltas = rewards + gamma * v_next * (1 - dones) - values
    adv = torch.zeros_like(rewards)
    for e in range(n_envs):
        for t in range(n_steps):
            total, factor = 0.0, 1.0
            for k in range(t, n_steps):
                total += factor * deltas[k, e]
                if dones[k, e]:
                    break
                factor *= gamma * lam
            adv[t, e] = total
    return adv


@pytest.fixture
def rollout():
    g = torch.Generator().manual_seed(0)
    rewards = torch.randn(9, 3, generator=g)
    values = torch.randn(9, 3, generator=g)
    dones = (torch.rand(9, 3, generator=g) < 0.25).float()
    last_value = torch.randn(3, generator=g)
    return rewards, values, dones, last_value


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
def test_gae_matches_direct_sum(rollout, lam):
    adv, ret = gae(*rollout, gamma=0.9, lam=lam)
    assert torch.allclose(adv, direct_gae(*rollout, 0.9, lam), atol=1e-5)
    assert torch.allclose(ret, adv + rollout[1])


def test_gae_lambda_limits(rollout):
    rewards, values, dones, last_value = rollout
    adv1, _ = gae(rewards, values, dones, last_value, gamma=0.9, lam=1.0)
    mc = discounted_returns(rewards, 0.9, dones, last_value)
    assert torch.allclose(adv1, mc - values, atol=1e-5)
    adv0, _ = gae(rewards, values, dones, last_value, gamma=0.9, lam=0.0)
    v_next = torch.cat([values[1:], last_value[None]])
    assert torch.allclose(adv0, rewards + 0.9 * v_next * (1 - dones) - values, atol=1e-6)


def test_discounted_returns_by_hand():
    r = torch.tensor([1.0, 2.0, 3.0])
    assert torch.allclose(discounted_returns(r, 0.5), torch.tensor([1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0]))
    done = torch.tensor([0.0, 1.0, 0.0])
    assert torch.allclose(discounted_returns(r, 0.5, done), torch.tensor([2.0, 2.0, 3.0]))


def test_ppo_clip_loss_hand_numbers():
    ratio = torch.tensor([1.5, 0.5, 1.1, 0.7])
    adv = torch.tensor([1.0, -1.0, 2.0, 1.0])
    logp_old = torch.zeros(4)
    loss, stats = ppo_clip_loss(ratio.log(), logp_old, adv, clip=0.2)
    # min(1.5, 1.2)=1.2; min(-0.5, -0.8)=-0.8; min(2.2, 2.2)=2.2; min(0.7, 0.8)=0.7
    assert loss.item() == pytest.approx(-(1.2 - 0.8 + 2.2 + 0.7) / 4)
    assert stats["clip_fraction"] == pytest.approx(0.75)
    # No gradient flows through a clipped term; the unclipped ones get A·ρ.
    logp = ratio.log().requires_grad_()
    ppo_clip_loss(logp, logp_old, adv, clip=0.2)[0].backward()
    assert torch.allclose(logp.grad, torch.tensor([0.0, 0.0, -2.2, -0.7]) / 4)


def test_reinforce_gradient_matches_exact_policy_gradient():
    torch.manual_seed(0)
    logits = torch.tensor([0.3, -0.2, 0.5, 0.0], requires_grad=True)
    reward = torch.tensor([1.0, 3.0, -2.0, 0.5])
    exact = torch.autograd.grad((torch.softmax(logits, 0) * reward).sum(), logits)[0]
    dist = torch.distributions.Categorical(logits=logits)
    actions = dist.sample((200_000,))
    estimate = torch.autograd.grad(reinforce_loss(dist.log_prob(actions), reward[actions]), logits)[0]
    assert torch.allclose(-estimate, exact, atol=0.02)


def test_kl_estimators_match_exact_kl():
    torch.manual_seed(0)
    p = torch.distributions.Categorical(logits=torch.tensor([1.0, 0.0, -1.0, 0.5]))
    q = torch.distributions.Categorical(logits=torch.tensor([0.0, 0.3, 0.1, -0.4]))
    exact = torch.distributions.kl_divergence(p, q).item()
    x = p.sample((400_000,))
    est = kl_estimates(p.log_prob(x), q.log_prob(x))
    assert est["k1"].mean().item() == pytest.approx(exact, abs=3e-3)
    assert est["k3"].mean().item() == pytest.approx(exact, abs=3e-3)
    assert (est["k3"] >= 0).all()
    assert est["k3"].std() < est["k1"].std()


def test_kl_penalised_reward():
    out = kl_penalised_reward(torch.tensor([1.0]), torch.tensor([-1.0]), torch.tensor([-2.0]), beta=0.5)
    assert out.item() == pytest.approx(0.5)


def test_adaptive_kl_controller_moves_the_right_way():
    ctl = AdaptiveKLController(beta=0.1, target=6.0, horizon=100)
    assert ctl.update(current_kl=12.0, n_steps=10) > 0.1  # too far from the reference: push harder
    ctl = AdaptiveKLController(beta=0.1, target=6.0, horizon=100)
    assert ctl.update(current_kl=1.0, n_steps=10) < 0.1
    assert ctl.value == pytest.approx(0.1 * (1 - 0.2 * 10 / 100))  # error clipped at -0.2
    assert FixedKLController(0.3).update(100.0, 10) == 0.3


def test_bradley_terry_loss_and_gradient():
    rw = torch.tensor([2.0, 0.0, -1.0], requires_grad=True)
    rl = torch.tensor([1.0, 0.5, -1.0], requires_grad=True)
    loss = bradley_terry_loss(rw, rl)
    delta = (rw - rl).detach()
    assert loss.item() == pytest.approx(torch.log1p(torch.exp(-delta)).mean().item())
    loss.backward()
    assert torch.allclose(rw.grad, -(1 - torch.sigmoid(delta)) / 3)
    assert torch.allclose(rl.grad, (1 - torch.sigmoid(delta)) / 3)


def test_dpo_loss_formula_on_hand_numbers():
    loss, rc, rr = dpo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]),
                              torch.tensor([-2.5]), beta=0.5)
    # r̂_w = 0.5·(−1+2) = 0.5, r̂_l = 0.5·(−3+2.5) = −0.25 → −log σ(0.75)
    assert rc.item() == pytest.approx(0.5) and rr.item() == pytest.approx(-0.25)
    assert loss.item() == pytest.approx(math.log1p(math.exp(-0.75)))


def test_dpo_is_minimised_by_the_implied_reward():
    """On all pairs of 4 items with Bradley–Terry preferences from reward r, the DPO optimum satisfies
    β log(π/π_ref) = r + const: DPO recovers the reward without a reward model."""
    torch.manual_seed(0)
    r = torch.tensor([0.0, 1.0, -0.5, 2.0])
    beta = 0.5
    ref_logits = torch.tensor([0.2, -0.1, 0.4, 0.0])
    ref_logp = torch.log_softmax(ref_logits, 0)
    i, j = torch.triu_indices(4, 4, offset=1)
    p_i_wins = torch.sigmoid(r[i] - r[j])
    logits = ref_logits.clone().requires_grad_()
    opt = torch.optim.Adam([logits], lr=0.05)
    for _ in range(3000):
        logp = torch.log_softmax(logits, 0)
        loss = sum(w * dpo_loss(logp[a:a + 1], logp[b:b + 1], ref_logp[a:a + 1], ref_logp[b:b + 1], beta)[0]
                   for a, b, w in [(int(x), int(y), float(p)) for x, y, p in zip(i, j, p_i_wins)]
                   + [(int(y), int(x), float(1 - p)) for x, y, p in zip(i, j, p_i_wins)])
        opt.zero_grad()
        loss.backward()
        opt.step()
    implied = beta * (torch.log_softmax(logits, 0) - ref_logp).detach()
    assert torch.allclose(implied - implied.mean(), r - r.mean(), atol=0.02)


def test_best_of_n_kl_matches_exact_computation():
    """Best-of-n over N equally likely distinct outcomes: p_k = (k/N)^n - ((k-1)/N)^n; KL → log n - (n-1)/n."""
    n, big = 16, 200_000
    k = torch.arange(1, big + 1, dtype=torch.float64)
    p = (k / big) ** n - ((k - 1) / big) ** n
    exact = float((p * torch.log(p * big).clamp(min=-1e9)).where(p > 0, torch.zeros(1, dtype=torch.float64)).sum())
    assert best_of_n_kl(n) == pytest.approx(exact, abs=1e-3)
    assert best_of_n_kl(1) == 0.0


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_best_of_n_kl_exact_matches_brute_force_enumeration(n):
    """Enumerate every n-tuple of draws from a small base with tied rewards; keep the first draw of highest reward."""
    import itertools
    probs = torch.tensor([0.35, 0.05, 0.2, 0.1, 0.3], dtype=torch.float64)
    rewards = torch.tensor([1.0, 2.0, 1.0, 0.5, 3.0], dtype=torch.float64)  # outcomes 0 and 2 tie
    bon = torch.zeros(5, dtype=torch.float64)
    for draws in itertools.product(range(5), repeat=n):
        best = max(draws, key=lambda k: float(rewards[k]))  # the first of the tied maxima, as argmax does
        bon[best] += float(torch.prod(probs[list(draws)]))
    keep = bon > 0
    brute = float((bon[keep] * (bon[keep] / probs[keep]).log()).sum())
    assert best_of_n_kl_exact(probs, rewards, n) == pytest.approx(brute, abs=1e-12)


def test_best_of_n_kl_exact_limits():
    """Many equally likely distinct outcomes: the analytic log n − (n−1)/n; one outcome of all the mass: 0."""
    big = 100_000
    probs, rewards = torch.full((big,), 1.0 / big), torch.randperm(big, generator=torch.Generator().manual_seed(0))
    assert best_of_n_kl_exact(probs, rewards.double(), 16) == pytest.approx(best_of_n_kl(16), abs=1e-3)
    assert best_of_n_kl_exact(torch.tensor([1.0]), torch.tensor([0.0]), 16) == 0.0
    assert best_of_n_kl_exact(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 1.0]), 8) == pytest.approx(0.0, abs=1e-12)
    assert best_of_n_kl_exact(torch.tensor([0.5, 0.5]), torch.tensor([0.0, 1.0]), 8) < best_of_n_kl(8)


def test_moving_average_baseline():
    b = MovingAverageBaseline(decay=0.5)
    assert b.update(torch.tensor([2.0, 4.0])) == 3.0  # first batch: its own mean
    assert b.update(torch.tensor([5.0])) == 3.0 and b.value == 4.0


def test_ppo_update_learns_a_bandit():
    torch.manual_seed(0)
    logits = torch.zeros(3, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.05)
    reward = torch.tensor([0.0, 1.0, 0.2])
    for _ in range(30):
        dist = torch.distributions.Categorical(logits=logits.detach())
        a = dist.sample((256,))
        batch = {"actions": a, "logp_old": dist.log_prob(a), "advantages": reward[a], "returns": reward[a]}

        def evaluate(mb):
            d = torch.distributions.Categorical(logits=logits)
            return d.log_prob(mb["actions"]), d.entropy().expand(len(mb["actions"])), None

        ppo_update(evaluate, opt, batch, epochs=2, minibatch_size=64)
    assert torch.softmax(logits, 0)[1] > 0.9
