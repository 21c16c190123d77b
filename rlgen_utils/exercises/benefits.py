"""Exercises of survey §2.1 and §2.3 (notebooks 2.1a, 2.1b, 2.3): the score-function estimate of a softmax
sample and the Gumbel-softmax relaxation; BLEU's clipped n-gram counts and SCST's self-critical loss; the moving-
average baseline and regularised evolution's ageing."""
from __future__ import annotations

import random
from collections import Counter, deque

import torch
import torch.nn.functional as F

from ..nas.search import evolution_step as _evolution_step
from ..nas.search import mutate_architecture
from ..nas.space import arch_to_decisions, enumerate_space
from ..rewards.bleu import modified_precision as _modified_precision
from ..rl.advantages import MovingAverageBaseline
from ..sequences.seq2seq import scst_loss as _scst_loss
from .harness import Seeded, pick, randint, randn, register, returned, uniform, with_grads


# ------------------------------------------------------------------------------------------------ 2.1a
def _reinforce_estimates(theta, z, fz, baseline=0.0):
    score = F.one_hot(z, theta.shape[-1]).to(theta.dtype) - torch.softmax(theta, -1)  # ∇_θ log softmax(θ)_z
    return (fz - baseline)[:, None] * score


def _estimates_case(g):
    K, n = int(randint(g, 3, 9)), 6
    return (randn(g, K), randint(g, 0, K, n), randn(g, n)), dict(baseline=pick(g, [0.0, float(randn(g, 1))]))


check_reinforce_estimates = register(
    id="2.1a.1", name="reinforce_estimates", stars=2, title="The score function of a softmax sample",
    statement="A sampled token z ~ softmax(θ) has no gradient, but the score-function (REINFORCE) estimator needs only "
              "∇_θ log p_θ(z), which for a softmax has a closed form. Write the per-sample estimates of ∇_θ E[f(z)] "
              "without autograd.",
    contract="`reinforce_estimates(theta, z, fz, baseline=0.0)`: `theta` (K,) logits, `z` (n,) int64 samples, `fz` (n,) "
             "their values f(z); returns (n, K), row i = (f(z_i) − b) ∇_θ log p_θ(z_i).",
    hint="∂ log softmax(θ)_z / ∂θ_k = 1[k = z] − softmax(θ)_k.",
    equation=r"\hat g_i = \big(f(z_i) - b\big)\,\nabla_\theta \log p_\theta(z_i) = \big(f(z_i) - b\big)\big(e_{z_i} - \mathrm{softmax}(\theta)\big)",
    reference=_reinforce_estimates, cases=_estimates_case,
    mistakes=[
        ("∇_θ log softmax(θ)_z = e_z − softmax(θ): you left out the −softmax(θ) of the normaliser",
         lambda th, z, fz, baseline=0.0: (fz - baseline)[:, None] * F.one_hot(z, th.shape[-1]).float()),
        ("subtract the baseline b from f(z)", lambda th, z, fz, baseline=0.0: _reinforce_estimates(th, z, fz)),
        ("the score is e_z − softmax(θ), not softmax(θ) − e_z", lambda th, z, fz, baseline=0.0: -_reinforce_estimates(th, z, fz, baseline)),
    ])


def _gumbel_softmax(theta, u, tau=1.0, hard=True):
    soft = torch.softmax((theta - torch.log(-torch.log(u))) / tau, -1)
    if not hard:
        return soft
    return F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype) + soft - soft.detach()


def _gumbel_case(g):
    K = int(randint(g, 3, 7))
    return (randn(g, K), uniform(g, 5, K).clamp(1e-6, 1 - 1e-6)), dict(tau=pick(g, [0.5, 1.0, 2.0]), hard=pick(g, [True, False]))


def _gumbel_variant(noise_sign=-1.0, temper_noise=True, straight_through=True):
    def sample(theta, u, tau=1.0, hard=True):
        gumbel = noise_sign * torch.log(-torch.log(u))
        logits = (theta + gumbel) / tau if temper_noise else theta / tau + gumbel
        soft = torch.softmax(logits, -1)
        if not hard:
            return soft
        onehot = F.one_hot(soft.argmax(-1), soft.shape[-1]).float()
        return onehot + soft - soft.detach() if straight_through else onehot
    return sample


