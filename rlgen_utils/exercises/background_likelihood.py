"""Exercises of survey §1.1, part 2 (notebooks 1.1d–1.1e): exact likelihoods. MADE's masks and ancestral
sampling; a coupling layer's change of variables, dequantisation and the logit pre-transform."""
from __future__ import annotations

import math

import torch

from ..genmodels.flows import dequantise as _dequantise
from ..genmodels.flows import logit_transform as _logit_transform
from ..genmodels.flows import standard_normal_log_prob
from .harness import Seeded, pick, randint, randn, register, uniform


# ------------------------------------------------------------------------------------------------ 1.1d MADE
def _made_masks(in_degree, hidden_degrees):
    degrees = [in_degree] + list(hidden_degrees)
    masks = [(d_out[:, None] >= d_in[None, :]).float() for d_in, d_out in zip(degrees[:-1], degrees[1:])]
    return masks + [(in_degree[:, None] > degrees[-1][None, :]).float()]


def _made_case(g):
    D = int(randint(g, 4, 10))
    in_degree = torch.randperm(D, generator=g) + 1
    hidden = [randint(g, 1, D, int(randint(g, 5, 12))) for _ in range(int(randint(g, 1, 3)))]
    return (in_degree, hidden), {}


def _made_masks_variant(hidden_op, out_op, transpose=False):
    def masks(in_degree, hidden_degrees):
        degrees = [in_degree] + list(hidden_degrees)
        out = [hidden_op(d_out[:, None], d_in[None, :]).float() for d_in, d_out in zip(degrees[:-1], degrees[1:])]
        out.append(out_op(in_degree[:, None], degrees[-1][None, :]).float())
        return [m.T for m in out] if transpose else out
    return masks


check_made_masks = register(
    id="1.1d.1", name="made_masks", stars=2, title="MADE's masks",
    statement="Give every unit a degree: input pixel i the position of pixel i in the chain (1..D), hidden units a "
              "degree in 1..D−1. A hidden unit may see the units of the layer below whose degree is at most its own; "
              "output i may only see hidden units of degree *below* i — so logit i depends on the pixels before i only.",
    contract="`made_masks(in_degree, hidden_degrees)`: `in_degree` (D,) int64 (a permutation of 1..D), `hidden_degrees` "
             "a list of (H_l,) int64 tensors; returns the list of masks, one per layer, each (out_features, in_features) "
             "of 0/1 floats: len(hidden_degrees) hidden masks, then the output mask (D, H_last).",
    hint="Broadcast: `d_out[:, None] >= d_in[None, :]` for hidden layers, `>` for the output layer.",
    equation=r"M^{(l)}_{kj} = \mathbb 1[m^{(l)}_k \ge m^{(l-1)}_j],\qquad M^{\text{out}}_{ik} = \mathbb 1[d_i > m^{(L)}_k]",
    reference=_made_masks, cases=_made_case,
    mistakes=[
        ("the output mask uses ≥: logit i would see hidden units of degree i, and through them pixel i itself; "
         "outputs need strictly greater (>)",
         _made_masks_variant(torch.ge, torch.ge)),
        ("the hidden masks use >: a hidden unit of degree m may see the units below of degree ≤ m (≥ in the mask)",
         _made_masks_variant(torch.gt, torch.gt)),
        ("your masks are transposed: nn.Linear's weight, and so its mask, is (out_features, in_features)",
         _made_masks_variant(torch.ge, torch.gt, transpose=True)),
    ])


