"""Exercises of survey §4, part 1 (notebooks 4.1–4.4): PPO's clipped objective and GRPO's group advantages
(language); unbiased pass@k and per-problem leave-one-out advantages (code); the Gaussian log-likelihood of a
reverse step, DDPO's per-step clipped loss and DPOK's KL (vision); RL Tuner's KL-control advantages and the
analytic KL of best-of-n (music)."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..codegen.pass_at_k import pass_at_k as _pass_at_k
from ..genmodels.diffusion import gaussian_kl_same_std as _gaussian_kl_same_std
from ..genmodels.diffusion import gaussian_log_prob as _gaussian_log_prob
from ..rl.kl import best_of_n_kl as _best_of_n_kl
from ..rl.policy_gradient import ppo_clip_loss as _ppo_clip_loss
from .harness import pick, randint, randn, register, uniform, weighted_sum, with_grads


# ------------------------------------------------------------------------------------------------ 4.1
def _ppo_case(g):
    B, T = 4, 5
    logp_old = -uniform(g, B, T, low=0.1, high=3.0)
    mask = pick(g, [None, torch.arange(T)[None] < randint(g, 1, T + 1, B)[:, None]])
    return (logp_old + randn(g, B, T, scale=0.3), logp_old, randn(g, B, T), pick(g, [0.1, 0.2])), dict(mask=mask)


def _masked_mean(x, mask):
    return x.mean() if mask is None else (x * mask.float()).sum() / mask.float().sum()


def _ppo_variant(combine=torch.min, ratio_of=lambda new, old: torch.exp(new - old.detach()), unclipped=True):
    def loss(logp_new, logp_old, advantages, clip, mask=None):
        ratio = ratio_of(logp_new, logp_old)
        adv = advantages.detach()
        clipped = ratio.clamp(1 - clip, 1 + clip) * adv
        surrogate = combine(ratio * adv, clipped) if unclipped else clipped
        return -_masked_mean(surrogate, mask), {}
    return loss


check_ppo_clip_loss = register(
    id="4.1.1", name="ppo_clip_loss", stars=2, title="PPO's clipped objective",
    statement="PPO (Schulman et al. 2017) reuses a batch for several epochs by maximising the probability ratio times "
              "the advantage, clipped so that moving the ratio beyond [1 − ε, 1 + ε] earns nothing more — the minimum "
              "with the unclipped term makes it a pessimistic bound. `ppo_update` calls this function.",
    contract="`ppo_clip_loss(logp_new, logp_old, advantages, clip, mask=None)`: token log-probabilities under the current "
             "policy (with their graph) and under the policy that sampled them, advantages, all one shape; `mask` the "
             "valid entries or None; returns (loss, stats): the loss a scalar to minimise (a masked mean of −surrogate). "
             "In the notebook you write `ratio` (ρ) and `surrogate` (the clipped objective of every entry); the scaffold "
             "averages it and fills `stats`.",
    hint="ρ = exp(log π − log π_old) with log π_old and A detached; surrogate = min(ρA, clip(ρ, 1 − ε, 1 + ε) A).",
    equation=r"L^{\mathrm{CLIP}}(\theta) = \mathbb E_t\big[\min\big(\rho_t \hat A_t,\ \mathrm{clip}(\rho_t, 1-\varepsilon, 1+\varepsilon)\,\hat A_t\big)\big],\quad \rho_t = \frac{\pi_\theta(a_t|s_t)}{\pi_{\theta_{\mathrm{old}}}(a_t|s_t)}",
    reference=_ppo_clip_loss, cases=_ppo_case, probe=with_grads(0, 1, 2, output=lambda r: r[0]),
    mistakes=[
        ("clipping on the wrong side: take the *minimum* of the unclipped and clipped objectives (a pessimistic bound), "
         "not the maximum", _ppo_variant(combine=torch.max)),
        ("keep the min with the unclipped term: the clipped term alone stops penalising moves that hurt",
         _ppo_variant(unclipped=False)),
        ("log π_old is a constant: detach it, no gradient may flow into the sampling policy",
         _ppo_variant(ratio_of=lambda new, old: torch.exp(new - old))),
        ("ρ is a ratio of probabilities: exp(log π − log π_old), not the difference of the logs",
         _ppo_variant(ratio_of=lambda new, old: 1 + new - old.detach())),
    ])


def _group_advantages(r, G):
    r = r.view(-1, G)
    return ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).view(-1, 1)


def _group_case(g):
    G = pick(g, [2, 4, 8])
    r = (torch.rand(G * int(randint(g, 2, 5)), generator=g) < 0.5).float()
    r[:G] = 1.0  # one group whose completions all score alike
    return (r, G), {}


check_group_advantages = register(
    id="4.1.2", name="group_advantages", stars=1, title="GRPO's group-relative advantages",
    statement="GRPO (Shao et al. 2024) drops the critic: it samples G completions per prompt and standardises each "
              "reward within its own group. A group whose completions all score alike teaches nothing.",
    contract="`group_advantages(r, G)`: `r` (n,) rewards, G consecutive rows sharing a prompt (n = G · prompts); returns "
             "A (n, 1): (r − group mean) / (group std + 1e-4), with torch's default (unbiased) std.",
    hint="`r.view(-1, G)`: one row per prompt.",
    equation=r"\hat A_i = \frac{r_i - \mathrm{mean}(r_1, \dots, r_G)}{\mathrm{std}(r_1, \dots, r_G)}",
    reference=_group_advantages, cases=_group_case,
    mistakes=[
        ("standardise within each prompt's group of G completions, not over the whole batch",
         lambda r, G: ((r - r.mean()) / (r.std() + 1e-4)).view(-1, 1)),
        ("G *consecutive* rows share a prompt: r.view(-1, G), not r.view(G, -1)",
         lambda r, G: _group_advantages(r.view(G, -1).T.reshape(-1), G).view(-1, G).T.reshape(-1, 1)),
        ("divide by the group's standard deviation (+ 1e-4): centring alone leaves the advantages' scale to the reward",
         lambda r, G: (r.view(-1, G) - r.view(-1, G).mean(1, keepdim=True)).view(-1, 1)),
    ])


# ------------------------------------------------------------------------------------------------ 4.2
def _pass_case(g):
    n = int(randint(g, 1, 60))
    return (n, int(randint(g, 0, n + 1)), int(randint(g, 1, n + 1))), {}


check_pass_at_k = register(
    id="4.2.1", name="pass_at_k", stars=2, title="Unbiased pass@k",
    statement="pass@k is the chance that at least one of k programs passes the hidden tests. From n ≥ k samples with c "
              "correct, Chen et al. (2021) estimate it without bias as one minus the chance that a random k-subset holds "
              "no correct program; the plug-in 1 − (1 − c/n)^k is biased.",
    contract="`pass_at_k(n, c, k)`: ints n ≥ k ≥ 1, 0 ≤ c ≤ n; returns a float in [0, 1].",
    hint="1 − C(n − c, k)/C(n, k), which is 1 when n − c < k; or the product form 1 − Π_{i=n−c+1}^{n} (1 − k/i).",
    equation=r"\mathrm{pass@}k = 1 - \binom{n - c}{k} \Big/ \binom{n}{k}",
    reference=_pass_at_k, cases=_pass_case,
    mistakes=[
        ("1 − (1 − c/n)^k is the biased plug-in estimate: use 1 − C(n − c, k)/C(n, k)",
         lambda n, c, k: 1 - (1 - c / n) ** k),
        ("that is c/n, pass@1's estimate, whatever k", lambda n, c, k: c / n),
    ])


def _loo_advantages(r):
    return r - (r.sum(1, keepdim=True) - r) / (r.shape[1] - 1)


check_loo_advantages = register(
    id="4.2.2", name="loo_advantages", stars=1, title="Leave-one-out advantages per problem",
    statement="Each problem gets several sampled programs; a program's baseline is the mean reward of the *other* "
              "programs for the same problem, so easy and hard problems are compared only with themselves.",
    contract="`loo_advantages(r)`: `r` (P, S) rewards of S ≥ 2 programs for each of P problems; returns A (P, S).",
    hint="The samples of one problem are a row (dim 1).",
    equation=r"A_{p,i} = r_{p,i} - \frac{1}{S - 1}\sum_{j \ne i} r_{p,j}",
    reference=_loo_advantages, cases=lambda g: ((uniform(g, int(randint(g, 2, 6)), int(randint(g, 2, 7))),), {}),
    mistakes=[
        ("leave one out within each problem's programs (dim 1), not across problems",
         lambda r: r - (r.sum(0, keepdim=True) - r) / (r.shape[0] - 1)),
        ("leave the program's own reward out of its baseline", lambda r: r - r.mean(1, keepdim=True)),
    ])


# ------------------------------------------------------------------------------------------------ 4.3
def _gaussian_case(g):
    return (randn(g, 4, 6), randn(g, 4, 6), uniform(g, 4, 6, low=0.1, high=2.0)), {}


check_gaussian_log_prob = register(
    id="4.3.1", name="gaussian_log_prob", stars=1, title="The log-likelihood of a reverse diffusion step",
    statement="DDPO treats each denoising step as an action: x_{t−1} is drawn from the Gaussian p_θ(x_{t−1} | x_t) = "
              "N(μ_θ(x_t, t), σ_t² I), so its log-probability — per image, summed over the pixels — is the policy's "
              "log π(a_t | s_t).",
    contract="`gaussian_log_prob(x, mean, std)`: (B, D) each, `std` > 0; returns (B,) log N(x; mean, diag std²).",
    hint="Per dimension: −½ ((x − μ)/σ)² − log σ − ½ log 2π.",
    equation=r"\log \mathcal N(x; \mu, \sigma^2 I) = \sum_j \Big[-\frac{(x_j - \mu_j)^2}{2\sigma_j^2} - \log\sigma_j - \tfrac12\log 2\pi\Big]",
    reference=_gaussian_log_prob, cases=_gaussian_case,
    mistakes=[
        ("include −½ log 2π per dimension: a ratio would not notice, a log-likelihood does",
         lambda x, m, s: (-0.5 * ((x - m) / s) ** 2 - s.log()).sum(-1)),
        ("you treated std as the variance: the density divides by σ² = std², with −log σ",
         lambda x, m, s: (-0.5 * (x - m) ** 2 / s - 0.5 * s.log() - 0.5 * math.log(2 * math.pi)).sum(-1)),
        ("one log-probability per image: sum over the last dimension",
         lambda x, m, s: -0.5 * ((x - m) / s) ** 2 - s.log() - 0.5 * math.log(2 * math.pi)),
    ])


def _ddpo_clipped_loss(log_prob, log_prob_old, A, clip):
    T = log_prob_old.shape[0]
    rho = torch.exp(log_prob - log_prob_old.reshape(-1))
    A_i = A.repeat(T)
    return -torch.min(rho * A_i, rho.clamp(1 - clip, 1 + clip) * A_i).mean()


def _ddpo_variant(interleave=False, combine=torch.min):
    def loss(log_prob, log_prob_old, A, clip):
        T = log_prob_old.shape[0]
        rho = torch.exp(log_prob - log_prob_old.reshape(-1))
        A_i = A.repeat_interleave(T) if interleave else A.repeat(T)
        return -combine(rho * A_i, rho.clamp(1 - clip, 1 + clip) * A_i).mean()
    return loss


def _ddpo_case(g):
    T, B = int(randint(g, 2, 6)), int(randint(g, 2, 5))
    old = randn(g, T, B, scale=3.0)
    return (old.reshape(-1) + randn(g, T * B, scale=0.3), old, randn(g, B), pick(g, [0.1, 0.2])), {}


check_ddpo_clipped_loss = register(
    id="4.3.2", name="ddpo_clipped_loss", stars=2, title="DDPO's per-step ratio",
    statement="DDPO (Black et al. 2024) applies PPO's clip to every denoising step: each step t of image i has its "
              "own ratio ρ_t^i = p_θ(x_{t−1}|x_t) / p_θold(x_{t−1}|x_t), and all steps of an image share the image's "
              "advantage (its normalised reward).",
    contract="`ddpo_clipped_loss(log_prob, log_prob_old, A, clip)`: `log_prob` (T·B,) the current log-probabilities of the "
             "steps, flattened step-major (all B images at the first step, then the next step, …); `log_prob_old` (T, B) "
             "the sampler's, no graph; `A` (B,); returns the loss, a scalar mean over the T·B steps.",
    hint="Align A with the step-major rows: `A.repeat(T)`.",
    equation=r"\mathcal L = -\frac{1}{TB}\sum_{i,t} \min\big(\rho_t^i A^i,\ \mathrm{clip}(\rho_t^i, 1-\varepsilon, 1+\varepsilon) A^i\big)",
    reference=_ddpo_clipped_loss, cases=_ddpo_case, probe=with_grads(0),
    mistakes=[
        ("the rows are step-major (all images at one step, then the next): align the advantages with A.repeat(T), "
         "not A.repeat_interleave(T)", _ddpo_variant(interleave=True)),
        ("clipping on the wrong side: the clipped objective takes the min", _ddpo_variant(combine=torch.max)),
    ])


check_gaussian_kl_same_std = register(
    id="4.3.3", name="gaussian_kl_same_std", stars=1, title="DPOK's per-step KL",
    statement="Two models' reverse steps share σ_t, so the KL between them is a scaled squared distance of their means. "
              "DPOK (Fan et al. 2023) sums it over the steps to bound the KL between the models' images.",
    contract="`gaussian_kl_same_std(mean_p, mean_q, std)`: (B, D) each; returns (B,) KL(N(mean_p, std²) ‖ N(mean_q, std²)).",
    hint="Σ_j (μ_p − μ_q)² / (2σ²).",
    equation=r"\mathrm{KL}\big(\mathcal N(\mu_p, \sigma^2 I)\,\|\,\mathcal N(\mu_q, \sigma^2 I)\big) = \sum_j \frac{(\mu_{p,j} - \mu_{q,j})^2}{2\sigma_j^2}",
    reference=_gaussian_kl_same_std, cases=_gaussian_case,
    mistakes=[
        ("the KL has a factor ½: Σ (μ_p − μ_q)² / (2σ²)", lambda a, b, s: (((a - b) / s) ** 2).sum(-1)),
        ("divide by σ², not σ", lambda a, b, s: ((a - b) ** 2 / s).sum(-1) / 2),
        ("one KL per image: sum over the last dimension", lambda a, b, s: ((a - b) / s) ** 2 / 2),
    ])


# ------------------------------------------------------------------------------------------------ 4.4
def _rl_tuner_advantage(r_mt, log_p, log_pi, c):
    r = r_mt + c * (log_p - log_pi.detach())
    G = r.flip(1).cumsum(1).flip(1)
    return G - G.mean(0, keepdim=True)


def _tuner_case(g):
    B, T = int(randint(g, 3, 7)), 6
    return (randn(g, B, T), -uniform(g, B, T, high=4.0), -uniform(g, B, T, high=4.0), pick(g, [0.1, 0.5, 2.0])), {}


check_rl_tuner_advantage = register(
    id="4.4.1", name="rl_tuner_advantage", stars=2, title="RL Tuner's KL-control advantages",
    statement="RL Tuner (Jaques et al. 2017) rewards each note with the music-theory reward plus c · (log p − log π): "
              "staying likely under the frozen Note RNN p is part of the reward (KL control). The credit of a note is the "
              "return to go, baselined by the batch mean at its step.",
    contract="`rl_tuner_advantage(r_mt, log_p, log_pi, c)`: (B, T) each — rewards, the prior's and the policy's token "
             "log-probabilities (`log_pi` with its graph); returns the advantages (B, T), a constant of the gradient.",
    hint="Detach log π in the reward; G_t = reversed cumsum along dim 1; subtract G's mean over the batch (dim 0).",
    equation=r"r_t = r_{\mathrm{MT}}(s_t, a_t) + c\,\big(\log p(a_t|s_t) - \log\pi(a_t|s_t)\big),\qquad A_t = G_t - \overline{G_t}",
    reference=_rl_tuner_advantage, cases=_tuner_case, probe=with_grads(2, scalar=weighted_sum),
    mistakes=[
        ("KL control *adds* c (log p − log π): it rewards notes the prior finds likely",
         lambda r, lp, lpi, c: _rl_tuner_advantage(r, lpi.detach(), lp, c)),
        ("the reward is a constant of the gradient: detach log π in it",
         lambda r, lp, lpi, c: (lambda R: R.flip(1).cumsum(1).flip(1) - R.flip(1).cumsum(1).flip(1).mean(0, keepdim=True))(
             r + c * (lp - lpi))),
        ("G_t sums the rewards from t to the end: a reversed cumulative sum",
         lambda r, lp, lpi, c: (lambda G: G - G.mean(0, keepdim=True))((r + c * (lp - lpi.detach())).cumsum(1))),
        ("the baseline is the batch mean of G_t at each step (dim 0), not the mean over the steps",
         lambda r, lp, lpi, c: (lambda G: G - G.mean(1, keepdim=True))((r + c * (lp - lpi.detach())).flip(1).cumsum(1).flip(1))),
    ])

check_best_of_n_kl = register(
    id="4.4.2", name="best_of_n_kl", stars=1, title="The analytic KL of best-of-n",
    statement="For a continuous reward (no ties), best-of-n's distribution has density n F(r)^{n−1} relative to the "
              "base, and its KL to the base has a closed form (Stiennon et al. 2020) — often quoted as just log n, "
              "which is its upper bound.",
    contract="`best_of_n_kl(n)`: an int n ≥ 1; returns KL(best-of-n ‖ base) in nats, a float.",
    hint="Integrate n F^{n−1} log(n F^{n−1}) against the base: log n minus (n − 1)/n.",
    equation=r"\mathrm{KL}(\pi_{\mathrm{BoN}} \,\|\, \pi) = \log n - \frac{n - 1}{n}",
    reference=_best_of_n_kl, cases=lambda g: ((int(randint(g, 1, 65)),), {}),
    mistakes=[
        ("log n is only the upper bound: the exact value is log n − (n − 1)/n", lambda n: float(np.log(n))),
        ("subtract (n − 1)/n", lambda n: float(np.log(n) + (n - 1) / n)),
    ])
