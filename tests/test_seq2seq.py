"""The seq2seq policy and SCST step (rlgen_utils.sequences.seq2seq) and the synthetic translation data (rlgen_utils.datasets.translation)."""
import pytest
import torch
import torch.nn.functional as F

from rlgen_utils.datasets.translation import make_translation_pairs, translate, translation_rules
from rlgen_utils.sequences.seq2seq import Seq2Seq, scst_loss, seq2seq_mle_loss, word_ids_before_end


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return Seq2Seq(src_vocab=6, tgt_vocab=5, hidden=8, embed=8)  # eos 5, pad 6, begin 7; source pad 6


def test_scst_advantage_sign_moves_log_probability():
    model = tiny_model()
    src = torch.tensor([[0, 1, 2], [3, 4, 6]])
    sample = torch.tensor([[1, 2, 5, 6], [0, 0, 3, 5]])
    before, mask = model.log_prob(src, sample)
    loss, advantage = scst_loss(before, mask, torch.tensor([0.9, 0.2]), torch.tensor([0.5, 0.6]))
    assert torch.allclose(advantage, torch.tensor([0.4, -0.4]))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    opt.zero_grad()
    loss.backward()
    opt.step()
    after, _ = model.log_prob(src, sample)
    change = (after - before).sum(1)
    assert change[0] > 0 > change[1]  # the better-than-greedy sample became likelier, the worse one less likely
    # no advantage, no update
    model.zero_grad()
    loss, advantage = scst_loss(*model.log_prob(src, sample), torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]))
    loss.backward()
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in model.parameters())


def test_log_prob_masks_after_eos_and_mle_loss_is_cross_entropy():
    model = tiny_model()
    src = torch.tensor([[0, 1, 2], [3, 4, 6]])
    tgt = torch.tensor([[1, 2, 5, 6], [0, 0, 3, 5]])
    logp, mask = model.log_prob(src, tgt)
    assert mask.tolist() == [[True, True, True, False], [True, True, True, True]]
    assert logp[0, 3] == 0
    logits = model.logits(src, tgt)
    ce = F.cross_entropy(logits.reshape(-1, 6), tgt.masked_fill(tgt == 6, -100).reshape(-1), ignore_index=-100)
    assert seq2seq_mle_loss(model, src, tgt).item() == pytest.approx(ce.item(), rel=1e-5)


def test_greedy_decode_is_the_argmax_of_teacher_forced_logits():
    model = tiny_model(1)
    src = torch.randint(0, 6, (20, 4))
    out = model.decode(src, max_len=6)
    logits = model.logits(src, out)
    mask = out != model.pad
    assert torch.equal(logits.argmax(-1)[mask], out[mask])
    # after the first eos everything is pad
    for row in out.tolist():
        if model.eos in row:
            assert all(t == model.pad for t in row[row.index(model.eos) + 1:])


def test_sampled_decode_follows_the_model_distribution():
    model = tiny_model(2)
    src = torch.tensor([[0, 1, 2, 3]]).repeat(4000, 1)
    out = model.decode(src, max_len=1, greedy=False, generator=torch.Generator().manual_seed(0))
    p = torch.softmax(model.logits(src[:1], out[:1])[0, 0], -1).detach()
    freq = torch.bincount(out[:, 0], minlength=6).float() / len(out)
    torch.testing.assert_close(freq, p, atol=0.03, rtol=0)


def test_strip_cuts_at_eos_or_pad():
    assert word_ids_before_end(torch.tensor([[1, 2, 5, 6], [3, 6, 6, 6], [5, 6, 6, 6]]), eos=5, pad=6) == [[1, 2], [3], []]


def test_translation_rules_on_a_hand_example():
    rules = {"idioms": [(1, 2)], "adjectives": [3], "nouns": [4], "particle": 99,
             "lexicon": {0: (10,), 3: (13,), 4: (14,), 5: (15, 16), (1, 2): (12,)}}
    # units: 0, (1 2), 3, 4, 5 → adjective 3 swaps with 4 → 0 (12) 4 3 5 → last unit to the front → 5 0 (12) 4 3
    assert translate([0, 1, 2, 3, 4, 5], rules) == [15, 16, 10, 12, 14, 13]

    class Always:
        def random(self):
            return 0.0

    assert translate([0, 1, 2, 3, 4, 5], rules, particle_prob=0.5, rng=Always()) == [15, 16, 10, 12, 14, 99, 13]


def test_make_translation_pairs_is_consistent_and_seeded():
    lang = dict(n_words=20, n_idioms=3, n_fertile=3, n_adjectives=4)
    a = make_translation_pairs(300, seed=0, **lang)
    b = make_translation_pairs(300, seed=0, **lang)
    c = make_translation_pairs(300, seed=1, **lang)
    assert torch.equal(a.src, b.src) and torch.equal(a.tgt, b.tgt) and not torch.equal(a.src[:50], c.src[:50])
    assert a.rules == c.rules and a.rules == translation_rules(**lang)
    eos, pad = a.tgt_vocab, a.tgt_vocab + 1
    for s, t in zip(a.src.tolist(), a.tgt.tolist()):
        words = [w for w in s if w != a.src_vocab]
        assert 4 <= len(words) <= 9
        assert t[:t.index(eos)] == translate(words, a.rules) and set(t[t.index(eos) + 1:]) <= {pad}
    fertile = set(a.rules["fertile"])
    assert any(w in fertile for s in a.src.tolist() for w in s)  # one-to-many words occur
    with pytest.raises(ValueError, match="exceeds n_words"):
        translation_rules(n_words=5, n_idioms=3, n_fertile=3, n_adjectives=4)