check_gumbel_softmax = register(
    id="2.1a.2", name="gumbel_softmax", stars=2, title="Gumbel-softmax, straight-through",
    statement="The Gumbel-max trick draws z ~ softmax(θ) as argmax(θ + g) with Gumbel noise g = −log(−log u). "
              "Gumbel-softmax relaxes the argmax to softmax((θ + g)/τ); its straight-through form returns the exact "
              "one-hot sample forward and the relaxation's gradient backward (Jang et al. 2017).",
    contract="`gumbel_softmax(theta, u, tau=1.0, hard=True)`: `theta` (K,) or (n, K) logits, `u` (n, K) uniform draws in "
             "(0, 1); returns (n, K): the relaxed sample, or with `hard` the one-hot of its argmax carrying the relaxed "
             "sample's gradient.",
    hint="onehot + soft − soft.detach() has the value of the one-hot and the gradient of `soft`.",
    equation=r"y = \mathrm{softmax}\big((\theta + g)/\tau\big),\quad g = -\log(-\log u),\; u \sim U(0, 1)",
    reference=_gumbel_softmax, cases=_gumbel_case,
    probe=with_grads(0, scalar=lambda r: (r * torch.linspace(-1.0, 2.0, r.shape[-1])).pow(2).sum()),
    mistakes=[
        ("Gumbel noise is g = −log(−log u): you added its negative", _gumbel_variant(noise_sign=1.0)),
        ("divide the whole perturbed logit θ + g by τ, not θ alone", _gumbel_variant(temper_noise=False)),
        ("the hard one-hot has no gradient: return onehot + soft − soft.detach() (straight-through)",
         _gumbel_variant(straight_through=False)),
    ])


# ------------------------------------------------------------------------------------------------ 2.1b
def _precision_case(g):
    def sentence(lo, hi):  # three words only, so that n-grams repeat and clipping matters
        return [str(int(t)) for t in randint(g, 0, 3, int(randint(g, lo, hi)))]
    return (sentence(0, 13), [sentence(1, 8) for _ in range(int(randint(g, 2, 4)))], int(randint(g, 1, 3))), {}


def _ngrams(tokens, n):
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _precision_variant(clip="max", denominator="hypothesis"):
    def precision(hypothesis, references, n):
        hyp = _ngrams(hypothesis, n)
        refs = [_ngrams(r, n) for r in references]
        if clip == "none":
            matches = sum(c for gram, c in hyp.items() if any(gram in r for r in refs))
        else:
            cap = {gram: (max if clip == "max" else sum)(r[gram] for r in refs) for gram in hyp}
            matches = sum(min(c, cap[gram]) for gram, c in hyp.items())
        total = sum(hyp.values()) if denominator == "hypothesis" else sum(refs[0].values())
        return matches, total
    return precision


check_modified_precision = register(
    id="2.1b.1", name="modified_precision", stars=1, title="BLEU's clipped n-gram precision",
    statement="BLEU credits each candidate n-gram at most as often as it occurs in a single reference, so that "
              "\"the the the the\" does not score a perfect unigram precision against \"the cat\".",
    contract="`modified_precision(hypothesis, references, n)`: `hypothesis` a list of tokens, `references` a list of "
             "token lists, `n` the order; returns (matches, total) as ints: the clipped matches and the number of "
             "n-grams of the hypothesis.",
    hint="`collections.Counter` of n-gram tuples; the cap of an n-gram is its largest count in any one reference.",
    equation=r"p_n = \frac{\sum_{g} \min\big(\mathrm{count}_c(g),\ \max_{r \in R} \mathrm{count}_r(g)\big)}{\sum_g \mathrm{count}_c(g)}",
    reference=_modified_precision, cases=_precision_case,
    mistakes=[
        ("you did not clip: a candidate n-gram is credited at most as often as it occurs in one reference",
         _precision_variant(clip="none")),
        ("you clipped by the count summed over the references: clip by the largest count in any single reference",
         _precision_variant(clip="sum")),
        ("the denominator counts the candidate's n-grams, not the reference's", _precision_variant(denominator="reference")),
    ])


