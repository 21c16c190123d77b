"""Exercises of survey §4, part 2 (notebooks 4.5–4.7): REINVENT's loss and the through-the-end mask (molecules);
SlateQ's decomposition and greedy slate (recommendation); the flow-matching loss and Euler sampling of a
flow policy (robotics)."""
from __future__ import annotations

import torch
import torch.nn as nn

from ..recsys.slates import greedy_slate as _greedy_slate
from ..recsys.slates import slate_value as _slate_value
from ..recsys.user_model import choice_probabilities
from ..robotics.flow_policy import euler_sample as _euler_sample
from ..robotics.flow_policy import flow_matching_loss as _flow_matching_loss
from ..sequences.masks import before_end
from ..sequences.masks import through_end as _through_end
from .harness import Seeded, pick, randint, randn, register, uniform, with_grads


# ------------------------------------------------------------------------------------------------ 4.5
def _reinvent_loss(logP_prior, logP_agent, S, sigma):
    logP_U = logP_prior + sigma * S
    return ((logP_U - logP_agent) ** 2).mean()


def _reinvent_case(g):
    B = int(randint(g, 3, 9))
    return (-uniform(g, B, low=5.0, high=40.0), -uniform(g, B, low=5.0, high=40.0), uniform(g, B), pick(g, [10.0, 60.0])), {}


check_reinvent_loss = register(
    id="4.5.1", name="reinvent_loss", stars=1, title="REINVENT's augmented likelihood",
    statement="REINVENT (Olivecrona et al. 2017) keeps the Agent near the Prior by regression, not by a KL term: the "
              "target is the Prior's log-likelihood raised by σ times the score, and the Agent's log-likelihood of each "
              "sampled molecule is pulled towards it.",
    contract="`reinvent_loss(logP_prior, logP_agent, S, sigma)`: (B,) sequence log-likelihoods under the frozen Prior "
             "(no graph) and the Agent (with its graph), scores S in [0, 1], σ > 0; returns the mean squared difference, "
             "a scalar.",
    hint="log P_U = log P_prior + σ S.",
    equation=r"\mathcal L(\theta) = \big[\log P(A)_{\mathbb U} - \log P(A)_{\mathbb A}\big]^2,\qquad \log P(A)_{\mathbb U} = \log P(A)_{\mathrm{Prior}} + \sigma S(A)",
    reference=_reinvent_loss, cases=_reinvent_case, probe=with_grads(1),
    mistakes=[
        ("the augmented likelihood *adds* σ S(A): a good molecule should become more likely",
         lambda lp, la, S, sigma: _reinvent_loss(lp, la, -S, sigma)),
        ("the loss is the *squared* difference", lambda lp, la, S, sigma: (lp + sigma * S - la).abs().mean()),
        ("average the squared differences over the batch", lambda lp, la, S, sigma: ((lp + sigma * S - la) ** 2).sum()),
    ])


def _mask_case(g):
    tokens = randint(g, 0, 4, 5, 7)  # token 0 plays the end; some rows have none
    tokens[0] = torch.clamp(tokens[0], min=1)
    return (tokens, 0), {}


check_through_end = register(
    id="4.5.2", name="through_end", stars=1, title="The tokens that count: through the first end",
    statement="A sampled SMILES string ends at its first <end> token; everything after it is padding. Its likelihood "
              "sums the log-probabilities of the tokens up to *and including* <end> (stopping is an action).",
    contract="`through_end(tokens, end)`: `tokens` (..., T) int64, `end` the end token; returns a bool mask (..., T), "
             "True up to and including the first `end` (every token of a row without one).",
    hint="A cumulative count of end tokens: a position counts while the ends *before* it number zero.",
    equation=r"m_t = \mathbb 1\big[\#\{u < t : y_u = \langle\mathrm{end}\rangle\} = 0\big]",
    reference=_through_end, cases=_mask_case,
    mistakes=[
        ("the end token is part of the sequence: include it (yours stops before it)", before_end),
        ("only the first end counts: every token after it is padding, whatever it is", lambda t, e: t != e),
        ("you marked the tokens from the end on: mark those up to and including it",
         lambda t, e: torch.cumsum((t == e).long(), -1) > 0),
    ])


# ------------------------------------------------------------------------------------------------ 4.6
def _slate_case(g):
    B, k = int(randint(g, 2, 5)), int(randint(g, 1, 4))
    return (randn(g, B, k), randn(g, B, k), randn(g, B), pick(g, [0.0, 1.0])), {}


