"""One reward interface for every reward source of survey §2.2 (and the domain scorers of §4).

A reward maps a batch of generated samples (token tensors, images, ...) to one float per sample.
Trainers only see that tensor, which is the survey's point: only the reward changes.
"""
from __future__ import annotations

from typing import Callable

import torch


class Reward:
    """A reward source: `reward(samples, **context) -> (B,) float tensor`. Subclasses set `name`."""

    name = "reward"

    def __call__(self, samples, **context) -> torch.Tensor:
        raise NotImplementedError

    def __mul__(self, weight: float) -> "WeightedSum":
        return WeightedSum([(float(weight), self)])

    __rmul__ = __mul__

    def __add__(self, other: "Reward") -> "WeightedSum":
        return WeightedSum(_terms(self) + _terms(other))


def _terms(reward: Reward) -> list:
    return list(reward.terms) if isinstance(reward, WeightedSum) else [(1.0, reward)]


class FunctionReward(Reward):
    """Wrap a plain function `fn(samples, **context) -> (B,)` as a named reward."""

    def __init__(self, fn: Callable, name: str):
        self.fn, self.name = fn, name

    def __call__(self, samples, **context) -> torch.Tensor:
        return torch.as_tensor(self.fn(samples, **context), dtype=torch.float32)


class WeightedSum(Reward):
    """Σ_i w_i r_i(x): rewards composed with weights (`0.5 * bleu + 0.1 * length`)."""

    def __init__(self, terms: list):
        self.terms = terms
        self.name = " + ".join(f"{w:g}·{r.name}" for w, r in terms)

    def components(self, samples, **context) -> dict:
        """Each term's unweighted reward, by name: what a notebook plots to show which rule moved."""
        return {r.name: r(samples, **context) for _, r in self.terms}

    def __call__(self, samples, **context) -> torch.Tensor:
        return sum(w * r(samples, **context) for w, r in self.terms)


# ----------------------------------------------------------------------------- BLEU (survey §2.1, §2.2)
# BLEU (Papineni et al. 2002) written out, matching sacrebleu 2.x with tokenize="none" (whitespace tokens)
# to 1e-6: clipped n-gram precision, closest-reference brevity penalty, geometric mean, smoothing
# "none" | "floor" | "add-k" | "exp" (Chen & Cherry 2014). Scores are on sacrebleu's 0..100 scale;
# `BLEUReward` divides by 100 so a reward lies in [0, 1].
from collections import Counter  # noqa: E402

BLEU_SMOOTH_DEFAULTS = {"none": None, "floor": 0.1, "add-k": 1.0, "exp": None}


def _tokens(text) -> list:
    """A hypothesis/reference as a token list: a string is split on whitespace (sacrebleu's tokenize="none")."""
    if isinstance(text, str):
        return text.split()
    if isinstance(text, torch.Tensor):
        return text.tolist()
    return list(text)


