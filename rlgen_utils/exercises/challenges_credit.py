"""Exercises of survey §3, part 2 (notebooks 3.4–3.5): a leave-one-out baseline per position, RUDDER's reward
redistribution and discounted returns (credit assignment); the exact distribution of best-of-n and the KL-penalised
advantages of the RL arm (generalisation and over-optimisation)."""
from __future__ import annotations

import torch

from ..rl.advantages import discounted_returns as _discounted_returns
from ..rl.kl import best_of_n_probs as _best_of_n_probs
from .harness import pick, randint, randn, register, uniform


# ------------------------------------------------------------------------------------------------ 3.4
def _leave_one_out_mean(x):
    return (x.sum(1, keepdim=True) - x) / (x.shape[1] - 1)


check_leave_one_out_mean = register(
    id="3.4.1", name="leave_one_out_mean", stars=1, title="A leave-one-out baseline per position",
    statement="The Monte-Carlo and RUDDER arms subtract, at every position t, the mean over the *other* episodes of the "
              "batch: a baseline that does not depend on the episode's own tokens keeps the gradient unbiased.",
    contract="`leave_one_out_mean(x)`: `x` (R, B, T): runs, episodes, positions; returns (R, B, T), the mean over the "
             "other B − 1 episodes of the same run and position.",
    hint="The batch of episodes is dim 1.",
    equation=r"b_{r,i,t} = \frac1{B - 1}\sum_{j \ne i} x_{r,j,t}",
    reference=_leave_one_out_mean, cases=lambda g: ((randn(g, 2, int(randint(g, 2, 7)), 4),), {}),
    mistakes=[
        ("leave one *episode* out: the episodes are dim 1, not the positions (dim 2)",
         lambda x: (x.sum(2, keepdim=True) - x) / (x.shape[2] - 1)),
        ("leave the episode's own value out: that is the plain batch mean", lambda x: x.mean(1, keepdim=True).expand_as(x)),
    ])


def _redistribute(g_prefix, G):
    redistributed = g_prefix[..., 1:] - g_prefix[..., :-1]
    redistributed[..., -1] += G - g_prefix[..., -1]
    return redistributed


check_redistribute = register(
    id="3.4.2", name="redistribute", stars=2, title="RUDDER's reward redistribution",
    statement="A return-decomposition model g predicts the episode's return from every prefix. RUDDER credits token t "
              "with the *change* in prediction its arrival caused, and puts the remaining prediction error at the last "
              "step, so the redistributed rewards sum to the return minus g(∅) (return-equivalent; Arjona-Medina et al. 2019).",
    contract="`redistribute(g_prefix, G)`: `g_prefix` (..., T + 1) = g(a_{0..t−1}) for t = 0..T (g(∅) first), `G` (...) the "
             "episode's return; returns r̃ (..., T).",
    hint="Differences along the last axis; then add G − g(a_{0..T−1}) to the last entry.",
    equation=r"\tilde r_t = g(a_{0..t}) - g(a_{0..t-1}),\qquad \tilde r_{T-1} \mathrel{+}= G - g(a_{0..T-1}),\qquad \sum_t \tilde r_t = G - g(\varnothing)",
    reference=_redistribute, cases=lambda g: ((randn(g, 2, 3, int(randint(g, 3, 8))), randn(g, 2, 3)), {}),
    mistakes=[
        ("add the prediction error G − g(a_{0..T−1}) at the last step, so that Σ_t r̃_t = G − g(∅)",
         lambda gp, G: gp[..., 1:] - gp[..., :-1]),
        ("r̃_t = g_t − g_{t−1}, the *increase* in the predicted return; yours is reversed",
         lambda gp, G: _redistribute(-gp, -G)),
        ("the prediction error goes at the *last* step, not the first",
         lambda gp, G: torch.cat([(gp[..., 1:2] - gp[..., :1]) + (G - gp[..., -1])[..., None], gp[..., 2:] - gp[..., 1:-1]], -1)),
    ])


def _returns_case(g):
    T, N = int(randint(g, 3, 8)), 3
    dones = pick(g, [None, (torch.rand(T, N, generator=g) < 0.3).float()])
    return (randn(g, T, N), pick(g, [0.9, 1.0])), dict(dones=dones, last_value=pick(g, [None, randn(g, N)]))


def _returns_variant(backward=True, include_own=True, use_dones=True):
    def returns_of(rewards, gamma, dones=None, last_value=None):
        out = torch.zeros_like(rewards)
        running = torch.zeros_like(rewards[0]) if last_value is None else last_value.clone()
        steps = reversed(range(len(rewards))) if backward else range(len(rewards))
        for t in steps:
            not_done = 1.0 if dones is None or not use_dones else 1.0 - dones[t]
            if include_own:
                running = rewards[t] + gamma * not_done * running
                out[t] = running
            else:
                out[t] = gamma * not_done * running
                running = rewards[t] + gamma * not_done * running
        return out
    return returns_of


check_discounted_returns = register(
    id="3.4.3", name="discounted_returns", stars=1, title="Discounted returns to go",
    statement="The Monte-Carlo credit of a step is the discounted sum of the rewards from that step to the episode's "
              "end, optionally bootstrapped with a value after the last step.",
    contract="`discounted_returns(rewards, gamma, dones=None, last_value=None)`: `rewards` (T, ...) time-major, `dones` "
             "(T, ...) 1.0 where an episode ended at step t (or None), `last_value` (...) bootstraps after step T−1 (or "
             "None: 0); returns G (T, ...).",
    hint="Loop backwards: G_t = r_t + γ (1 − done_t) G_{t+1}.",
    equation=r"G_t = r_t + \gamma\,(1 - d_t)\, G_{t+1}",
    reference=_discounted_returns, cases=_returns_case,
    mistakes=[
        ("G_t sums the rewards from t *on*: loop backwards in time", _returns_variant(backward=False)),
        ("G_t includes r_t: G_t = r_t + γ G_{t+1}", _returns_variant(include_own=False)),
        ("an episode's return stops at its end: multiply by (1 − done_t)", _returns_variant(use_dones=False)),
    ])