check_slate_value = register(
    id="4.6.1", name="slate_value", stars=2, title="SlateQ's decomposition",
    statement="SlateQ (Ie et al. 2019) makes a slate's value tractable: the user consumes at most one item (or none, ∅) "
              "with the conditional-logit probability P(i | s, A), so the slate's value is the choice-weighted sum of "
              "item-wise values Q̄(s, i) — including ∅'s.",
    contract="`slate_value(slate_scores, slate_item_values, none_value, no_click_score)`: the slate's scores v_i (..., k) "
             "and item values Q̄ (..., k), Q̄(s, ∅) (...), the no-click score v_∅ (a float); returns Q(s, A) (...). "
             "`choice_probabilities(scores, no_click_score)` (rlgen_utils.recsys.user_model) returns the (..., k + 1) "
             "conditional logit with ∅ last.",
    hint="Append Q̄(s, ∅) to the item values, then the probability-weighted sum over the k + 1 options.",
    equation=r"Q(s, A) = \sum_{i \in A \cup \{\varnothing\}} P(i \mid s, A)\, \bar Q(s, i),\qquad P(i \mid s, A) = \frac{e^{v_i}}{e^{v_\varnothing} + \sum_{j \in A} e^{v_j}}",
    reference=_slate_value, cases=_slate_case,
    mistakes=[
        ("the user may click nothing: the choice includes ∅ with score v_∅, and Q̄(s, ∅) enters the sum",
         lambda v, q, q0, v0: (torch.softmax(v, -1) * q).sum(-1)),
        ("∅'s probability must be weighted by Q̄(s, ∅) too", lambda v, q, q0, v0: (choice_probabilities(v, v0)[..., :-1] * q).sum(-1)),
        ("P(i | s, A) is the conditional logit (softmax of the scores with ∅), not the raw scores",
         lambda v, q, q0, v0: (torch.cat([v, torch.full_like(v[..., :1], v0)], -1) * torch.cat([q, q0[..., None]], -1)).sum(-1)),
    ])


def _greedy_case(g):
    B, M = int(randint(g, 2, 5)), int(randint(g, 4, 9))
    return (randn(g, B, M, scale=1.5), randn(g, B, M), randn(g, B), pick(g, [0.0, 1.0]), int(randint(g, 1, 4))), {}


def _greedy_variant(exclude=True, by="value"):
    def choose(scores, item_values, none_value, no_click_score, k):
        if by == "score":
            return scores.topk(k, dim=1).indices
        w = torch.exp(scores - no_click_score)
        numerator, denominator = none_value.clone(), torch.ones_like(none_value)
        taken, slate = torch.zeros_like(scores, dtype=torch.bool), []
        for _ in range(k):
            candidate = (numerator[:, None] + w * item_values) / (denominator[:, None] + w) if by == "value" else item_values
            best = (candidate.masked_fill(taken, -torch.inf) if exclude else candidate).argmax(1)
            slate.append(best)
            taken[torch.arange(len(best)), best] = True
            numerator = numerator + (w * item_values).gather(1, best[:, None])[:, 0]
            denominator = denominator + w.gather(1, best[:, None])[:, 0]
        return torch.stack(slate, 1)
    return choose


check_greedy_slate = register(
    id="4.6.2", name="greedy_slate", stars=3, title="SlateQ's greedy slate",
    statement="Choosing the slate that maximises Q(s, A) is a fractional problem: (Σ_i w_i Q̄_i + Q̄_∅) / (Σ_i w_i + 1) "
              "with w_i = exp(v_i − v_∅). The paper's greedy builds it slot by slot, each time adding the item that "
              "raises the slate's value most — not simply the items users click most.",
    contract="`greedy_slate(scores, item_values, none_value, no_click_score, k)`: `scores`, `item_values` (B, M) for every "
             "item, `none_value` (B,), `no_click_score` a float, `k` the slate size; returns (B, k) int64 distinct items in "
             "the order they were added.",
    hint="Keep the running numerator (starting at Q̄_∅) and denominator (starting at 1); mask the items already taken "
         "with −inf before each argmax.",
    equation=r"i_{j+1} = \arg\max_{i \notin A_j} \frac{N_j + w_i \bar Q_i}{D_j + w_i},\quad N_0 = \bar Q_\varnothing,\ D_0 = 1,\ w_i = e^{v_i - v_\varnothing}",
    reference=_greedy_slate, cases=_greedy_case,
    mistakes=[
        ("greedy maximises the slate's *value*, not the click score: the top-k items by score is the myopic slate",
         _greedy_variant(by="score")),
        ("each item may appear once: mask the items already in the slate before the argmax", _greedy_variant(exclude=False)),
        ("an item's effect on the slate's value depends on its choice weight w_i too, not on Q̄_i alone",
         _greedy_variant(by="item_value")),
    ])


# ------------------------------------------------------------------------------------------------ 4.7
class LinearVelocity(nn.Module):
    """A velocity field for the cases: v(x_t, t, s) = tanh(x_t W + t w + s U), (B, A)."""

    def __init__(self, g: torch.Generator, action_dim: int, state_dim: int):
        super().__init__()
        self.action_dim, self.state_dim = action_dim, state_dim
        self.W = nn.Parameter(randn(g, action_dim, action_dim))
        self.w = nn.Parameter(randn(g, action_dim))
        self.U = nn.Parameter(randn(g, max(state_dim, 1), action_dim))

    def velocity(self, x_t, t, state=None):
        t = t.expand(len(x_t)) if t.dim() == 0 else t
        out = x_t @ self.W + t[:, None] * self.w
        return torch.tanh(out + (state @ self.U if self.state_dim else 0.0))


