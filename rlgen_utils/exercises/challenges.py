"""Exercises of survey §3, part 1 (notebooks 3.1–3.3): a leave-one-out baseline, tempered likelihoods and the
KL-shaped loss (peaked distributions); UCB1, Thompson sampling and trajectory balance (exploration); reward to go
and the exact value of a prefix (sparse rewards)."""
from __future__ import annotations

import numpy as np
import torch

from ..datasets.toy_language import VOCAB, content_mask
from ..sequences.masks import before_end
from .harness import Seeded, pick, randint, randn, register, uniform, with_grads


# ------------------------------------------------------------------------------------------------ 3.1
def _leave_one_out_baseline(R):
    return (R.sum() - R) / (len(R) - 1)


check_leave_one_out_baseline = register(
    id="3.1.1", name="leave_one_out_baseline", stars=1, title="A leave-one-out baseline",
    statement="Each sample's baseline is the mean reward of the *other* samples of its batch (RLOO): independent of the "
              "sample's own action, so the gradient stays unbiased, and with no critic to train.",
    contract="`leave_one_out_baseline(R)`: `R` (B,) rewards, B ≥ 2; returns the baselines b (B,).",
    hint="Σ_j R_j − R_i is the sum of the others.",
    equation=r"b_i = \frac{1}{B - 1}\sum_{j \ne i} R_j",
    reference=_leave_one_out_baseline, cases=lambda g: ((randn(g, int(randint(g, 2, 9))),), {}),
    mistakes=[
        ("your baseline includes the sample's own reward (the batch mean): leave it out", lambda R: R.mean().expand_as(R)),
        ("divide by B − 1, the number of *other* samples", lambda R: (R.sum() - R) / len(R)),
        ("return the baseline b_i, not the advantage R_i − b_i", lambda R: R - (R.sum() - R) / (len(R) - 1)),
    ])


class FixedLogits:
    """A token policy for the cases: `logits(y)` (B, T, V) from a fixed table indexed by position and previous token."""

    def __init__(self, table: torch.Tensor):
        self.table = table  # (T, V, V)

    def logits(self, y: torch.Tensor) -> torch.Tensor:
        previous = torch.cat([torch.zeros_like(y[:, :1]), y[:, :-1]], 1)
        return self.table[torch.arange(y.shape[1])[None], previous]


def _tempered_log_prob(policy, y, temperature=1.0):
    logp = torch.log_softmax(policy.logits(y) / temperature, -1).gather(-1, y.unsqueeze(-1)).squeeze(-1)
    return (logp * content_mask(y)).sum(1)


def _tempered_case(g):
    T = 6
    return (FixedLogits(randn(g, T, VOCAB, VOCAB, scale=2.0)), randint(g, 0, VOCAB, 5, T)), \
        dict(temperature=pick(g, [0.5, 1.0, 2.0]))


def _tempered_variant(scale="divide", mask="through", after_softmax=False):
    def log_prob(policy, y, temperature=1.0):
        logits = policy.logits(y)
        logits = logits * temperature if scale == "multiply" else logits if after_softmax else logits / temperature
        logp = torch.log_softmax(logits, -1) / (temperature if after_softmax else 1.0)
        logp = logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
        m = content_mask(y) if mask == "through" else before_end(y, 0).float() if mask == "before" else 1.0
        return (logp * m).sum(1)
    return log_prob


check_tempered_log_prob = register(
    id="3.1.2", name="tempered_log_prob", stars=2, title="The exact log-probability at temperature τ",
    statement="Sampling at temperature τ draws each token from softmax(logits/τ): τ < 1 sharpens the distribution. "
              "Write the exact log-probability of whole sentences under the tempered policy, token by token up to "
              "and including the end mark (emitting it is an action too).",
    contract="`tempered_log_prob(policy, y, temperature=1.0)`: `policy.logits(y)` returns (B, T, V) teacher-forced logits, "
             "`y` (B, T) int64 toy-language tokens; returns (B,). `content_mask(y)` (rlgen_utils.datasets.toy_language) "
             "marks the tokens through the first end mark.",
    hint="log softmax(logits / τ), gathered at y, masked, summed over t.",
    equation=r"\log \pi_\tau(y) = \sum_{t \le |y|} \log \mathrm{softmax}\big(\ell_t / \tau\big)_{y_t}",
    reference=_tempered_log_prob, cases=_tempered_case,
    mistakes=[
        ("divide the logits by τ (τ < 1 sharpens); you multiplied", _tempered_variant(scale="multiply")),
        ("sum only the tokens up to and including the end mark (content_mask): the rest is padding",
         _tempered_variant(mask="none")),
        ("temper the logits before the softmax: log softmax(ℓ/τ), not log softmax(ℓ)/τ", _tempered_variant(after_softmax=True)),
        ("the end mark is an action too: include it (content_mask, not before_end)", _tempered_variant(mask="before")),
    ])


