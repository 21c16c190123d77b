"""Exercises of survey §2.2 (notebooks 2.2a–2.2d): new objectives as rewards. The KL-penalised reward and the
per-token rewards of RLHF; length and repetition rules; the KL-regularised optimum, the k1/k2/k3 estimators and
an exact KL; the Bradley–Terry and DPO losses and the exact KL of best-of-n."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..rewards.rules import LengthReward, RepetitionPenalty
from ..rl.kl import best_of_n_kl, best_of_n_kl_exact as _best_of_n_kl_exact
from ..rl.kl import kl_estimates as _kl_estimates
from ..rl.kl import kl_penalised_reward as _kl_penalised_reward
from ..rl.kl import kl_regularised_optimum as _kl_regularised_optimum
from ..rl.preferences import bradley_terry_loss as _bradley_terry_loss
from ..rl.preferences import dpo_loss as _dpo_loss
from ..sequences.masks import before_end
from .harness import pick, randint, randn, register, uniform, with_grads


# ------------------------------------------------------------------------------------------------ 2.2a
def _logps(g, *shape):
    return -uniform(g, *shape, low=0.05, high=3.0), -uniform(g, *shape, low=0.05, high=3.0)


def _penalty_case(g):
    logp, logp_ref = _logps(g, 6, 4)
    return (randn(g, 6, 4), logp, logp_ref, pick(g, [0.02, 0.1, 1.0])), {}


check_kl_penalised_reward = register(
    id="2.2a.1", name="kl_penalised_reward", stars=1, title="The KL-penalised reward",
    statement="RLHF keeps the policy near its reference by paying a penalty β log(π/π_ref) for every sample: the "
              "expectation of the penalised reward is E_π[r] − β KL(π‖π_ref). The penalty is part of the *reward*: "
              "the policy gradient treats it as a constant.",
    contract="`kl_penalised_reward(reward, logp, logp_ref, beta)`: tensors of one shape (per sequence or per token); "
             "returns the penalised reward, same shape, with no gradient flowing into `logp` through the penalty.",
    hint="r − β (log π − log π_ref), the bracket detached.",
    equation=r"R(x) = r(x) - \beta \log\frac{\pi_\theta(x)}{\pi_{\mathrm{ref}}(x)},\qquad \mathbb E_{\pi_\theta}[R] = \mathbb E[r] - \beta\,\mathrm{KL}(\pi_\theta\|\pi_{\mathrm{ref}})",
    reference=_kl_penalised_reward, cases=_penalty_case, probe=with_grads(1),
    mistakes=[
        ("the penalty is subtracted: r − β (log π − log π_ref); you added it",
         lambda r, lp, lpr, b: r + b * (lp - lpr).detach()),
        ("the penalty sends gradient into log π: detach it, it is part of the reward",
         lambda r, lp, lpr, b: r - b * (lp - lpr)),
    ])


def _token_rewards(logp, logp_ref, mask, scores, beta):
    rows, last = torch.arange(len(mask)), mask.sum(1).long() - 1
    rewards = -beta * (logp - logp_ref) * mask
    rewards[rows, last] += scores
    dones = torch.zeros_like(rewards)
    dones[rows, last] = 1.0
    return rewards, dones


def _token_rewards_case(g):
    B, T = 5, 6
    lengths = randint(g, 1, T + 1, B)
    mask = (torch.arange(T)[None] < lengths[:, None]).float()
    logp, logp_ref = _logps(g, B, T)
    return (logp, logp_ref, mask, randn(g, B), pick(g, [0.05, 0.5])), {}


def _token_rewards_variant(last_column=False, mask_kl=True, every_token=False):
    def rewards_of(logp, logp_ref, mask, scores, beta):
        B, T = mask.shape
        last = torch.full((B,), T - 1) if last_column else mask.sum(1).long() - 1
        rewards = -beta * (logp - logp_ref) * (mask if mask_kl else 1.0)
        if every_token:
            rewards = rewards + scores[:, None] * mask
        else:
            rewards[torch.arange(B), last] += scores
        dones = torch.zeros_like(rewards)
        dones[torch.arange(B), last] = 1.0
        return rewards, dones
    return rewards_of


check_rlhf_token_rewards = register(
    id="2.2a.2", name="rlhf_token_rewards", stars=2, title="RLHF's per-token rewards",
    statement="`sequence_ppo_step` turns one score per sentence into per-token rewards for GAE: every token pays its "
              "KL penalty −β (log π − log π_ref), and the sentence's last real token also receives the score, where "
              "the episode ends. Then Σ_t r_t = score − β log(π(y)/π_ref(y)).",
    contract="`rlhf_token_rewards(logp, logp_ref, mask, scores, beta)`: `logp`, `logp_ref`, `mask` (B, T) (mask: 1.0 on "
             "the real tokens, a prefix of each row), `scores` (B,); returns (rewards (B, T), dones (B, T)) with done = 1.0 "
             "at each row's last real token.",
    hint="The last real token of row b is at index mask[b].sum() − 1.",
    equation=r"r_t = -\beta \log\frac{\pi_\theta(y_t|y_{<t})}{\pi_{\mathrm{ref}}(y_t|y_{<t})} + \mathbb 1[t = |y|]\; \mathrm{score}(y)",
    reference=_token_rewards, cases=_token_rewards_case,
    mistakes=[
        ("the score goes on each row's last *real* token (mask.sum(1) − 1), not the last column",
         _token_rewards_variant(last_column=True)),
        ("the KL penalty must be zero on padded tokens: multiply it by the mask", _token_rewards_variant(mask_kl=False)),
        ("the score is paid once, at the end: Σ_t r_t = score − β KL, not |y| · score",
         _token_rewards_variant(every_token=True)),
    ])


# ------------------------------------------------------------------------------------------------ 2.2b
def _length_reward(samples, eos, target):
    return LengthReward(eos, target)(samples)


def _repetition_penalty(samples, eos, n=2):
    return RepetitionPenalty(eos, n)(samples)


def _rule_case(g):
    samples = randint(g, 0, 5, 6, 9)  # token 0 is the end mark: most rows end somewhere
    return (samples, 0), dict(target=int(randint(g, 2, 7)))


check_length_reward = register(
    id="2.2b.1", name="length_reward", stars=1, title="A length rule",
    statement="A rule against terse outputs: the reward grows with the sentence's length up to a target and stays "
              "flat after it. Only the tokens before the first end mark count: what follows is padding.",
    contract="`length_reward(samples, eos, target)`: `samples` (B, T) int64 tokens, `eos` the end token, `target` a "
             "positive int; returns (B,) floats min(length, target) / target.",
    hint="`rlgen_utils.sequences.masks.before_end(samples, eos)` marks the tokens before the first end.",
    equation=r"r_{\text{len}}(y) = \min(|y|, L^*) / L^*",
    reference=_length_reward, cases=_rule_case,
    mistakes=[
        ("count only the tokens before the first end mark: the tokens after it are padding",
         lambda s, eos, target: (s != eos).sum(-1).float().clamp(max=target) / target),
        ("cap the length at `target`: the rule stops paying for longer sentences",
         lambda s, eos, target: before_end(s, eos).sum(-1).float() / target),
        ("the end mark itself is not counted", lambda s, eos, target: (before_end(s, eos).sum(-1).float() + (s == eos).any(-1).float())
         .clamp(max=target) / target),
    ])


def _repetition_python(samples, eos, n=2, count_after_end=False, once_per_gram=False, sign=-1.0):
    out = []
    for row in samples.tolist():
        words = row if count_after_end else row[:row.index(eos)] if eos in row else row
        grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        counts = {}
        for gram in grams:
            counts[gram] = counts.get(gram, 0) + 1
        repeats = sum(1 for c in counts.values() if c > 1) if once_per_gram else sum(c - 1 for c in counts.values())
        out.append(sign * repeats / max(1, len(grams)))
    return torch.tensor(out)


def _repetition_case(g):
    samples = randint(g, 1, 4, 6, 10)  # three words: n-grams repeat
    ends = randint(g, 3, 11, 6)
    for b, e in enumerate(ends.tolist()):
        if e < 10:
            samples[b, e] = 0
    return (samples, 0), dict(n=int(randint(g, 1, 3)))


check_repetition_penalty = register(
    id="2.2b.2", name="repetition_penalty", stars=2, title="A repetition rule",
    statement="Penalise loops: the share of a sentence's n-grams that repeat an earlier n-gram, negated (0 when no "
              "n-gram repeats, towards −1 for a loop). Only the tokens before the first end mark count.",
    contract="`repetition_penalty(samples, eos, n=2)`: `samples` (B, T) int64, `eos` the end token; returns (B,) floats "
             "−(repeated n-grams / n-grams), 0 for a sentence with no n-gram. Loops over rows are fine.",
    hint="An n-gram that occurs k times counts k − 1 repeats; cut each row at its first `eos`.",
    equation=r"r_{\text{rep}}(y) = -\frac{\#\{\text{n-grams of } y\} - \#\{\text{distinct n-grams of } y\}}{\#\{\text{n-grams of } y\}}",
    reference=_repetition_penalty, cases=_repetition_case,
    mistakes=[
        ("count only the n-grams before the first end mark", lambda s, eos, n=2: _repetition_python(s, eos, n, count_after_end=True)),
        ("an n-gram that occurs k times counts k − 1 repeats, not one",
         lambda s, eos, n=2: _repetition_python(s, eos, n, once_per_gram=True)),
        ("the rule is a penalty: −(repeated / all), negative for a loop", lambda s, eos, n=2: _repetition_python(s, eos, n, sign=1.0)),
    ])


# ------------------------------------------------------------------------------------------------ 2.2c
def _optimum_case(g):
    K = int(randint(g, 4, 12))
    return (torch.log_softmax(randn(g, K, scale=2.0), -1), randn(g, K), pick(g, [0.1, 0.5, 2.0])), {}


check_kl_regularised_optimum = register(
    id="2.2c.1", name="kl_regularised_optimum", stars=1, title="The optimum of the KL-regularised objective",
    statement="max_π E_π[r] − β KL(π‖π_ref) has a closed-form maximiser over an enumerated set of outputs: the "
              "reference reweighted by exp(r/β) and renormalised. Return its log-probabilities.",
    contract="`kl_regularised_optimum(logp_ref, reward, beta)`: `logp_ref` (K,) log π_ref of every output, `reward` (K,), "
             "`beta` > 0; returns log π* (K,), normalised.",
    hint="Normalise in log space with `torch.log_softmax`.",
    equation=r"\pi^*(x) = \frac{\pi_{\mathrm{ref}}(x)\, e^{r(x)/\beta}}{Z},\qquad Z = \sum_x \pi_{\mathrm{ref}}(x)\, e^{r(x)/\beta}",
    reference=_kl_regularised_optimum, cases=_optimum_case,
    mistakes=[
        ("the reward is divided by β: π* ∝ π_ref exp(r/β), not exp(β r)",
         lambda lp, r, b: torch.log_softmax(lp + b * r, -1)),
        ("normalise: log π* = log π_ref + r/β − log Z", lambda lp, r, b: lp + r / b),
        ("higher reward must mean more mass: exp(+r/β)", lambda lp, r, b: torch.log_softmax(lp - r / b, -1)),
    ])


def _estimates_case(g):
    logp, logp_ref = _logps(g, 5, 4)
    return (logp, logp_ref), {}


def _estimates_variant(k1_sign=1.0, k2_half=True, k3_inverted=False):
    def estimates(logp, logp_ref):
        log_r = logp_ref - logp
        k3 = (torch.expm1(-log_r) + log_r) if k3_inverted else torch.expm1(log_r) - log_r
        return {"k1": -k1_sign * log_r, "k2": (0.5 if k2_half else 1.0) * log_r ** 2, "k3": k3}
    return estimates


check_kl_estimates = register(
    id="2.2c.2", name="kl_estimates", stars=2, title="The k1, k2, k3 estimators of KL",
    statement="From samples of π only, estimate KL(π‖π_ref) per sample with r = π_ref(x)/π(x) (Schulman's note): "
              "k1 = −log r is unbiased but often negative; k2 = ½(log r)² is biased with low variance; "
              "k3 = (r − 1) − log r is unbiased and never negative.",
    contract="`kl_estimates(logp, logp_ref)`: tensors of one shape, log π and log π_ref of samples of π; returns a dict "
             "{\"k1\", \"k2\", \"k3\"} of tensors of that shape.",
    hint="Work with log r = logp_ref − logp; `torch.expm1(log_r)` is r − 1 without cancellation.",
    equation=r"k_1 = -\log r,\quad k_2 = \tfrac12 (\log r)^2,\quad k_3 = (r - 1) - \log r,\qquad r = \frac{\pi_{\mathrm{ref}}(x)}{\pi(x)}",
    reference=_kl_estimates, cases=_estimates_case,
    mistakes=[
        ("k1 = −log r = log π − log π_ref: your k1 has the sign flipped", _estimates_variant(k1_sign=-1.0)),
        ("k2 = ½ (log r)²: you left out the ½", _estimates_variant(k2_half=False)),
        ("k3 uses r = π_ref/π: (r − 1) − log r; yours inverts the ratio", _estimates_variant(k3_inverted=True)),
    ])


def _exact_kl(logp, logq):
    logp, logq = logp.double(), logq.double()
    return float(torch.where(torch.isneginf(logp), 0.0, logp.exp() * (logp - logq)).sum())


def _exact_kl_case(g):
    K = int(randint(g, 4, 10))
    logits = randn(g, K, scale=2.0)
    logits[torch.rand(K, generator=g) < 0.3] = -math.inf  # outputs with probability 0 under p
    logits[0] = 0.0
    return (torch.log_softmax(logits, -1), torch.log_softmax(randn(g, K, scale=2.0), -1)), {}


check_kl = register(
    id="2.2c.3", name="kl", stars=1, title="An exact KL over an enumeration",
    statement="Over the 64 outputs this notebook enumerates, KL is an exact sum. Some outputs have probability 0 under "
              "p: their terms are 0 (0 · log 0 = 0), not the nan that 0 · (−∞) gives in floating point.",
    contract="`kl(logp, logq)`: (K,) log-probabilities of two distributions over the same outputs (logp may hold −inf); "
             "returns KL(p‖q) as a Python float, summed in float64.",
    hint="`torch.where(torch.isneginf(logp), 0.0, logp.exp() * (logp - logq))`.",
    equation=r"\mathrm{KL}(p\|q) = \sum_x p(x) \big(\log p(x) - \log q(x)\big)",
    reference=_exact_kl, cases=_exact_kl_case,
    mistakes=[
        ("0 · log 0 must count as 0: where p(x) = 0 the term is 0, not nan",
         lambda lp, lq: float((lp.double().exp() * (lp.double() - lq.double())).sum())),
        ("KL(p ‖ q) weights by p: Σ p (log p − log q); you computed KL(q ‖ p)",
         lambda lp, lq: _exact_kl(lq, lp)),
        ("weight each term by p(x): Σ_x p(x) (log p(x) − log q(x))",
         lambda lp, lq: float(torch.where(torch.isneginf(lp), 0.0, lp.double() - lq.double()).sum())),
    ])


# ------------------------------------------------------------------------------------------------ 2.2d
check_bradley_terry_loss = register(
    id="2.2d.1", name="bradley_terry_loss", stars=1, title="The Bradley–Terry loss of a reward model",
    statement="Under Bradley–Terry, P(y_w ≻ y_l) = σ(r(y_w) − r(y_l)). A reward model is fitted to preference pairs by "
              "the negative log-likelihood of the annotators' choices.",
    contract="`bradley_terry_loss(reward_chosen, reward_rejected)`: (B,) scores of the chosen and rejected responses; "
             "returns the mean loss, a scalar.",
    hint="`F.logsigmoid` is the stable log σ.",
    equation=r"\mathcal L = -\mathbb E\big[\log \sigma\big(r(y_w) - r(y_l)\big)\big]",
    reference=_bradley_terry_loss, probe=with_grads(0, 1),
    cases=lambda g: ((randn(g, 7, scale=3.0), randn(g, 7, scale=3.0)), {}),
    mistakes=[
        ("the chosen response should score higher: σ(r_w − r_l), not σ(r_l − r_w)",
         lambda rc, rr: -F.logsigmoid(rr - rc).mean()),
        ("the loss is the negative *log*-likelihood: −log σ(·), not −σ(·)", lambda rc, rr: -torch.sigmoid(rc - rr).mean()),
    ])


def _dpo_case(g):
    a, b = _logps(g, 6)
    c, d = _logps(g, 6)
    return (a * 4, b * 4, c * 4, d * 4, pick(g, [0.1, 0.5])), {}


check_dpo_loss = register(
    id="2.2d.2", name="dpo_loss", stars=2, title="Direct preference optimisation",
    statement="DPO (Rafailov et al. 2023) skips the reward model: the KL-regularised optimum implies the reward "
              "r̂(y) = β log(π(y)/π_ref(y)) (up to a constant that cancels in a pair), and the loss is Bradley–Terry on r̂.",
    contract="`dpo_loss(logp_chosen, logp_rejected, ref_logp_chosen, ref_logp_rejected, beta)`: (B,) sequence "
             "log-probabilities under the policy (with their graph) and the reference; returns (loss, r̂_chosen, "
             "r̂_rejected) with the implied rewards detached.",
    hint="r̂ = β (log π − log π_ref) for each side, then −log σ(r̂_w − r̂_l), averaged.",
    equation=r"\mathcal L_{\mathrm{DPO}} = -\mathbb E\Big[\log\sigma\Big(\beta\log\frac{\pi_\theta(y_w)}{\pi_{\mathrm{ref}}(y_w)} - \beta\log\frac{\pi_\theta(y_l)}{\pi_{\mathrm{ref}}(y_l)}\Big)\Big]",
    reference=_dpo_loss, cases=_dpo_case, probe=with_grads(0, 1, scalar=lambda r: r[0]),
    mistakes=[
        ("the implied reward is β (log π − log π_ref): you left out the reference",
         lambda a, b, c, d, beta: _dpo_loss(a, b, torch.zeros_like(c), torch.zeros_like(d), beta)),
        ("chosen minus rejected: σ(r̂_w − r̂_l)", lambda a, b, c, d, beta: _dpo_loss(b, a, d, c, beta)),
        ("β multiplies the log-ratios inside σ (it sets how far π may move from π_ref), not the loss",
         lambda a, b, c, d, beta: (beta * _dpo_loss(a, b, c, d, 1.0)[0], *_dpo_loss(a, b, c, d, beta)[1:])),
    ])


def _best_of_n_case(g):
    K = int(randint(g, 3, 9))
    return (torch.softmax(randn(g, K), 0).double(), randint(g, 0, 4, K).double(), int(randint(g, 1, 17))), {}


def _per_outcome(probs, rewards, n, highest=True):
    order = torch.argsort(rewards, stable=True) if highest else torch.argsort(-rewards, stable=True)
    p = probs[order] / probs.sum()
    below = torch.cumsum(p, 0) - p
    q = (below + p).pow(n) - below.pow(n)
    keep = q > 0
    return float((q[keep] * (q[keep].log() - p[keep].log())).sum())


check_best_of_n_kl_exact = register(
    id="2.2d.3", name="best_of_n_kl_exact", stars=3, title="The exact KL of best-of-n, ties included",
    statement="Best-of-n keeps the highest-reward of n draws from the base. The popular log n − (n−1)/n is exact only "
              "for continuous rewards; with a discrete base, outcomes of equal reward form one level, chosen with "
              "probability (F₋ + p)ⁿ − F₋ⁿ (F₋ the mass below it), and best-of-n keeps the base's proportions inside it.",
    contract="`best_of_n_kl_exact(probs, rewards, n)`: `probs` (K,) base probabilities (summing to 1), `rewards` (K,), `n` ≥ 1; "
             "returns KL(best-of-n ‖ base) as a float.",
    hint="`torch.unique(rewards, sorted=True, return_inverse=True)` groups the levels; `index_add_` sums their mass; "
         "within a level the KL term is q log(q / p) with the level's q and p.",
    equation=r"\mathrm{KL} = \sum_{\text{levels } \ell} q_\ell \log\frac{q_\ell}{p_\ell},\qquad q_\ell = (F_{<\ell} + p_\ell)^n - F_{<\ell}^n",
    reference=_best_of_n_kl_exact, cases=_best_of_n_case,
    mistakes=[
        ("log n − (n − 1)/n is exact only without ties: with equal rewards best-of-n returns a whole level",
         lambda probs, rewards, n: best_of_n_kl(n)),
        ("you broke ties between equal rewards: outcomes of equal reward form one level, and within it best-of-n keeps "
         "the base's proportions", lambda probs, rewards, n: _per_outcome(probs, rewards, n)),
        ("best-of-n keeps the *highest* reward: accumulate the mass from the lowest reward up",
         lambda probs, rewards, n: _best_of_n_kl_exact(probs, -rewards, n)),
    ])