class AutoregressiveLinear:
    """A fixed autoregressive model for the cases: logit i = Σ_{j before i in `order`} W_ij x_j + b_i, (B, D) → (B, D)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, order: torch.Tensor):
        position = torch.empty_like(order)
        position[order] = torch.arange(len(order))
        self.weight = weight * (position[:, None] > position[None, :]).float()
        self.bias = bias

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T + self.bias


def _sample_autoregressive(logits_fn, n, order, generator=None):
    x = torch.zeros(n, len(order), device=order.device)
    for i in order.tolist():
        p = torch.sigmoid(logits_fn(x)[:, i])
        u = torch.rand(n, generator=generator).to(x.device) if generator is not None else torch.rand(n, device=x.device)
        x[:, i] = (u < p).float()
    return x


def _autoregressive_case(g):
    D = int(randint(g, 4, 9))
    order = torch.randperm(D, generator=g)
    model = AutoregressiveLinear(randn(g, D, D, scale=3.0), randn(g, D), order)
    return (model, int(randint(g, 3, 7)), order), dict(generator=Seeded(int(randint(g, 0, 10**6))))


def _one_pass(logits_fn, n, order, generator=None):
    x = torch.zeros(n, len(order))
    p = torch.sigmoid(logits_fn(x))
    for i in order.tolist():
        x[:, i] = (torch.rand(n, generator=generator) < p[:, i]).float()
    return x


def _raster(logits_fn, n, order, generator=None):
    return _sample_autoregressive(logits_fn, n, torch.arange(len(order)), generator)


def _greedy(logits_fn, n, order, generator=None):
    x = torch.zeros(n, len(order))
    for i in order.tolist():
        x[:, i] = (torch.sigmoid(logits_fn(x)[:, i]) > 0.5).float()
    return x


check_sample_autoregressive = register(
    id="1.1d.2", name="sample_autoregressive", stars=2, title="Ancestral sampling, pixel by pixel",
    statement="Training is teacher-forced (true pixels as inputs); sampling is not. Draw images from the chain rule "
              "p(x) = Π_i p(x_i | x_<i): one pixel at a time in the model's order, each drawn from its Bernoulli given "
              "the pixels already drawn — D passes of the network, each over the whole batch.",
    contract="`sample_autoregressive(logits_fn, n, order, generator=None)`: `logits_fn(x)` maps (n, D) to the (n, D) "
             "logits of p(x_i = 1 | x_<i); `order` (D,) int64 the pixels in chain order; returns (n, D) of 0/1 floats. "
             "Start from zeros; for pixel i draw `u = torch.rand(n, generator=generator)` and set x_i = 1 where u < p_i.",
    hint="Recompute the logits after every pixel: the later pixels depend on the earlier draws.",
    equation=r"x_{o_1} \sim p(x_{o_1}),\; x_{o_2} \sim p(x_{o_2} | x_{o_1}),\; \dots,\; x_{o_D} \sim p(x_{o_D} | x_{o_{<D}})",
    reference=_sample_autoregressive, cases=_autoregressive_case,
    mistakes=[
        ("you drew every pixel from one pass on x = 0: each pixel must be drawn after the pixels before it, feeding the "
         "draws back in", _one_pass),
        ("you drew the pixels in raster order 0..D−1: follow `order`", _raster),
        ("you took the most likely value (p > 0.5): sampling draws each pixel from its Bernoulli(p)", _greedy),
    ])


# ------------------------------------------------------------------------------------------------ 1.1e flows
class CouplingNet:
    """s(x_a), t(x_a) of an affine coupling for the cases: fixed random maps, zero on the kept coordinates."""

    def __init__(self, w_s: torch.Tensor, w_t: torch.Tensor, mask: torch.Tensor):
        self.w_s, self.w_t, self.mask = w_s, w_t, mask

    def __call__(self, x_a: torch.Tensor):
        free = 1 - self.mask
        return torch.tanh(x_a @ self.w_s) * free, (x_a @ self.w_t) * free


def _coupling_log_prob(x, mask, s_t):
    x_a = x * mask
    s, t = s_t(x_a)
    z = x_a + (1 - mask) * (x * torch.exp(s) + t)
    return standard_normal_log_prob(z) + s.sum(-1)


def _coupling_case(g):
    D = int(randint(g, 2, 7))
    mask = torch.zeros(D)
    mask[torch.randperm(D, generator=g)[:int(randint(g, 1, D))]] = 1.0  # at least one kept, one transformed
    return (randn(g, 6, D), mask, CouplingNet(randn(g, D, D), randn(g, D, D), mask)), {}


def _coupling_variant(logdet_sign=1.0, logdet_of=lambda s: s, condition_on_all=False):
    def log_prob(x, mask, s_t):
        x_a = x * mask
        s, t = s_t(x if condition_on_all else x_a)
        z = x_a + (1 - mask) * (x * torch.exp(s) + t)
        return standard_normal_log_prob(z) + logdet_sign * logdet_of(s).sum(-1)
    return log_prob


check_coupling_log_prob = register(
    id="1.1e.1", name="coupling_log_prob", stars=2, title="A coupling layer's change of variables",
    statement="An affine coupling keeps the masked half x_a = m ⊙ x and transforms the rest with a scale and shift "
              "computed from x_a alone, so its Jacobian is triangular. Write log p(x) of a one-layer flow with a "
              "standard-normal base: the base density of z = f(x) plus the log-determinant.",
    contract="`coupling_log_prob(x, mask, s_t)`: `x` (B, D), `mask` (D,) of 0/1 floats (1 = kept), `s_t(x_a)` returns "
             "(s, t), each (B, D) and already zero where mask = 1; returns log p(x) (B,) in nats. "
             "`standard_normal_log_prob(z)` (in rlgen_utils.genmodels.flows) gives log N(z; 0, I) per row.",
    hint="z = x_a + (1 − m) ⊙ (x ⊙ exp(s) + t); the diagonal of ∂z/∂x is exp(s) on the free coordinates.",
    equation=r"\log p(x) = \log \mathcal N(f(x); 0, I) + \log\Big|\det \frac{\partial f}{\partial x}\Big|,\qquad \log|\det| = \sum_j s_j(x_a)",
    reference=_coupling_log_prob, cases=_coupling_case,
    mistakes=[
        ("you left out log |det ∂z/∂x| = Σ s: the change of variables adds it to the base density",
         _coupling_variant(logdet_sign=0.0)),
        ("the log-determinant enters with a plus sign: log p(x) = log N(f(x)) + log |det ∂f/∂x| (−Σ s is the inverse's)",
         _coupling_variant(logdet_sign=-1.0)),
        ("the Jacobian's diagonal is exp(s), so log |det| = Σ s, not Σ exp(s)",
         _coupling_variant(logdet_of=torch.exp)),
        ("s and t must see only the kept half x_a = m ⊙ x, else the Jacobian is not triangular",
         _coupling_variant(condition_on_all=True)),
    ])


def _dequantise_case(g):
    levels = pick(g, [2, 4, 17, 256])
    x = randint(g, 0, levels, 5, 6).float() / (levels - 1)
    return (x, levels), dict(generator=Seeded(int(randint(g, 0, 10**6))))


check_dequantise = register(
    id="1.1e.2", name="dequantise", stars=1, title="Uniform dequantisation",
    statement="A density on [0, 1]^D gives discrete images no probability unless each grey level k owns a cell "
              "of width 1/L: add uniform noise inside the cell (Theis et al. 2016), so a continuous likelihood bounds "
              "the discrete one.",
    contract="`dequantise(x, levels, generator=None)`: `x` (B, D) with values k/(levels − 1); returns (k + u)/levels (B, D) "
             "with u = `torch.rand(x.shape, generator=generator).to(x.device)`.",
    hint="Recover the level first: k = round(x · (levels − 1)).",
    equation=r"y = \frac{k + u}{L},\quad u \sim U[0, 1)^D,\qquad \log P(k) \ge \mathbb E_u[\log p(y)] - D \log L",
    reference=_dequantise, cases=_dequantise_case,
    mistakes=[
        ("(k + u)/(levels − 1) leaves [0, 1]: the L cells of width 1/L are [k/L, (k+1)/L)",
         lambda x, L, generator=None: (torch.round(x * (L - 1)) + torch.rand(x.shape, generator=generator)) / (L - 1)),
        ("you left out the uniform noise u: a density at points of a grid is not a likelihood",
         lambda x, L, generator=None: (torch.round(x * (L - 1)) + 0.5) / L),
        ("k is the grey level, round(x · (levels − 1)), not x itself",
         lambda x, L, generator=None: (x + torch.rand(x.shape, generator=generator)) / L),
    ])


def _logit_case(g):
    x = uniform(g, 4, 5)
    x[0, 0], x[-1, -1] = 0.0, 1.0
    return (x,), dict(alpha=pick(g, [0.05, 0.1]))


def _logit_variant(squeeze=True, logdet_scale=1.0, keep_affine=True):
    def transform(x, alpha=0.05):
        p = alpha + (1 - 2 * alpha) * x if squeeze else x
        y = torch.log(p) - torch.log1p(-p)
        logdet = ((math.log(1 - 2 * alpha) if keep_affine else 0.0) - torch.log(p) - torch.log1p(-p)).sum(-1)
        return y, logdet_scale * logdet
    return transform


check_logit_transform = register(
    id="1.1e.3", name="logit_transform", stars=2, title="The logit pre-transform and its Jacobian",
    statement="RealNVP models images in logit space: squeeze x ∈ [0, 1] to p = α + (1 − 2α)x (so the logit stays finite "
              "at 0 and 1), then y = logit(p). A likelihood in y is one in x only with the log-Jacobian of the map.",
    contract="`logit_transform(x, alpha=0.05)`: `x` (B, D) in [0, 1]; returns (y (B, D), log |det ∂y/∂x| (B,)).",
    hint="dy/dx = (1 − 2α) / (p (1 − p)); use `torch.log1p(-p)` for log(1 − p).",
    equation=r"y = \log\frac{p}{1-p},\; p = \alpha + (1 - 2\alpha)x,\qquad \log\Big|\frac{dy}{dx}\Big| = \log(1 - 2\alpha) - \log p - \log(1 - p)",
    reference=_logit_transform, cases=_logit_case,
    mistakes=[
        ("you left out the log(1 − 2α) of the affine squeeze p = α + (1 − 2α)x", _logit_variant(keep_affine=False)),
        ("your log-determinant has the wrong sign: dlogit(p)/dp = 1/(p(1 − p)) > 1, so its log is positive",
         _logit_variant(logdet_scale=-1.0)),
        ("squeeze first: the logit of x itself is infinite at x = 0 and 1", _logit_variant(squeeze=False)),
    ])