def _kl_shaped_loss(logp, logp_ref, r, H, beta, alpha):
    R = r - beta * (logp.detach() - logp_ref)
    b = (R.sum() - R) / (len(R) - 1)
    A = R - b
    return -(A * logp).mean() - alpha * H.mean()


def _shaped_case(g):
    B = int(randint(g, 3, 8))
    logp, logp_ref = -uniform(g, B, low=1.0, high=8.0), -uniform(g, B, low=1.0, high=8.0)
    return (logp, logp_ref, randn(g, B), uniform(g, B, high=5.0), pick(g, [0.0, 0.1, 1.0]), pick(g, [0.0, 0.05])), {}


check_kl_shaped_loss = register(
    id="3.1.3", name="kl_shaped_loss", stars=2, title="REINFORCE on a KL-shaped reward, with an entropy bonus",
    statement="The two remedies of §3.1 against a peaked policy, in one loss: shape the reward with the KL to the "
              "reference, R = r − β log(π/π_ref) (a constant of the gradient), baseline it leave-one-out, and add an "
              "entropy bonus α H that pushes the policy to stay spread.",
    contract="`kl_shaped_loss(logp, logp_ref, r, H, beta, alpha)`: (B,) tensors: `logp` = log π_θ(y_i) with its graph, "
             "`logp_ref`, rewards `r`, `H` = Σ_t entropy along y_i (with its graph); returns a scalar to minimise.",
    hint="R_i = r_i − β (log π(y_i) − log π_ref(y_i)) with log π detached; A_i = R_i − b_i; loss = −mean(A · log π) − α mean(H).",
    equation=r"\mathcal L = -\frac1B\sum_i (R_i - b_i)\log\pi_\theta(y_i) - \alpha\,\frac1B\sum_i H_i,\quad R_i = r_i - \beta\log\frac{\pi_\theta(y_i)}{\pi_{\mathrm{ref}}(y_i)}",
    reference=_kl_shaped_loss, cases=_shaped_case, probe=with_grads(0, 3),
    mistakes=[
        ("the KL shaping is part of the reward: detach log π inside R, or β adds a second, wrong gradient",
         lambda lp, lpr, r, H, beta, alpha: _kl_shaped_loss(lp, lpr, r - beta * (lp - lp.detach()), H, beta, alpha)),
        ("the entropy *bonus* is subtracted from the loss: −α H raises the entropy",
         lambda lp, lpr, r, H, beta, alpha: _kl_shaped_loss(lp, lpr, r, -H, beta, alpha)),
        ("use the leave-one-out baseline: the batch mean includes the sample's own reward",
         lambda lp, lpr, r, H, beta, alpha: -((r - beta * (lp.detach() - lpr)) - (r - beta * (lp.detach() - lpr)).mean()).mul(lp).mean()
         - alpha * H.mean()),
    ])


# ------------------------------------------------------------------------------------------------ 3.2
def _bandit_counts(g):
    N = randint(g, 1, 30, 4, 5).double().numpy()
    S = np.floor(N * uniform(g, 4, 5).double().numpy())
    return S, N


def _ucb1_index(S, N, t):
    return S / N + np.sqrt(2 * np.log(t) / N)