def _ngrams(tokens: list, n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def modified_precision(hypothesis, references, n: int) -> tuple[int, int]:
    """Clipped n-gram precision as (matches, total): each hypothesis n-gram counts at most as often as it
    occurs in any single reference. "the cat sat on the mat" vs "the cat is on the mat": n=1 → (5, 6)."""
    hyp = _ngrams(_tokens(hypothesis), n)
    max_ref = Counter()
    for ref in references:
        max_ref |= _ngrams(_tokens(ref), n)  # | keeps the max count per n-gram over references
    return sum(min(c, max_ref[g]) for g, c in hyp.items()), sum(hyp.values())


def _closest_ref_length(hyp_len: int, ref_lens: list) -> int:
    """The reference length nearest the hypothesis length; ties go to the shorter reference."""
    return min(ref_lens, key=lambda r: (abs(hyp_len - r), r))


def _check_smoothing(smooth_method: str, smooth_value):
    if smooth_method not in BLEU_SMOOTH_DEFAULTS:
        raise ValueError(f"unknown smooth_method {smooth_method!r}: use one of {list(BLEU_SMOOTH_DEFAULTS)}")
    return BLEU_SMOOTH_DEFAULTS[smooth_method] if smooth_value is None else float(smooth_value)


def bleu_statistics(hypothesis, references, max_order: int = 4) -> list:
    """Sufficient statistics of one segment: [hyp_len, ref_len, matches_1..N, totals_1..N]."""
    hyp, refs = _tokens(hypothesis), [_tokens(r) for r in references]
    if not refs:
        raise ValueError("BLEU needs at least one reference per hypothesis")
    counts = [modified_precision(hyp, refs, n) for n in range(1, max_order + 1)]
    ref_len = _closest_ref_length(len(hyp), [len(r) for r in refs])
    return [len(hyp), ref_len] + [m for m, _ in counts] + [t for _, t in counts]


def bleu_from_statistics(stats: torch.Tensor, max_order: int = 4, smooth_method: str = "exp",
                         smooth_value: float | None = None, effective_order: bool = False) -> torch.Tensor:
    """BLEU (0..100) from statistics rows (B, 2 + 2N) = [hyp_len, ref_len, matches, totals], all rows at once.

    BLEU = BP · exp(Σ_n log p_n / N), BP = min(1, exp(1 - r/c)). `effective_order` drops the orders the
    hypothesis is too short to have (sacrebleu's sentence-level default). Follows sacrebleu's edge cases.
    """
    k = _check_smoothing(smooth_method, smooth_value)
    stats = torch.as_tensor(stats, dtype=torch.float64)
    stats = stats.unsqueeze(0) if stats.dim() == 1 else stats
    sys_len, ref_len = stats[:, 0], stats[:, 1]
    correct, total = stats[:, 2:2 + max_order].clone(), stats[:, 2 + max_order:].clone()
    bp = torch.where(sys_len < ref_len, torch.exp(1 - ref_len / sys_len.clamp(min=1)) * (sys_len > 0), 1.0)
    any_match = correct.sum(1) > 0  # no match at all → 0 before any smoothing
    if smooth_method == "add-k":
        correct[:, 1:] += k
        total[:, 1:] += k
    log_p = torch.full_like(correct, -9999999999.0)  # sacrebleu's floor for log(0)
    alive = torch.ones_like(sys_len, dtype=torch.bool)  # orders stop at the first with no n-grams
    eff = torch.zeros_like(sys_len)
    mteval = torch.ones_like(sys_len)
    for n in range(max_order):
        alive = alive & (total[:, n] > 0)
        eff = torch.where(alive, float(n + 1), eff)
        t = total[:, n].clamp(min=1e-300)
        zero = correct[:, n] == 0
        if smooth_method == "exp":
            mteval = torch.where(alive & zero, mteval * 2, mteval)
            p_zero = 100.0 / (mteval * t)
        elif smooth_method == "floor":
            p_zero = 100.0 * k / t
        else:
            p_zero = torch.zeros_like(t)
        p = torch.where(zero, p_zero, 100.0 * correct[:, n] / t)
        log_p[:, n] = torch.where(alive & (p > 0), torch.log(p.clamp(min=1e-300)), log_p[:, n])
    orders = eff if effective_order else torch.full_like(eff, float(max_order))
    used = torch.arange(max_order, dtype=torch.float64) < orders.unsqueeze(1)
    score = bp * torch.exp((log_p * used).sum(1) / orders.clamp(min=1))
    return torch.where(any_match, score, 0.0)


def sentence_bleu(hypothesis, references, max_order: int = 4, smooth_method: str = "exp",
                  smooth_value: float | None = None, effective_order: bool = True) -> float:
    """Sentence BLEU on a 0..100 scale, = sacrebleu.sentence_bleu(" ".join(hyp), [" ".join(r) ...],
    tokenize="none") with the same smoothing. Tokens are lists of strings (a string is split on spaces)."""
    if isinstance(references, str):
        raise TypeError("references must be a list of references (e.g. [['the', 'cat']] or ['the cat']), not one string")
    stats = bleu_statistics(hypothesis, references, max_order)
    return float(bleu_from_statistics(torch.tensor([stats]), max_order, smooth_method, smooth_value, effective_order)[0])


def corpus_bleu(hypotheses, references_per_hyp, max_order: int = 4, smooth_method: str = "exp",
                smooth_value: float | None = None, effective_order: bool = False) -> float:
    """Corpus BLEU (0..100): statistics summed over segments, then one BLEU (not a mean of sentence BLEUs).
    `references_per_hyp[i]` lists the references of `hypotheses[i]` (note: sacrebleu takes them transposed)."""
    if len(hypotheses) != len(references_per_hyp):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references_per_hyp)} reference lists: give one list per hypothesis")
    stats = torch.tensor([bleu_statistics(h, r, max_order) for h, r in zip(hypotheses, references_per_hyp)],
                         dtype=torch.float64).reshape(-1, 2 + 2 * max_order).sum(0)
    return float(bleu_from_statistics(stats, max_order, smooth_method, smooth_value, effective_order)[0])


