"""Exercises of survey §1.2 (notebooks 1.2a–1.2c): the Bellman optimality backup and exact policy evaluation;
GAE and REINFORCE's loss; PUCT's selection score and AlphaZero's loss."""
from __future__ import annotations

import numpy as np
import torch

from ..rl.advantages import gae as _gae
from ..rl.policy_gradient import reinforce_loss as _reinforce_loss
from .harness import pick, randint, randn, register, uniform, with_grads


# ------------------------------------------------------------------------------------------------ 1.2a MDP
def _mdp(g, actions_differ_from_states=True):
    S = int(randint(g, 3, 7))
    A = int(randint(g, 2, 5))
    if actions_differ_from_states and A == S:
        A = S - 1
    T = torch.softmax(randn(g, S, A, S, scale=2.0), -1) * uniform(g, S, A, 1, low=0.6, high=1.0)  # some mass ends
    return T.double().numpy(), randn(g, S, A).double().numpy()


def _bellman_case(g):
    T, R = _mdp(g)
    return (randn(g, T.shape[0]).double().numpy(), T, R, pick(g, [0.9, 0.99, 1.0])), {}


def _bellman_optimality_backup(V, T, R, gamma):
    return (R + gamma * T @ V).max(axis=1)


check_bellman_optimality_backup = register(
    id="1.2a.1", name="bellman_optimality_backup", stars=1, title="The Bellman optimality backup",
    statement="One sweep of value iteration: for every state, the best action's immediate reward plus the "
              "discounted expected value of where it leads.",
    contract="`bellman_optimality_backup(V, T, R, gamma)`: numpy arrays `V` (S,), `T` (S, A, S) with T[s, a, s'] = "
             "P(s'|s, a) for continuing transitions, `R` (S, A) expected rewards; returns V_{k+1} (S,).",
    hint="`T @ V` contracts the last axis (s') and gives (S, A); then maximise over the actions.",
    equation=r"V_{k+1}(s) = \max_a \Big[R(s, a) + \gamma \sum_{s'} T(s, a, s')\, V_k(s')\Big]",
    reference=_bellman_optimality_backup, cases=_bellman_case,
    mistakes=[
        ("you took the max over states (axis 0): the backup maximises over the actions of each state (axis 1)",
         lambda V, T, R, gamma: (R + gamma * T @ V).max(axis=0)),
        ("you averaged over the actions: that is the expectation backup of the uniform policy; the optimality backup "
         "takes the max", lambda V, T, R, gamma: (R + gamma * T @ V).mean(axis=1)),
        ("you left out the discount γ", lambda V, T, R, gamma: (R + T @ V).max(axis=1)),
    ])


def _policy_evaluation_exact(T, R, pi, gamma):
    T_pi, R_pi = np.einsum("sa,sat->st", pi, T), (pi * R).sum(axis=1)
    return np.linalg.solve(np.eye(len(R_pi)) - gamma * T_pi, R_pi)


def _evaluation_case(g):
    T, R = _mdp(g, actions_differ_from_states=False)
    pi = torch.softmax(randn(g, *R.shape, scale=2.0), -1).double().numpy()
    return (T, R, pi, pick(g, [0.5, 0.9, 0.95])), {}


check_policy_evaluation_exact = register(
    id="1.2a.2", name="policy_evaluation_exact", stars=2, title="Policy evaluation as a linear system",
    statement="V^π is the fixed point of the Bellman expectation backup V = R_π + γ T_π V, a linear system: average "
              "rewards and transitions over the policy's actions, then solve it exactly (no iteration).",
    contract="`policy_evaluation_exact(T, R, pi, gamma)`: `T` (S, A, S), `R` (S, A), `pi` (S, A) action probabilities, "
             "`gamma` < 1; returns V^π (S,).",
    hint="T_π[s, s'] = Σ_a π(a|s) T[s, a, s'] (`np.einsum`), R_π[s] = Σ_a π(a|s) R[s, a]; `np.linalg.solve`.",
    equation=r"V^\pi = (I - \gamma T_\pi)^{-1} R_\pi",
    reference=_policy_evaluation_exact, cases=_evaluation_case,
    mistakes=[
        ("you returned R_π, one backup from V = 0: solve the fixed point V = R_π + γ T_π V",
         lambda T, R, pi, gamma: (pi * R).sum(axis=1)),
        ("you used T_πᵀ: V(s) sums T_π[s, s'] V(s') over the next states s'",
         lambda T, R, pi, gamma: np.linalg.solve(np.eye(len(R)) - gamma * np.einsum("sa,sat->st", pi, T).T,
                                                 (pi * R).sum(axis=1))),
        ("you left out the discount γ", lambda T, R, pi, gamma: _policy_evaluation_exact(T, R, pi, 1.0)),
    ])


