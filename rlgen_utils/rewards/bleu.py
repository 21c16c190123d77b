"""BLEU (Papineni et al. 2002) written out, and a batched sentence BLEU fast enough to be a reward (survey
§2.1, notebook 2.1b; §2.2). Matches sacrebleu 2.x with tokenize="none" (whitespace tokens) to 1e-6: clipped
n-gram precision, closest-reference brevity penalty, geometric mean, smoothing "none" | "floor" | "add-k" |
"exp" (Chen & Cherry 2014). Scores are on sacrebleu's 0..100 scale; `BLEUReward` divides by 100 so a reward
lies in [0, 1]."""
from __future__ import annotations

from collections import Counter

import torch

from ..sequences.masks import length_before_end
from .base import Reward

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


def _popcount(x: torch.Tensor) -> torch.Tensor:
    """Set bits of each non-negative int32 or int64 (SWAR: pairs, nibbles, then bytes summed by shifts)."""
    x = x - ((x >> 1) & 0x55555555_55555555 & _ones(x))
    x = (x & (0x33333333_33333333 & _ones(x))) + ((x >> 2) & (0x33333333_33333333 & _ones(x)))
    x = (x + (x >> 4)) & (0x0F0F0F0F_0F0F0F0F & _ones(x))
    x = x + (x >> 8)
    x = x + (x >> 16)
    return ((x + (x >> 32)) if x.dtype == torch.int64 else x) & 0x7F


def _ones(x: torch.Tensor) -> int:
    return 0x7FFFFFFF_FFFFFFFF if x.dtype == torch.int64 else 0x7FFFFFFF


def _ngram_match_counts(query: torch.Tensor, keys: torch.Tensor, max_order: int) -> list:
    """For each order n: how many n-grams of `keys` (M, K) equal the n-gram of `query` (M, T) at each position.

    The equalities of one query token with the key tokens are packed into the bits of one integer (bit j: key
    token j; int32 words when the keys fit in 30 bits, else int64 words of 62). An n-gram at i matches the one
    at j when tokens (i + k, j + k) match for k < n, so the n-gram mask is the (n − 1)-gram mask AND the next
    token's mask shifted right by n − 1; a popcount counts. Keys longer than a word are read in windows that
    overlap by max_order − 1 tokens, each owning its first bits. Returns [(M, T − n + 1) for n = 1..max_order].
    """
    (M, T), K = query.shape, keys.shape[1]
    dtype, word = (torch.int32, 30) if K <= 30 else (torch.int64, 62)  # shifts never reach the sign bit
    step = word - (max_order - 1) if K > word else word
    counts = [torch.zeros(M, max(T - n + 1, 0), dtype=dtype, device=query.device) for n in range(1, max_order + 1)]
    query = query.to(dtype)
    columns = keys.to(dtype).t().contiguous().unsqueeze(-1)  # (K, M, 1): one key token of every row
    equal = torch.empty(M, T, dtype=dtype, device=query.device)  # eq written as 0/1 integers: no bool copy
    for start in range(0, K, step):
        bits = torch.zeros(M, T, dtype=dtype, device=query.device)  # (M, T): bit j = query_i == key_{start + j}
        for j in range(min(word, K - start)):
            torch.eq(query, columns[start + j], out=equal)
            bits.add_(equal, alpha=1 << j)  # distinct powers of two: adding is OR-ing
        owned = (1 << min(step, K - start)) - 1  # n-grams starting in this window's own part
        grams = bits
        for n in range(1, min(max_order, T) + 1):
            if n > 1:
                grams = grams[:, :-1] & (bits[:, n - 1:] >> (n - 1))
            counts[n - 1] += _popcount(grams & owned if K > step else grams)
    return counts