def _scst_case(g):
    B, T = 6, 5
    mask = torch.rand(B, T, generator=g) < 0.8
    mask[:, 0] = True
    return (-uniform(g, B, T, low=0.1, high=3.0), mask, uniform(g, B), uniform(g, B)), {}


check_scst_loss = register(
    id="2.1b.2", name="scst_loss", stars=2, title="Self-critical sequence training",
    statement="SCST (Rennie et al. 2017) is REINFORCE with the model's own greedy decode as the baseline: a sampled "
              "translation that beats what the model would output at test time is made more likely, a worse one less.",
    contract="`scst_loss(logp, mask, sample_reward, greedy_reward)`: `logp` (B, T) token log-probabilities of the "
             "samples (with their graph), `mask` (B, T) their real tokens, rewards (B,); returns (loss, advantage (B,)): "
             "the loss is the mean over the real tokens of −log π · A, the sentence's advantage on each of its tokens.",
    hint="A = r(y^s) − r(ŷ), detached; `rlgen_utils.rl.policy_gradient.reinforce_loss(logp, A[:, None].expand_as(logp), mask)`.",
    equation=r"\nabla_\theta \mathcal L \approx -\big(r(y^s) - r(\hat y)\big)\, \nabla_\theta \log p_\theta(y^s)",
    reference=_scst_loss, cases=_scst_case, probe=with_grads(0, 2, 3, scalar=lambda r: r[0]),
    mistakes=[
        ("the advantage is r(sample) − r(greedy): samples that beat the greedy decode should become more likely",
         lambda lp, m, rs, rg: _scst_loss(lp, m, rg, rs)),
        ("your loss sends gradient into the rewards: detach the advantage",
         lambda lp, m, rs, rg: (-((lp * (rs - rg)[:, None]) * m).sum() / m.sum(), rs - rg)),
        ("average over the samples' real tokens only (the mask)",
         lambda lp, m, rs, rg: (-(lp * (rs - rg).detach()[:, None]).mean(), (rs - rg).detach())),
    ])


# ------------------------------------------------------------------------------------------------ 2.3 NAS
def _baseline_probe(cls, args, kwargs):
    decay, batches = args
    baseline = returned(cls(decay))
    return [float(returned(baseline.update(b.clone()))) for b in batches]


class _AfterAbsorbing(MovingAverageBaseline):
    def update(self, rewards):
        super().update(rewards)
        return self.value


class _SwappedDecay(MovingAverageBaseline):
    def update(self, rewards):
        before = float(rewards.mean()) if self.value is None else self.value
        self.value = (1 - self.decay) * before + self.decay * float(rewards.mean())
        return before


class _StartsAtZero(MovingAverageBaseline):
    def update(self, rewards):
        before = 0.0 if self.value is None else self.value
        self.value = self.decay * before + (1 - self.decay) * float(rewards.mean())
        return before


check_MovingAverageBaseline = register(
    id="2.3.1", name="MovingAverageBaseline", stars=1, title="The controller's moving-average baseline",
    statement="Zoph & Le's controller subtracts an exponential moving average b of past rewards. The baseline used for "
              "a batch must not have seen that batch's rewards, else it is correlated with them and biases the gradient.",
    contract="A class: `MovingAverageBaseline(decay)`; `update(rewards)` takes a batch's rewards (B,) and returns the "
             "baseline *before* it absorbs them (a float; the first batch's own mean when there is no history), then "
             "sets b ← decay · b + (1 − decay) · mean(rewards). Keep the current value in `self.value` (None at first).",
    hint="Compute `before`, update `self.value`, return `before`.",
    equation=r"b_k \leftarrow \delta\, b_{k-1} + (1 - \delta)\, \bar R_k,\qquad A = R - b_{k-1}",
    reference=MovingAverageBaseline, probe=_baseline_probe,
    cases=lambda g: ((pick(g, [0.5, 0.8, 0.9]), [uniform(g, 8) for _ in range(5)]), {}),
    mistakes=[
        ("return the baseline *before* it absorbs this batch: one that has seen the batch's rewards biases the gradient",
         _AfterAbsorbing),
        ("b ← decay · b + (1 − decay) · mean: the old value keeps the weight `decay`", _SwappedDecay),
        ("start from the first batch's mean (there is no history yet), not 0", _StartsAtZero),
    ])

