"""rlgen_utils.sequences.policy.SequencePolicy: sampling and scoring agree; prefixes are kept."""
import torch

from rlgen_utils.sequences.policy import SequencePolicy, sequence_mle_loss


def test_sample_log_probs_equal_teacher_forced_log_probs():
    torch.manual_seed(0)
    for cell in ("lstm", "gru"):
        policy = SequencePolicy(vocab_size=7, hidden=16, cell=cell, value_head=True)
        tokens, logp = policy.sample(5, 6, generator=torch.Generator().manual_seed(1))
        assert tokens.shape == (5, 6) and tokens.max() < 7
        assert torch.allclose(logp, policy.log_prob(tokens), atol=1e-5)
        lp, ent, value = policy.logp_entropy_value(tokens)
        assert torch.allclose(lp, logp, atol=1e-5) and ent.shape == value.shape == (5, 6)


def test_prefix_is_kept_and_scored():
    torch.manual_seed(0)
    policy = SequencePolicy(vocab_size=5, hidden=8)
    prefix = torch.tensor([[1, 2], [3, 4]])
    tokens, logp = policy.sample(2, 5, prefix=prefix)
    assert torch.equal(tokens[:, :2], prefix)
    assert torch.allclose(logp, policy.log_prob(tokens), atol=1e-5)


def test_greedy_is_deterministic_and_mle_is_mean_nll():
    torch.manual_seed(0)
    policy = SequencePolicy(vocab_size=4, hidden=8)
    a, _ = policy.sample(3, 4, greedy=True)
    b, _ = policy.sample(3, 4, greedy=True)
    assert torch.equal(a, b)
    tokens = torch.randint(0, 4, (6, 5))
    assert torch.allclose(sequence_mle_loss(policy, tokens), -policy.log_prob(tokens).mean(), atol=1e-6)
