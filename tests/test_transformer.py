"""rlgen_utils.sequences.transformer: causality, attention against PyTorch's fused kernel and a brute-force
loop, sampled log-probs against a recomputation, shapes, and the LM loss against a hand-written NLL."""
import math

import torch
import torch.nn.functional as F

from rlgen_utils.sequences.transformer import TinyGPT, causal_attention, lm_loss


def model(value_head=True, seed=0):
    torch.manual_seed(seed)
    m = TinyGPT(vocab_size=11, d_model=32, n_layers=2, n_heads=4, max_len=16, value_head=value_head)
    for p in m.parameters():  # larger weights than the init, so a leak across positions would show
        p.data.normal_(0, 0.3)
    return m.eval()


def test_attention_equals_sdpa_and_a_brute_force_loop():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 5, dtype=torch.float64) for _ in range(3))
    ours = causal_attention(q, k, v)
    assert torch.allclose(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-10)
    brute = torch.zeros_like(q)
    for b in range(2):
        for h in range(3):
            for t in range(7):
                w = [math.exp(float(q[b, h, t] @ k[b, h, s]) / math.sqrt(5)) for s in range(t + 1)]
                brute[b, h, t] = sum(wi * v[b, h, s] for s, wi in enumerate(w)) / sum(w)
    assert torch.allclose(ours, brute, atol=1e-10)


def test_causality_changing_later_tokens_leaves_earlier_outputs():
    m = model()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 11, (4, 12), generator=g)
    for t in (0, 5, 10):
        y = x.clone()
        y[:, t + 1:] = torch.randint(0, 11, (4, 11 - t), generator=g)
        a, b = m.logits(x), m.logits(y)
        assert torch.allclose(a[:, :t + 1], b[:, :t + 1], atol=1e-5)
        assert not torch.allclose(a[:, t + 1:], b[:, t + 1:], atol=1e-3)  # later positions do see the change
        va, vb = m.value_head(m.hidden_states(x)), m.value_head(m.hidden_states(y))
        assert torch.allclose(va[:, :t + 1], vb[:, :t + 1], atol=1e-5)


def test_sampled_log_probs_equal_a_recomputation_and_shapes():
    m = model()
    prompt = torch.randint(0, 11, (6, 5), generator=torch.Generator().manual_seed(2))
    completion, logp = m.generate(prompt, 4, generator=torch.Generator().manual_seed(3))
    assert completion.shape == logp.shape == (6, 4) and completion.dtype == torch.long
    assert torch.allclose(logp, m.completion_logp(prompt, completion), atol=1e-5)
    # an independent recomputation: the full LM's log-softmax at the positions before each completion token
    full = torch.log_softmax(m.logits(torch.cat([prompt, completion], 1)), -1)
    manual = torch.stack([full[i, 4 + t, completion[i, t]] for i in range(6) for t in range(4)]).view(6, 4)
    assert torch.allclose(logp, manual, atol=1e-5)
    lp, ent, val = m.completion_logp_entropy_value(prompt, completion)
    assert ent.shape == val.shape == (6, 4) and (ent >= 0).all() and (ent <= math.log(11) + 1e-5).all()
    assert m.completion_log_probs(prompt, completion).shape == (6, 4, 11)
    assert model(value_head=False).completion_logp_entropy_value(prompt, completion)[2] is None


def test_generation_is_seeded_and_greedy_is_the_argmax():
    m = model()
    prompt = torch.randint(0, 11, (5, 3), generator=torch.Generator().manual_seed(4))
    a, _ = m.generate(prompt, 3, generator=torch.Generator().manual_seed(5))
    b, _ = m.generate(prompt, 3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    greedy, _ = m.generate(prompt, 1, greedy=True)
    assert torch.equal(greedy[:, 0], m.logits(prompt)[:, -1].argmax(-1))


def test_lm_loss_is_the_masked_mean_nll():
    m = model()
    tokens = torch.randint(0, 11, (3, 6), generator=torch.Generator().manual_seed(6))
    mask = torch.zeros(3, 6)
    mask[:, 3:] = 1
    with torch.no_grad():
        logp = torch.log_softmax(m.logits(tokens), -1)
    nll = [-float(logp[i, t - 1, tokens[i, t]]) for i in range(3) for t in range(3, 6)]
    assert abs(lm_loss(m, tokens, mask).item() - sum(nll) / len(nll)) < 1e-5