SPACE = [arch_to_decisions(a) for a in enumerate_space()]


def _evolution_case(g):
    weights = randn(g, 7)
    population = deque(SPACE[int(i)] for i in randint(g, 0, len(SPACE), int(randint(g, 6, 12))))
    fitness = Fitness(weights)
    return (deque((d, fitness(d)) for d in population), fitness, Seeded(int(randint(g, 0, 10**6)), "python"),
            int(randint(g, 2, 5))), dict(keep_depth=pick(g, [False, True]))


class Fitness:
    """A deterministic stand-in for an architecture's validation accuracy: a fixed random linear score."""

    def __init__(self, weights: torch.Tensor):
        self.weights = weights.tolist()

    def __call__(self, decisions) -> float:
        return sum(w * d for w, d in zip(self.weights, decisions))


def _evolution_probe(fn, args, kwargs):
    population, fitness, rng, sample_size = args[0].copy(), args[1], args[2].make(), args[3]
    child = returned(fn(population, fitness, rng, sample_size, **kwargs))  # changes `population` in place
    return child, list(population)


def _evolution_variant(parent_rule="best", remove="oldest"):
    def step(population, fitness, rng: random.Random, sample_size, keep_depth=False):
        candidates = rng.sample(list(population), sample_size)
        parent = {"best": max(candidates, key=lambda m: m[1]), "worst": min(candidates, key=lambda m: m[1]),
                  "global": max(population, key=lambda m: m[1])}[parent_rule]
        child = mutate_architecture(parent[0], rng, keep_depth)
        population.append((child, fitness(child)))
        if remove == "oldest":
            population.popleft()
        else:
            population.remove(min(population, key=lambda m: m[1]))
        return child
    return step


check_evolution_step = register(
    id="2.3.2", name="evolution_step", stars=2, title="Regularised evolution: tournament and ageing",
    statement="One cycle of regularised evolution (Real et al. 2019): from `sample_size` random members pick the best as "
              "parent, add its mutated child, and remove the *oldest* member — ageing, not the worst, so an architecture "
              "survives only by being re-discovered, which guards against one lucky evaluation.",
    contract="`evolution_step(population, fitness, rng, sample_size, keep_depth=False)`: `population` a deque of "
             "(decisions, fitness value) tuples, oldest on the left; `fitness(decisions)` a float; `rng` a random.Random. "
             "Draw `candidates = rng.sample(list(population), sample_size)` first, make the child with "
             "`mutate_architecture(parent[0], rng, keep_depth)` (rlgen_utils.nas.search); change the deque in place and return the child.",
    hint="max(candidates, key=...) by the fitness value; the deque's left end is the oldest member.",
    equation=r"\text{parent} = \arg\max_{m \in S} f(m),\; S \subset P,\ |S| = s;\quad P \leftarrow P \cup \{\mathrm{mutate_architecture}(\text{parent})\} \setminus \{\text{oldest}\}",
    reference=_evolution_step, cases=_evolution_case, probe=_evolution_probe,
    mistakes=[
        ("regularised evolution removes the *oldest* member (ageing), not the worst", _evolution_variant(remove="worst")),
        ("the parent is the best of the sampled candidates (tournament selection), not the worst",
         _evolution_variant(parent_rule="worst")),
        ("the tournament picks the best of `sample_size` random members, not of the whole population",
         _evolution_variant(parent_rule="global")),
    ])