check_ucb1_index = register(
    id="3.2.1", name="ucb1_index", stars=1, title="UCB1's index",
    statement="UCB1 (Auer et al. 2002) pulls the arm with the highest optimistic estimate: its mean reward plus a bonus "
              "that shrinks as the arm is pulled and grows slowly with the total number of pulls.",
    contract="`ucb1_index(S, N, t)`: numpy arrays `S` (successes) and `N` (pulls, all ≥ 1) of shape (runs, K), `t` the "
             "number of pulls so far; returns the indices (runs, K).",
    hint="mean + √(2 ln t / N_a).",
    equation=r"\mathrm{UCB}_a(t) = \frac{S_a}{N_a} + \sqrt{\frac{2 \ln t}{N_a}}",
    reference=_ucb1_index, cases=lambda g: (_bandit_counts(g) + (int(randint(g, 10, 10**4)),), {}),
    mistakes=[
        ("the bonus is √(2 ln t / N_a): you left out the 2", lambda S, N, t: S / N + np.sqrt(np.log(t) / N)),
        ("ln t counts all pulls so far, not the arm's own pulls", lambda S, N, t: S / N + np.sqrt(2 * np.log(N) / N)),
        ("the bonus is a square root: √(2 ln t / N_a)", lambda S, N, t: S / N + 2 * np.log(t) / N),
    ])


def _thompson_draw(S, N, rng):
    return rng.beta(1 + S, 1 + N - S)


check_thompson_draw = register(
    id="3.2.2", name="thompson_draw", stars=1, title="Thompson sampling's draw",
    statement="Thompson sampling keeps a Beta posterior over each Bernoulli arm's mean (uniform prior) and pulls the arm "
              "whose *draw* from its posterior is highest: it explores exactly as much as it is uncertain.",
    contract="`thompson_draw(S, N, rng)`: numpy arrays `S`, `N` (runs, K) of successes and pulls, `rng` a "
             "numpy Generator; returns one posterior draw per arm and run (runs, K) from a single `rng.beta(a, b)` call.",
    hint="Beta(1 + successes, 1 + failures).",
    equation=r"\theta_a \sim \mathrm{Beta}(1 + S_a,\ 1 + N_a - S_a),\qquad a_t = \arg\max_a \theta_a",
    reference=_thompson_draw,
    cases=lambda g: (_bandit_counts(g) + (Seeded(int(randint(g, 0, 10**6)), "numpy"),), {}),
    mistakes=[
        ("successes raise α = 1 + S and failures β = 1 + N − S: yours are swapped",
         lambda S, N, rng: rng.beta(1 + N - S, 1 + S)),
        ("β counts the failures, 1 + N − S, not the pulls", lambda S, N, rng: rng.beta(1 + S, 1 + N)),
        ("Thompson sampling draws from the posterior: its mean (1 + S)/(2 + N) never explores",
         lambda S, N, rng: (1 + S) / (2 + N)),
    ])


def _trajectory_balance_loss(log_Z, log_PF, log_R, log_PB):
    return ((log_Z + log_PF - log_R - log_PB) ** 2).mean()


def _balance_case(g):
    B = int(randint(g, 3, 8))
    return (randn(g, 1)[0], -uniform(g, B, high=6.0), randn(g, B), -uniform(g, B, high=1.0) * pick(g, [0.0, 1.0])), {}


check_trajectory_balance_loss = register(
    id="3.2.3", name="trajectory_balance_loss", stars=2, title="Trajectory balance",
    statement="A GFlowNet samples x with probability proportional to R(x) when, along every trajectory, the forward "
              "flow matches the backward one: Z · P_F(τ) = R(x) · P_B(τ|x) (Malkin et al. 2022). Train log Z and the "
              "policy on the squared log-ratio.",
    contract="`trajectory_balance_loss(log_Z, log_PF, log_R, log_PB)`: `log_Z` a learned scalar, `log_PF` (B,) = Σ_t log "
             "π_θ(x_t | x_<t) with its graph, `log_R` (B,), `log_PB` (B,); returns the mean squared residual, a scalar.",
    hint="One residual per trajectory: log Z + log P_F − log R − log P_B.",
    equation=r"\mathcal L_{\mathrm{TB}}(\tau) = \Big(\log \frac{Z\, P_F(\tau)}{R(x)\, P_B(\tau | x)}\Big)^2",
    reference=_trajectory_balance_loss, cases=_balance_case, probe=with_grads(0, 1),
    mistakes=[
        ("the balance is Z · P_F(τ) = R(x) · P_B(τ|x): the residual is log Z + log P_F − log R − log P_B",
         lambda lz, pf, lr, pb: ((lz + pf + lr - pb) ** 2).mean()),
        ("the loss is the *squared* residual", lambda lz, pf, lr, pb: (lz + pf - lr - pb).abs().mean()),
        ("log Z is learned: do not detach it", lambda lz, pf, lr, pb: ((lz.detach() + pf - lr - pb) ** 2).mean()),
    ])


