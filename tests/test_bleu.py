"""BLEU in rlgen_utils.rewards against sacrebleu (tokenize="none"), the seed's worked example, and the batched version."""
import logging
import random

import pytest
import sacrebleu
import torch

from rlgen_utils.rewards.bleu import BLEUReward, batched_sentence_bleu, corpus_bleu, modified_precision, sentence_bleu

logging.getLogger("sacrebleu").setLevel(logging.ERROR)  # its "enable effective_order" warning
SMOOTHING = ["exp", "none", "floor", "add-k"]


def random_case(rng, vocab=None, max_refs=3):
    vocab = vocab or rng.choice([3, 5, 12])
    hyp = [str(rng.randrange(vocab)) for _ in range(rng.choice([0, 1, 2, 3, 4, 6, 10, 17]))]
    refs = [[str(rng.randrange(vocab)) for _ in range(rng.choice([1, 2, 3, 5, 8, 13]))] for _ in range(rng.randint(1, max_refs))]
    return hyp, refs


def test_seed_worked_example():
    hyp, ref = "the cat sat on the mat".split(), "the cat is on the mat".split()
    assert modified_precision(hyp, [ref], 1) == (5, 6)
    assert modified_precision(hyp, [ref], 2) == (3, 5)
    # clipping: "the the the" against "the cat" matches "the" once
    assert modified_precision("the the the".split(), [["the", "cat"]], 1) == (1, 3)


@pytest.mark.parametrize("smooth", SMOOTHING)
@pytest.mark.parametrize("effective_order", [True, False])
def test_sentence_bleu_matches_sacrebleu(smooth, effective_order):
    rng = random.Random(hash((smooth, effective_order)) % 1000)
    for _ in range(400):
        hyp, refs = random_case(rng)
        ours = sentence_bleu(hyp, refs, smooth_method=smooth, effective_order=effective_order)
        ref = sacrebleu.sentence_bleu(" ".join(hyp), [" ".join(r) for r in refs], smooth_method=smooth,
                                      tokenize="none", use_effective_order=effective_order).score
        assert ours == pytest.approx(ref, abs=1e-6), (hyp, refs)


@pytest.mark.parametrize("smooth", SMOOTHING)
def test_corpus_bleu_matches_sacrebleu(smooth):
    rng = random.Random(7)
    for _ in range(40):
        n_refs = rng.randint(1, 3)  # sacrebleu wants the same number of reference streams for every segment
        cases = [random_case(rng, vocab=6) for _ in range(rng.randint(1, 30))]
        hyps = [h for h, _ in cases]
        refs = [(r * n_refs)[:n_refs] for _, r in cases]
        ours = corpus_bleu(hyps, refs, smooth_method=smooth)
        streams = [[" ".join(r[k]) for r in refs] for k in range(n_refs)]
        ref = sacrebleu.corpus_bleu([" ".join(h) for h in hyps], streams, smooth_method=smooth, tokenize="none").score
        assert ours == pytest.approx(ref, abs=1e-6)


def _pad(seqs, length, pad):
    return torch.tensor([s + [pad] * (length - len(s)) for s in seqs])


@pytest.mark.parametrize("smooth", ["exp", "floor", "add-k", "none"])
def test_batched_bleu_matches_sacrebleu(smooth):
    rng, pad, refs_per = random.Random(3), 99, 2
    cases = [random_case(rng, vocab=5, max_refs=1) for _ in range(500)]
    hyps = [[int(t) for t in h] for h, _ in cases]
    refs = [[[int(t) for t in r] for r in rs] + [[rng.randrange(5) for _ in range(rng.randint(1, 9))]] for _, rs in cases]
    hyp_t = _pad(hyps, 20, pad)
    ref_t = torch.stack([_pad(r, 16, pad) for r in refs])  # (B, 2, 16)
    ours = batched_sentence_bleu(hyp_t, ref_t, pad_id=pad, smooth_method=smooth)
    expected = torch.tensor([sacrebleu.sentence_bleu(" ".join(map(str, h)), [" ".join(map(str, x)) for x in r],
                                                     smooth_method=smooth, tokenize="none").score
                             for h, r in zip(hyps, refs)], dtype=torch.float64)
    assert ours.shape == (500,) and refs_per == ref_t.shape[1]
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)
    # single reference given as (B, T), and ids beyond 2**16 (compacted before coding n-grams)
    one = batched_sentence_bleu(hyp_t * 100003 % (2 ** 40), ref_t[:, 0] * 100003 % (2 ** 40), pad_id=pad * 100003 % (2 ** 40), smooth_method=smooth)
    expected_one = [sentence_bleu(h, [r[0]], smooth_method=smooth) for h, r in zip(hyps, refs)]
    torch.testing.assert_close(one, torch.tensor(expected_one, dtype=torch.float64), atol=1e-6, rtol=0)


def test_bleu_reward_interface_and_errors():
    hyp = torch.tensor([[1, 2, 3, 4, 0], [1, 2, 0, 0, 0]])
    reward = BLEUReward(pad_id=0)(hyp, references=torch.tensor([[1, 2, 3, 4, 0], [4, 3, 0, 0, 0]]))
    assert reward.shape == (2,) and reward[0] == pytest.approx(1.0) and reward[1] == 0.0
    with pytest.raises(ValueError, match="references"):
        BLEUReward(pad_id=0)(hyp)
    with pytest.raises(ValueError, match="smooth_method"):
        sentence_bleu(["a"], [["a"]], smooth_method="bogus")
    with pytest.raises(TypeError, match="list of references"):
        sentence_bleu("a b", "a b")
    with pytest.raises(ValueError, match="one list per hypothesis"):
        corpus_bleu([["a"]], [])


@pytest.mark.parametrize("hyp_len, ref_len", [(12, 25), (40, 29), (100, 150)])
def test_batched_bleu_matches_sacrebleu_on_long_and_repetitive_sequences(hyp_len, ref_len):
    """Few words, long sentences: many repeated n-grams, and keys read in several bit-packed windows
    (int32 words up to 30 tokens, int64 windows of 62 overlapping by max_order − 1 beyond)."""
    g = torch.Generator().manual_seed(hyp_len)
    hyp = torch.randint(1, 4, (64, hyp_len), generator=g)
    ref = torch.randint(1, 4, (64, 2, ref_len), generator=g)
    hyp[::3, hyp_len // 2:] = 0  # some sequences end early (pad 0)
    ref[::5, 1, ref_len // 3:] = 0
    ours = batched_sentence_bleu(hyp, ref, pad_id=0)

    def text(row):
        row = row.tolist()
        return " ".join(map(str, row[:row.index(0)] if 0 in row else row))
    expected = torch.tensor([sacrebleu.sentence_bleu(text(h), [text(r) for r in rs], tokenize="none").score
                             for h, rs in zip(hyp, ref)], dtype=torch.float64)
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)