def _flow_case(g, actions_given=True):
    A, S, B = int(randint(g, 1, 4)), pick(g, [0, 2]), int(randint(g, 3, 7))
    policy = LinearVelocity(g, A, S)
    state = randn(g, B, S) if S else None
    seed = Seeded(int(randint(g, 0, 10**6)))
    if actions_given:
        return (policy, randn(g, B, A)), dict(state=state, generator=seed)
    return (policy, B), dict(state=state, steps=int(randint(g, 1, 6)), generator=seed)


def _flow_variant(target_sign=1.0, reversed_path=False, mean_dims=False):
    def loss(policy, actions, state=None, generator=None):
        x1 = actions
        x0 = torch.randn(actions.shape, generator=generator)
        t = torch.rand(len(actions), generator=generator)
        x_t = t[:, None] * x0 + (1 - t[:, None]) * x1 if reversed_path else (1 - t[:, None]) * x0 + t[:, None] * x1
        err = (policy.velocity(x_t, t, state) - target_sign * (x1 - x0)) ** 2
        return err.mean() if mean_dims else err.sum(1).mean()
    return loss


check_flow_matching_loss = register(
    id="4.7.1", name="flow_matching_loss", stars=2, title="The flow-matching target",
    statement="Conditional flow matching (Lipman et al. 2023; rectified flow) trains a velocity field by regression: "
              "pick a point on the straight line from noise x₀ to an expert action x₁ at a random time t, and regress "
              "the network's velocity there onto the line's velocity.",
    contract="`flow_matching_loss(policy, actions, state=None, generator=None)`: `policy.velocity(x_t, t, state)` returns "
             "(B, A); `actions` (B, A) = x₁. Draw `x0 = torch.randn(actions.shape, generator=generator)` first, then "
             "`t = torch.rand(len(actions), generator=generator)` (each moved to `actions.device`); returns the mean over "
             "the batch of the squared error summed over the action dimensions.",
    hint="x_t = (1 − t) x₀ + t x₁; the target is x₁ − x₀.",
    equation=r"\mathcal L_{\mathrm{FM}}(\theta) = \mathbb E_{t, x_0, x_1} \big\| v_\theta(x_t, t, s) - (x_1 - x_0) \big\|^2,\quad x_t = (1 - t)\,x_0 + t\,x_1",
    reference=_flow_matching_loss, cases=_flow_case,
    mistakes=[
        ("the line from noise x₀ to the action x₁ has velocity x₁ − x₀, not x₀ − x₁", _flow_variant(target_sign=-1.0)),
        ("x_t = (1 − t) x₀ + t x₁: t = 0 is the noise, t = 1 the action", _flow_variant(reversed_path=True)),
        ("sum the squared error over the action dimensions, then average over the batch", _flow_variant(mean_dims=True)),
    ])


def _euler_variant(time_of=lambda k, dt: k * dt, scale_dt=True):
    def sample(policy, n, state=None, steps=10, generator=None, x0=None):
        x = torch.randn((n, policy.action_dim), generator=generator) if x0 is None else x0
        dt = 1.0 / steps
        for k in range(steps):
            x = x + (dt if scale_dt else 1.0) * policy.velocity(x, torch.full((n,), time_of(k, dt)), state)
        return x
    return sample


check_euler_sample = register(
    id="4.7.2", name="euler_sample", stars=1, title="Sampling a flow policy with Euler steps",
    statement="A flow policy acts by integrating its velocity field from noise (t = 0) to an action (t = 1). With K "
              "Euler steps of size 1/K the chain is differentiable, so a critic's gradient can reach the policy through it.",
    contract="`euler_sample(policy, n, state=None, steps=10, generator=None, x0=None)`: `policy.velocity(x, t, state)` with "
             "t (n,); `policy.action_dim`; start from `x0`, or from `torch.randn((n, policy.action_dim), "
             "generator=generator)` moved to the policy's device when x0 is None; returns the actions (n, action_dim).",
    hint="Step k evaluates the velocity at t = k/steps, the start of the step.",
    equation=r"x_{k+1} = x_k + \Delta t\; v_\theta(x_k, k\Delta t, s),\qquad \Delta t = 1/K,\; x_0 \sim \mathcal N(0, I)",
    reference=_euler_sample, cases=lambda g: _flow_case(g, actions_given=False),
    mistakes=[
        ("step k evaluates the velocity at t = k · dt, the start of the step, not its end",
         _euler_variant(time_of=lambda k, dt: (k + 1) * dt)),
        ("each step moves by dt · v, not v", _euler_variant(scale_dt=False)),
        ("integrate from t = 0 (noise) to t = 1 (an action), not backwards", _euler_variant(time_of=lambda k, dt: 1 - k * dt)),
    ])