# ------------------------------------------------------------------------------------------------ 3.3
def _credit_process(policy, y, target, g):
    r = (y == target).float()
    return r.flip(1).cumsum(1).flip(1)


def _process_case(g):
    L = int(randint(g, 3, 9))
    return (None, randint(g, 0, 2, 5, L), randint(g, 0, 2, L), None), {}


check_credit_process = register(
    id="3.3.1", name="credit_process", stars=1, title="Dense credit: reward to go",
    statement="With a dense, per-token reward r_t = 1[y_t = y*_t], each token is credited with the rewards from its "
              "position to the end — not those before it, which it could not have caused.",
    contract="`credit_process(policy, y, target, g)`: `y` (B, L) int64 strings, `target` (L,) the right string "
             "(`policy` and `g` are unused here); returns Ψ (B, L) floats, Ψ_t = Σ_{u≥t} r_u.",
    hint="A reversed cumulative sum: flip, cumsum, flip back.",
    equation=r"\Psi_t = \sum_{u \ge t} r_u,\qquad r_u = \mathbb 1[y_u = y^*_u]",
    reference=_credit_process, cases=_process_case,
    mistakes=[
        ("Ψ_t sums the rewards from t on (Σ_{u≥t}); yours sums those up to t", lambda p, y, t, g: (y == t).float().cumsum(1)),
        ("include the token's own reward r_t: Σ_{u≥t}, not Σ_{u>t}",
         lambda p, y, t, g: (y == t).float().flip(1).cumsum(1).flip(1) - (y == t).float()),
        ("each position gets the rewards from t on, not the whole string's",
         lambda p, y, t, g: (y == t).float().sum(1, keepdim=True).expand_as(y).float()),
    ])


def _exact_prefix_q(y, target, logp_target):
    future = logp_target.flip(0).cumsum(0).flip(0) - logp_target  # Σ_{u>t} log π(y*_u | y*_<u)
    return (y == target).long().cumprod(0) * future.exp()


def _prefix_case(g):
    L = int(randint(g, 4, 9))
    target = randint(g, 0, 2, L)
    y = torch.where(torch.rand(L, generator=g) < 0.2, 1 - target, target)
    return (y, target, -uniform(g, L, low=0.01, high=1.5)), {}


check_exact_prefix_q = register(
    id="3.3.2", name="exact_prefix_q", stars=3, title="The exact value of a prefix",
    statement="With the terminal reward R(y) = 1[y = y*], the value of a prefix is the chance that the policy completes "
              "it into y*: zero once any token so far is wrong, else the product of the policy's probabilities of the "
              "remaining right tokens. It is what the Monte-Carlo rollouts estimate.",
    contract="`exact_prefix_q(y, target, logp_target)`: `y`, `target` (L,) int64, `logp_target` (L,) = log π(y*_u | y*_<u); "
             "returns Q (L,), Q_t = Q(y_{1:t}) for the prefix through position t.",
    hint="Σ_{u>t} log π = (reverse cumsum) − own term; a cumulative product of the matches says whether the prefix is right.",
    equation=r"Q(y_{1:t}) = \mathbb 1[y_{1:t} = y^*_{1:t}]\ \prod_{u > t} \pi_\theta(y^*_u \mid y^*_{<u})",
    reference=_exact_prefix_q, cases=_prefix_case,
    mistakes=[
        ("Q(y_{1:t}) is given the prefix through t: multiply the probabilities of the *later* positions u > t only",
         lambda y, t, lp: (y == t).long().cumprod(0) * lp.flip(0).cumsum(0).flip(0).exp()),
        ("a prefix is right only if every token so far is: use a cumulative product of the matches",
         lambda y, t, lp: (y == t).long() * (lp.flip(0).cumsum(0).flip(0) - lp).exp()),
        ("exponentiate: Q is a probability, not a log-probability",
         lambda y, t, lp: (y == t).long().cumprod(0) * (lp.flip(0).cumsum(0).flip(0) - lp)),
    ])
