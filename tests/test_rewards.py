"""The §2.2 reward sources: discriminator reward and the rule rewards (length, repetition, keyword), alone and
composed with WeightedSum; checked by hand and against brute-force Python loops."""
import pytest
import torch

from rlgen_utils.datasets.toy_language import EOS, WORDS, gold_score, text_to_tokens
from rlgen_utils.rewards.base import Reward, WeightedSum
from rlgen_utils.rewards.learned import DiscriminatorReward
from rlgen_utils.rewards.rules import KeywordReward, LengthReward, RepetitionPenalty



def _brute_repetition(row, eos, n):
    words = []
    for t in row:
        if t == eos:
            break
        words.append(t)
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return -(len(grams) - len(set(grams))) / max(len(grams), 1)


def test_length_reward_by_hand():
    x = torch.tensor([[3, 4, 0, 5], [3, 0, 0, 0], [1, 2, 3, 4], [0, 1, 2, 3]])
    assert LengthReward(EOS, target=2)(x).tolist() == [1.0, 0.5, 1.0, 0.0]
    assert LengthReward(EOS, target=4)(x).tolist() == [0.5, 0.25, 1.0, 0.0]
    with pytest.raises(ValueError, match="positive length"):
        LengthReward(EOS, target=0)


def test_repetition_penalty_by_hand_and_against_brute_force():
    x = torch.tensor([[5, 5, 5, 5, 0, 5], [1, 2, 1, 2, 0, 0], [1, 2, 3, 4, 5, 6], [7, 0, 7, 7, 7, 7]])
    # bigrams: (5,5)×3 → 2 repeats of 3; (1,2),(2,1),(1,2) → 1 of 3; all distinct; none (a single word).
    assert torch.allclose(RepetitionPenalty(EOS, n=2)(x), torch.tensor([-2 / 3, -1 / 3, 0.0, 0.0]))
    g = torch.Generator().manual_seed(0)
    for n in (1, 2, 3):
        batch = torch.randint(0, 4, (200, 9), generator=g)
        expected = torch.tensor([_brute_repetition(r, EOS, n) for r in batch.tolist()])
        assert torch.allclose(RepetitionPenalty(EOS, n=n)(batch), expected)


def test_keyword_reward_any_and_count():
    x = torch.tensor([[3, 4, 3, 0, 3], [4, 4, 0, 3, 3], [0, 3, 3, 3, 3]])
    assert KeywordReward([3], EOS, mode="count")(x).tolist() == [2.0, 0.0, 0.0]  # after the end does not count
    assert KeywordReward([3, 4], EOS, mode="any")(x).tolist() == [1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="unknown mode"):
        KeywordReward([3], EOS, mode="most")


def test_discriminator_reward_is_a_detached_probability():
    d = torch.nn.Linear(3, 1)
    x = torch.randn(5, 3)
    logits = d(x).squeeze(-1)
    disc = lambda s: d(s).squeeze(-1)  # noqa: E731
    prob = DiscriminatorReward(disc)(x)
    assert torch.allclose(prob, torch.sigmoid(logits)) and not prob.requires_grad
    assert torch.allclose(DiscriminatorReward(disc, "log")(x), torch.log(torch.sigmoid(logits)), atol=1e-6)
    assert torch.allclose(DiscriminatorReward(disc, "logit")(x), logits)
    with pytest.raises(ValueError, match="unknown kind"):
        DiscriminatorReward(disc, "odds")


def test_rules_compose_with_weights_on_the_testbed():
    x = text_to_tokens(["the good cat .", "good good good good good ."])
    length, rep = LengthReward(EOS, target=5), RepetitionPenalty(EOS)
    keyword = KeywordReward([WORDS.index("good")], EOS, mode="count")
    rules = 1.0 * length + 0.5 * rep + 0.2 * keyword
    assert isinstance(rules, WeightedSum) and all(isinstance(r, Reward) for _, r in rules.terms)
    parts = rules.components(x)
    assert torch.allclose(parts["length"], torch.tensor([0.6, 1.0]))
    assert torch.allclose(parts["repetition"], torch.tensor([0.0, -3 / 4]))
    assert torch.allclose(parts["keyword"], torch.tensor([1.0, 5.0]))
    assert torch.allclose(rules(x), torch.tensor([0.6 + 0.2, 1.0 - 0.375 + 1.0]))
    # The gamed sentence wins on the rules and loses on gold: the testbed's hacking case in miniature.
    assert rules(x)[1] > rules(x)[0] and gold_score(x)[1] < gold_score(x)[0]