# ------------------------------------------------------------------------------------------------ 3.5
def _probs_case(g):
    K = int(randint(g, 3, 9))
    return (torch.softmax(randn(g, K), 0).double(), randint(g, 0, 4, K).double(), int(randint(g, 1, 17))), {}


def _probs_no_ties(probs, rewards, n):
    order = torch.argsort(rewards, stable=True)
    p = probs[order] / probs.sum()
    below = torch.cumsum(p, 0) - p
    q = torch.empty_like(p)
    q[order] = (below + p).pow(n) - below.pow(n)
    return q


def _probs_without_share(probs, rewards, n):
    levels, index = torch.unique(rewards, sorted=True, return_inverse=True)
    p = torch.zeros(len(levels), dtype=torch.float64).index_add_(0, index, probs / probs.sum())
    below = torch.cumsum(p, 0) - p
    return ((below + p).pow(n) - below.pow(n))[index]


check_best_of_n_probs = register(
    id="3.5.1", name="best_of_n_probs", stars=3, title="The exact distribution of best-of-n",
    statement="Best-of-n from a discrete base returns outcome x with a probability you can compute exactly: a level of "
              "equal rewards with base mass p and mass F₋ below it wins with (F₋ + p)ⁿ − F₋ⁿ, shared among its outcomes "
              "in their base proportions. This notebook's best-of-n curves are expectations under it.",
    contract="`best_of_n_probs(probs, rewards, n)`: `probs` (K,) base probabilities, `rewards` (K,), `n` ≥ 1; returns "
             "(K,) float64 probabilities of best-of-n returning each outcome (summing to 1).",
    hint="`torch.unique(rewards, sorted=True, return_inverse=True)`; level masses by `index_add_`; share = p_x / p_level.",
    equation=r"P(\text{best-of-}n = x) = \big[(F_{<\ell} + p_\ell)^n - F_{<\ell}^n\big]\,\frac{p_x}{p_\ell},\qquad \ell = \text{level of } r(x)",
    reference=_best_of_n_probs, cases=_probs_case,
    mistakes=[
        ("you broke ties between equal rewards: a level of equal rewards wins as a whole", _probs_no_ties),
        ("within a level best-of-n keeps the base's proportions: share the level's probability by p_x / p_level",
         _probs_without_share),
        ("best-of-n keeps the *highest* reward: accumulate the mass from the lowest reward up",
         lambda probs, rewards, n: _best_of_n_probs(probs, -rewards, n)),
    ])


def _kl_penalised_advantages(proxy_scores, logp_old, logp_ref, mask, kl_coef):
    kl_seq = ((logp_old - logp_ref) * mask).sum(1)
    R = proxy_scores - kl_coef * kl_seq
    A = R - (R.sum() - R) / (len(R) - 1)
    return (A / (A.std() + 1e-8))[:, None].expand_as(logp_old)


def _advantages_case(g):
    B, T = int(randint(g, 3, 8)), 5
    mask = (torch.arange(T)[None] < randint(g, 1, T + 1, B)[:, None]).float()
    return (randn(g, B), -uniform(g, B, T, high=3.0), -uniform(g, B, T, high=3.0), mask, pick(g, [0.05, 0.5])), {}


check_kl_penalised_advantages = register(
    id="3.5.2", name="kl_penalised_advantages", stars=2, title="The RL arm's advantages against a proxy",
    statement="The RL arm optimises the proxy reward model minus a KL penalty per sentence, baselines it leave-one-out "
              "and scales it to unit spread; every token of a sentence gets the sentence's advantage.",
    contract="`kl_penalised_advantages(proxy_scores, logp_old, logp_ref, mask, kl_coef)`: `proxy_scores` (B,), token "
             "log-probabilities `logp_old`, `logp_ref` and `mask` (B, T); returns A (B, T).",
    hint="KL of a sentence = Σ_t (log π − log π_ref) over its real tokens; A / (A.std() + 1e-8); `[:, None].expand_as(logp_old)`.",
    equation=r"R_i = s_\phi(y_i) - \beta \sum_t \log\frac{\pi(y_{i,t})}{\pi_{\mathrm{ref}}(y_{i,t})},\quad A_i = \frac{R_i - b_i}{\mathrm{sd}(R - b)}",
    reference=_kl_penalised_advantages, cases=_advantages_case,
    mistakes=[
        ("sum the KL over each sentence's real tokens only (the mask)",
         lambda s, lp, lpr, m, c: _kl_penalised_advantages(s, lp, lpr, torch.ones_like(m), c)),
        ("the KL is a penalty: R = proxy − β KL", lambda s, lp, lpr, m, c: _kl_penalised_advantages(s, lp, lpr, m, -c)),
        ("scale the advantages to unit spread: divide by their standard deviation",
         lambda s, lp, lpr, m, c: _kl_penalised_advantages(s, lp, lpr, m, c) * (lambda R: (R - (R.sum() - R) / (len(R) - 1)).std() + 1e-8)(
             s - c * ((lp - lpr) * m).sum(1))),
    ])