def _lengths(tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Tokens before the first pad_id (everything from the first pad on is ignored)."""
    is_pad = tokens == pad_id
    if tokens.shape[-1] == 0:
        return torch.zeros(tokens.shape[:-1], dtype=torch.long, device=tokens.device)
    return torch.where(is_pad.any(-1), is_pad.float().argmax(-1), tokens.shape[-1])


def _ngram_codes(tokens: torch.Tensor, lengths: torch.Tensor, base: int, max_order: int, invalid: int) -> tuple:
    """Every n-gram (n = 1..max_order) of each row as one int64 code Σ_i (id_i + 1)·base^i, orders side by side.

    Ids are shifted by one, so codes of different orders never coincide (bijective base-`base` numerals).
    Returns (codes (..., Σ_n (T-n+1)) with `invalid` where the n-gram runs past the length, order of each column).
    """
    T = tokens.shape[-1]
    digits, codes, orders = tokens + 1, [], []
    for n in range(1, min(max_order, T) + 1):
        code = sum(digits[..., i:T - n + 1 + i] * base ** i for i in range(n))
        ok = torch.arange(T - n + 1, device=tokens.device) <= (lengths - n).unsqueeze(-1)
        codes.append(torch.where(ok, code, invalid))
        orders.append(torch.full((T - n + 1,), n, device=tokens.device))
    return torch.cat(codes, -1), torch.cat(orders)


def _row_counts(keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each entry of `keys` (M, L): how often it occurs in its row of `keys`, and in its row of `values` (M, K).

    One sort per row groups equal entries; counts per group come from one bincount (no per-row loop).
    """
    M, L = keys.shape
    both = torch.cat([keys, values], 1)
    sorted_, perm = both.sort(1)
    new_group = torch.ones_like(sorted_, dtype=torch.bool)
    new_group[:, 1:] = sorted_[:, 1:] != sorted_[:, :-1]
    group = new_group.flatten().cumsum(0) - 1  # every row starts a new group, so ids never span rows
    from_values = (perm >= L).flatten().double()
    n = int(group[-1]) + 1
    in_values, in_keys = torch.bincount(group, from_values, n), torch.bincount(group, 1 - from_values, n)
    position = torch.empty_like(perm).scatter_(1, perm, torch.arange(both.shape[1], device=keys.device).expand(M, -1))
    key_group = group.view(M, -1).gather(1, position[:, :L])
    return in_keys[key_group], in_values[key_group]


def batched_bleu_statistics(hyp_tokens: torch.Tensor, ref_tokens: torch.Tensor, pad_id: int,
                            max_order: int = 4) -> torch.Tensor:
    """(B, 2 + 2N) BLEU statistics of a whole batch of token-id sequences in tensor ops (no per-sample loop).

    hyp_tokens (B, T); ref_tokens (B, R, T') or (B, T'); a sequence ends at its first `pad_id`, and every
    one of the R rows counts as a reference. Each n-gram becomes one integer; its count in the hypothesis
    and in each reference come from binary search in the sorted rows. Clipped matches =
    Σ over hypothesis positions of min(c_hyp, max_r c_ref) / c_hyp = Σ over distinct n-grams of min(c_hyp, c_ref).
    """
    if hyp_tokens.dim() != 2:
        raise ValueError(f"hyp_tokens must be (B, T), got shape {tuple(hyp_tokens.shape)}")
    refs = ref_tokens.unsqueeze(1) if ref_tokens.dim() == 2 else ref_tokens
    if refs.dim() != 3 or refs.shape[0] != hyp_tokens.shape[0]:
        raise ValueError(f"ref_tokens must be (B, T) or (B, R, T) with B = {hyp_tokens.shape[0]}, got {tuple(ref_tokens.shape)}")
    device = hyp_tokens.device
    hyp, refs = hyp_tokens.long(), refs.long().to(device)
    B, R = refs.shape[:2]
    hyp_len, ref_lens = _lengths(hyp, pad_id), _lengths(refs, pad_id)  # (B,), (B, R)
    both = torch.cat([hyp.flatten(), refs.flatten()])
    base = int(both.max()) + 2 if both.numel() and int(both.min()) >= 0 else 2 ** 62
    if base ** max_order >= 2 ** 62:  # compact the ids so that the codes fit in int64
        ids, inverse = torch.unique(both, return_inverse=True)
        base = len(ids) + 1
        if base ** max_order >= 2 ** 62:
            raise ValueError(f"{base - 1} distinct tokens in the batch: too many for order-{max_order} codes; score smaller batches")
        hyp, refs = inverse[:hyp.numel()].view_as(hyp), inverse[hyp.numel():].view_as(refs)
    diff = (ref_lens - hyp_len.unsqueeze(1)).abs()
    closest = (diff * 10 ** 6 + ref_lens).argmin(1)  # nearest length, ties to the shorter
    ref_len = ref_lens.gather(1, closest.unsqueeze(1)).squeeze(1)
    stats = torch.zeros(B, 2 + 2 * max_order, dtype=torch.float64, device=device)
    stats[:, 0], stats[:, 1] = hyp_len.double(), ref_len.double()
    if hyp.shape[1] == 0 or B == 0:
        return stats
    h_code, h_order = _ngram_codes(hyp, hyp_len, base, max_order, invalid=-1)  # (B, Lh)
    h_ok = h_code >= 0
    if refs.shape[2]:
        r_code, _ = _ngram_codes(refs, ref_lens, base, max_order, invalid=-2)  # (B, R, Lr)
    else:
        r_code = torch.full((B, R, 1), -2, dtype=torch.long, device=device)
    query = h_code.unsqueeze(1).expand(B, R, -1).reshape(B * R, -1)
    c_hyp, c_ref = _row_counts(query, r_code.reshape(B * R, -1))
    c_hyp, c_ref = c_hyp.view(B, R, -1)[:, 0], c_ref.view(B, R, -1).amax(1)  # the most any single reference holds
    clipped = torch.where(h_ok, torch.minimum(c_hyp, c_ref).double() / c_hyp.clamp(min=1).double(), 0.0)
    for n in range(1, int(h_order.max()) + 1):  # the columns of order n are one contiguous block
        block = slice(int((h_order < n).sum()), int((h_order <= n).sum()))
        stats[:, 1 + n] = torch.round(clipped[:, block].sum(1))
        stats[:, 1 + max_order + n] = h_ok[:, block].sum(1).double()
    return stats


def batched_sentence_bleu(hyp_tokens: torch.Tensor, ref_tokens: torch.Tensor, pad_id: int, max_order: int = 4,
                          smooth_method: str = "exp", smooth_value: float | None = None,
                          effective_order: bool = True) -> torch.Tensor:
    """(B,) sentence BLEU (0..100) of each row of a token batch against its reference(s), all at once;
    equals `sentence_bleu` on the same token ids (and sacrebleu with tokenize="none")."""
    # chunks of rows small enough that each tensor op stays on one thread: faster, and robust to busy CPUs
    stats = torch.cat([batched_bleu_statistics(h, r, pad_id, max_order)
                       for h, r in zip(hyp_tokens.split(256), ref_tokens.split(256))]) if len(hyp_tokens) else \
        batched_bleu_statistics(hyp_tokens, ref_tokens, pad_id, max_order)
    return bleu_from_statistics(stats.cpu(), max_order, smooth_method, smooth_value, effective_order).to(hyp_tokens.device)


class BLEUReward(Reward):
    """Sentence BLEU / 100 (in [0, 1]) of each sampled sequence: `BLEUReward(pad_id)(samples, references=refs)`
    with samples (B, T) and refs (B, T) or (B, R, T) token ids (survey §2.1: a non-differentiable objective)."""

    name = "bleu"

    def __init__(self, pad_id: int, max_order: int = 4, smooth_method: str = "exp", smooth_value: float | None = None):
        _check_smoothing(smooth_method, smooth_value)
        self.pad_id, self.max_order, self.smooth_method, self.smooth_value = pad_id, max_order, smooth_method, smooth_value

    def __call__(self, samples, references=None, **context) -> torch.Tensor:
        if references is None:
            raise ValueError("BLEUReward needs the references: call reward(samples, references=ref_tokens)")
        bleu = batched_sentence_bleu(samples, references, self.pad_id, self.max_order, self.smooth_method, self.smooth_value)
        return (bleu / 100.0).float()


# ----------------------------------------------------------------------------- survey §2.2: discriminator and rule rewards
def _before_end(tokens: torch.Tensor, eos: int) -> torch.Tensor:
    """(B, T) bool: the tokens before the first `eos` (the end mark itself excluded)."""
    is_end = (tokens == eos).long()
    return torch.cumsum(is_end, -1) == 0


class DiscriminatorReward(Reward):
    """A discriminator's belief that a sample is real, as a reward (SeqGAN, Yu et al. 2017; survey §2.2).

    `discriminator(samples)` returns logits; kind "prob" gives D(x) = σ(logit), "log" gives log D(x),
    "logit" the logit itself. No gradient flows into the discriminator (it is a reward, not a loss).
    """

    name = "discriminator"

    def __init__(self, discriminator: Callable, kind: str = "prob"):
        if kind not in ("prob", "log", "logit"):
            raise ValueError(f"unknown kind {kind!r}: use 'prob', 'log' or 'logit'")
        self.discriminator, self.kind = discriminator, kind

    def __call__(self, samples, **context) -> torch.Tensor:
        with torch.no_grad():
            logits = self.discriminator(samples).float()
        return {"prob": torch.sigmoid, "log": torch.nn.functional.logsigmoid, "logit": lambda z: z}[self.kind](logits)


class LengthReward(Reward):
    """min(length, target) / target: a rule against terse outputs (length = tokens before the first `eos`)."""

    name = "length"

    def __init__(self, eos: int, target: int):
        if target <= 0:
            raise ValueError(f"target must be a positive length, got {target}")
        self.eos, self.target = eos, target

    def __call__(self, samples, **context) -> torch.Tensor:
        length = _before_end(samples, self.eos).sum(-1).float()
        return length.clamp(max=self.target) / self.target


class RepetitionPenalty(Reward):
    """−(repeated n-grams / n-grams) before the first `eos`: 0 when no n-gram repeats, → −1 for a loop.

    An n-gram counts as repeated each time it occurs after its first occurrence (1 − distinct-n ratio).
    """

    name = "repetition"

    def __init__(self, eos: int, n: int = 2):
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.eos, self.n = eos, n

    def __call__(self, samples, **context) -> torch.Tensor:
        B, T = samples.shape
        if T < self.n:
            return torch.zeros(B, device=samples.device)
        valid = _before_end(samples, self.eos)
        base = int(samples.max()) + 1
        codes = sum(samples[:, i:T - self.n + 1 + i].long() * base ** i for i in range(self.n))
        ok = valid[:, self.n - 1:]  # an n-gram is valid when its last token is before the end
        codes = torch.where(ok, codes, -1 - torch.arange(codes.shape[1], device=codes.device))  # invalid: all distinct
        sorted_codes = codes.sort(-1).values
        repeats = ((sorted_codes[:, 1:] == sorted_codes[:, :-1]) & (sorted_codes[:, 1:] >= 0)).sum(-1).float()
        return -repeats / ok.sum(-1).clamp(min=1).float()


class KeywordReward(Reward):
    """A keyword rule: 1 if any of `keywords` occurs before the first `eos` ("any"), or the number of
    occurrences ("count", the kind of rule a policy can game by repeating the keyword)."""

    name = "keyword"

    def __init__(self, keywords: list, eos: int, mode: str = "any"):
        if mode not in ("any", "count"):
            raise ValueError(f"unknown mode {mode!r}: use 'any' or 'count'")
        self.keywords, self.eos, self.mode = list(keywords), eos, mode

    def __call__(self, samples, **context) -> torch.Tensor:
        hits = torch.isin(samples, torch.tensor(self.keywords, device=samples.device)) & _before_end(samples, self.eos)
        count = hits.sum(-1).float()
        return (count > 0).float() if self.mode == "any" else count