# ------------------------------------------------------------------------------------------------ 1.2b model-free
def _gae_variant(sign=1.0, reset=True, cut_bootstrap=True, next_is_current=False, add_values=True, use_gamma=True):
    def gae(rewards, values, dones, last_value, gamma, lam):
        advantages = torch.zeros_like(rewards)
        next_value, running = last_value.to(rewards), torch.zeros_like(rewards[0])
        for t in reversed(range(rewards.shape[0])):
            not_done = 1.0 - dones[t].to(rewards)
            nv = values[t] if next_is_current else next_value
            delta = sign * (rewards[t] + gamma * nv * (not_done if cut_bootstrap else 1.0) - values[t])
            running = delta + (gamma if use_gamma else 1.0) * lam * (not_done if reset else 1.0) * running
            advantages[t] = running
            next_value = values[t]
        return advantages, advantages + values if add_values else advantages
    return gae


def _gae_case(g):
    T, N = int(randint(g, 4, 9)), 3
    dones = (torch.rand(T, N, generator=g) < 0.25).float()
    return (randn(g, T, N), randn(g, T, N), dones, randn(g, N), pick(g, [0.9, 0.97]), pick(g, [0.0, 0.8, 0.95])), {}


check_gae = register(
    id="1.2b.1", name="gae", stars=2, title="Generalised advantage estimation",
    statement="GAE(λ) (Schulman et al. 2016) blends the one-step TD error (λ = 0: low variance, the critic's bias) "
              "with the Monte-Carlo return minus a baseline (λ = 1). Compute it backwards in time over a rollout "
              "of N environments; an episode that ends at step t neither bootstraps nor passes credit back across the end.",
    contract="`gae(rewards, values, dones, last_value, gamma, lam)`: `rewards`, `values` (V(s_t)), `dones` (1.0 where "
             "the episode ended at step t) are (T, N), time-major; `last_value` (N,) = V(s_T) after the rollout; "
             "returns (advantages (T, N), returns (T, N)) with returns = advantages + values.",
    hint="Loop t = T−1 … 0 carrying V(s_{t+1}) and A_{t+1}; multiply both by (1 − done_t).",
    equation=r"\delta_t = r_t + \gamma (1 - d_t) V(s_{t+1}) - V(s_t),\qquad \hat A_t = \delta_t + \gamma\lambda (1 - d_t)\, \hat A_{t+1}",
    reference=_gae, cases=_gae_case,
    mistakes=[
        ("your advantages are the reference's with the sign flipped: δ_t = r_t + γ V(s_{t+1}) − V(s_t)",
         _gae_variant(sign=-1.0)),
        ("off by one: δ_t bootstraps with V(s_{t+1}), the value of the next state, not V(s_t)",
         _gae_variant(next_is_current=True)),
        ("your advantages run across episode ends: the recursion A_t = δ_t + γλ A_{t+1} needs the factor (1 − done_t) too",
         _gae_variant(reset=False)),
        ("you bootstrapped V(s_{t+1}) after an episode ended: (1 − done_t) must also cut δ_t's next value",
         _gae_variant(cut_bootstrap=False)),
        ("the recursion's factor is γλ, not λ", _gae_variant(use_gamma=False)),
        ("the returns (the critic's targets) are A_t + V(s_t), not A_t", _gae_variant(add_values=False)),
    ])


def _reinforce_case(g):
    B, T = 4, 5
    mask = pick(g, [None, torch.rand(B, T, generator=g) < 0.7])
    if mask is not None:
        mask[:, 0] = True
    return (-uniform(g, B, T, low=0.1, high=3.0), randn(g, B, T)), dict(mask=mask)


check_reinforce_loss = register(
    id="1.2b.2", name="reinforce_loss", stars=1, title="REINFORCE's surrogate loss",
    statement="The policy gradient E[∇ log π(a_t|s_t) A_t] is the gradient of a surrogate loss: write the loss whose "
              "gradient, for gradient *descent*, is minus the policy gradient. The advantages are constants, not "
              "something to differentiate.",
    contract="`reinforce_loss(logp, advantages, mask=None)`: `logp` = log π(a_t|s_t) (any shape, with its graph), "
             "`advantages` the same shape, `mask` (bool or 0/1, same shape) the valid entries or None; returns a scalar: "
             "the mean over the valid entries.",
    hint="`-(logp * advantages.detach())`, averaged over the mask (`rlgen_utils.rl.advantages.masked_mean`).",
    equation=r"\mathcal L(\theta) = -\frac1{|M|}\sum_{t \in M} \log\pi_\theta(a_t|s_t)\, \hat A_t,\qquad \nabla_\theta \mathcal L = -\hat g",
    reference=_reinforce_loss, cases=_reinforce_case, probe=with_grads(0, 1),
    mistakes=[
        ("your loss sends gradient into the advantages: detach them, they are constants of the policy gradient",
         lambda logp, adv, mask=None: _reinforce_loss(logp * adv, torch.ones_like(adv), mask)),
        ("your loss is the negative of the reference's: minimise −E[log π · A] to ascend the return",
         lambda logp, adv, mask=None: -_reinforce_loss(logp, adv, mask)),
        ("you summed instead of averaging over the valid entries",
         lambda logp, adv, mask=None: -(logp * adv.detach() * (1.0 if mask is None else mask.float())).sum()),
        ("you averaged over the padded entries too: use the mask (a masked mean)",
         lambda logp, adv, mask=None: -(logp * adv.detach()).mean()),
    ])