def batched_bleu_statistics(hyp_tokens: torch.Tensor, ref_tokens: torch.Tensor, pad_id: int,
                            max_order: int = 4) -> torch.Tensor:
    """(B, 2 + 2N) BLEU statistics of a whole batch of token-id sequences in tensor ops (no per-sample loop).

    hyp_tokens (B, T); ref_tokens (B, R, T') or (B, T'); a sequence ends at its first `pad_id`, and every
    one of the R rows counts as a reference. For each hypothesis n-gram, its count in the hypothesis and in
    each reference come from bit-packed token equalities (`_ngram_match_counts`). Clipped matches =
    Σ over hypothesis positions of min(c_hyp, max_r c_ref) / c_hyp = Σ over distinct n-grams of min(c_hyp, c_ref).
    """
    if hyp_tokens.dim() != 2:
        raise ValueError(f"hyp_tokens must be (B, T), got shape {tuple(hyp_tokens.shape)}")
    refs = ref_tokens.unsqueeze(1) if ref_tokens.dim() == 2 else ref_tokens
    if refs.dim() != 3 or refs.shape[0] != hyp_tokens.shape[0]:
        raise ValueError(f"ref_tokens must be (B, T) or (B, R, T) with B = {hyp_tokens.shape[0]}, got {tuple(ref_tokens.shape)}")
    device = hyp_tokens.device
    hyp, refs = hyp_tokens.long(), refs.long().to(device)
    (B, T), (R, T2) = hyp.shape, refs.shape[1:]
    hyp_len, ref_lens = length_before_end(hyp, pad_id), length_before_end(refs, pad_id)  # (B,), (B, R)
    diff = (ref_lens - hyp_len.unsqueeze(1)).abs()
    closest = (diff * 10 ** 6 + ref_lens).argmin(1)  # nearest length, ties to the shorter
    ref_len = ref_lens.gather(1, closest.unsqueeze(1)).squeeze(1)
    stats = torch.zeros(B, 2 + 2 * max_order, dtype=torch.float64, device=device)
    stats[:, 0], stats[:, 1] = hyp_len.double(), ref_len.double()
    for n in range(1, max_order + 1):
        stats[:, 1 + max_order + n] = (hyp_len - n + 1).clamp(min=0).double()
    if T == 0 or B == 0:
        return stats
    if max(int(hyp.abs().max()), int(refs.abs().max()) if refs.numel() else 0) >= 2 ** 30:  # ids that need int64
        _, inverse = torch.unique(torch.cat([hyp.flatten(), refs.flatten()]), return_inverse=True)
        hyp, refs = inverse[:hyp.numel()].view_as(hyp), inverse[hyp.numel():].view_as(refs)
    hyp, refs = hyp.int(), refs.int()  # comparisons on int32 are ~2x faster than on int64
    # Tokens past a sequence's end become distinct negative ids: no n-gram through them matches a real one.
    hyp = torch.where(torch.arange(T, device=device) < hyp_len.unsqueeze(1), hyp, -1 - torch.arange(T, device=device, dtype=torch.int32))
    refs = torch.where(torch.arange(T2, device=device) < ref_lens.unsqueeze(2), refs, -1 - T - torch.arange(T2, device=device, dtype=torch.int32))
    c_hyp = _ngram_match_counts(hyp, hyp, max_order)  # [(B, T-n+1)]
    c_ref = _ngram_match_counts(hyp.repeat_interleave(R, 0), refs.reshape(B * R, T2), max_order)  # [(B·R, T-n+1)]
    for n in range(1, min(max_order, T) + 1):
        most_in_a_ref = c_ref[n - 1].view(B, R, -1).amax(1)  # the most any single reference holds
        clipped = torch.minimum(c_hyp[n - 1], most_in_a_ref).double() / c_hyp[n - 1].clamp(min=1)
        ok = torch.arange(T - n + 1, device=device) <= (hyp_len - n).unsqueeze(1)  # the hypothesis n-grams that exist
        stats[:, 1 + n] = torch.round((clipped * ok).sum(1))
    return stats


def batched_sentence_bleu(hyp_tokens: torch.Tensor, ref_tokens: torch.Tensor, pad_id: int, max_order: int = 4,
                          smooth_method: str = "exp", smooth_value: float | None = None,
                          effective_order: bool = True) -> torch.Tensor:
    """(B,) sentence BLEU (0..100) of each row of a token batch against its reference(s), all at once;
    equals `sentence_bleu` on the same token ids (and sacrebleu with tokenize="none")."""
    stats = batched_bleu_statistics(hyp_tokens, ref_tokens, pad_id, max_order)
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