# ------------------------------------------------------------------------------------------------ 1.2c AlphaGo
def _puct_score(q, prior, parent_visits, child_visits, c):
    return q + c * prior * np.sqrt(parent_visits) / (1 + child_visits)


def _puct_case(g):
    child = randint(g, 0, 6, 9).numpy()
    prior = torch.softmax(randn(g, 9), 0).double().numpy()
    return (uniform(g, 9, low=-1.0, high=1.0).double().numpy(), prior, int(child.sum()) + 1, child,
            pick(g, [0.5, 1.5, 3.0])), {}


check_puct_score = register(
    id="1.2c.1", name="puct_score", stars=1, title="PUCT's selection score",
    statement="AlphaZero's search descends the tree by the move maximising Q plus an exploration bonus that the "
              "network's prior P steers: large for moves the prior likes and the search has rarely tried.",
    contract="`puct_score(q, prior, parent_visits, child_visits, c)`: numpy arrays `q`, `prior`, `child_visits` (9,) "
             "(one entry per move), `parent_visits` N(s) an int, `c` the exploration constant; returns the scores (9,).",
    hint="The bonus grows like √N(s) and shrinks like 1/(1 + N(s, a)); c scales the whole bonus.",
    equation=r"a^* = \arg\max_a\; Q(s, a) + c\, P(s, a) \frac{\sqrt{N(s)}}{1 + N(s, a)}",
    reference=_puct_score, cases=_puct_case,
    mistakes=[
        ("that is UCT's bonus c √(ln N / n): PUCT weights the bonus by the prior, c P √N / (1 + n)",
         lambda q, p, n, nc, c: q + c * np.sqrt(np.log(n) / np.maximum(nc, 1e-9))),
        ("divide by 1 + N(s, a): an unvisited move has N(s, a) = 0",
         lambda q, p, n, nc, c: q + c * p * np.sqrt(n) / np.maximum(nc, 1e-9)),
        ("the parent's count enters as √N(s), not N(s)", lambda q, p, n, nc, c: q + c * p * n / (1 + nc)),
    ])


def _alphazero_loss(logits, v, pi, z):
    return ((z - v) ** 2).mean(), -(pi * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def _alphazero_case(g):
    B = int(randint(g, 3, 7))
    return (randn(g, B, 9, scale=2.0), torch.tanh(randn(g, B)), torch.softmax(randn(g, B, 9, scale=2.0), 1),
            randint(g, -1, 2, B).float()), {}


check_alphazero_loss = register(
    id="1.2c.2", name="alphazero_loss", stars=2, title="AlphaZero's loss",
    statement="Self-play gives every position the search's visit distribution π and the game's result z for the player "
              "to move. The network's value v regresses z; its policy is fitted to π by cross-entropy (search is the "
              "policy-improvement operator, the network learns to predict it).",
    contract="`alphazero_loss(logits, v, pi, z)`: `logits` (B, 9), `v` (B,), `pi` (B, 9) (rows sum to 1), `z` (B,) in "
             "{−1, 0, 1}; returns (value_loss, policy_loss), each a scalar mean over the batch.",
    hint="Cross-entropy with a distribution as target: −Σ_a π_a log softmax(logits)_a, per row.",
    equation=r"\ell = (z - v)^2 - \boldsymbol\pi^\top \log \mathbf p \;(+\, c\|\theta\|^2 \text{ as weight decay})",
    reference=_alphazero_loss, cases=_alphazero_case,
    probe=with_grads(0, 1, output=lambda r: torch.stack(r)),
    mistakes=[
        ("you normalised the policy over the batch (dim 0): log_softmax over the 9 moves (dim 1)",
         lambda lg, v, pi, z: (((z - v) ** 2).mean(), -(pi * torch.log_softmax(lg, 0)).sum(1).mean())),
        ("you fitted the most visited move only: the target is the whole visit distribution π",
         lambda lg, v, pi, z: (((z - v) ** 2).mean(), torch.nn.functional.cross_entropy(lg, pi.argmax(1)))),
        ("the cross-entropy uses log-probabilities: log_softmax, not softmax",
         lambda lg, v, pi, z: (((z - v) ** 2).mean(), -(pi * torch.softmax(lg, 1)).sum(1).mean())),
        ("your value loss compares v with −z: v predicts the result for the player to move, (z − v)²",
         lambda lg, v, pi, z: (((z + v) ** 2).mean(), -(pi * torch.log_softmax(lg, 1)).sum(1).mean())),
    ])
