"""SeqGAN (Yu, Zhang, Wang & Yu, AAAI 2017) on its synthetic-oracle experiment (survey §2.1).

The pieces a notebook composes: a randomly initialised LSTM *oracle* (the true data distribution, so the
NLL of generated text under it is exact, with a standard error from its per-sequence values), a real-vs-generated
discriminator, fast batched sampling, and the Monte-Carlo rollout reward of the paper's Eq. 4 computed by a delayed
copy of the generator. The generator is a `sequences.policy.SequencePolicy`; its policy-gradient step uses
`rl.policy_gradient.reinforce_loss`.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from .policy import SequencePolicy


def make_oracle(vocab_size: int, hidden: int = 32, seed: int = 0, init_std: float = 1.0) -> SequencePolicy:
    """An LSTM with every parameter drawn from N(0, init_std²) (the paper's oracle: N(0, 1)), frozen.

    The large random weights make its next-token distributions peaked, so its samples have structure a
    generator can learn; `oracle_nll` scores any sequence exactly under it.
    """
    oracle = SequencePolicy(vocab_size, hidden=hidden, cell="lstm")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in oracle.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * init_std)
    return oracle.requires_grad_(False).eval()


@torch.no_grad()
def oracle_nll(oracle: SequencePolicy, tokens: torch.Tensor, batch_size: int = 4096) -> float:
    """NLL-oracle (the paper's metric): mean over sequences and positions of -log p_oracle(y_t | y_<t)."""
    total = sum(-oracle.log_prob(chunk).sum().item() for chunk in tokens.split(batch_size))
    return total / tokens.numel()


@torch.no_grad()
def oracle_nll_per_sequence(oracle: SequencePolicy, tokens: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """(B,) each sequence's mean over positions of -log p_oracle(y_t | y_<t). Their mean is `oracle_nll` (for
    sequences of one length); their standard deviation over √B is the standard error of that estimate."""
    return torch.cat([-oracle.log_prob(chunk).mean(1) for chunk in tokens.split(batch_size)])


class SequenceDiscriminator(nn.Module):
    """D(Y): the probability that a token sequence is real, as a logit (B,).

    A small version of the paper's CNN: embedding, convolutions of several widths, max-over-time pooling,
    a highway layer, dropout, and a linear output.
    """

    def __init__(self, vocab_size: int, embed: int = 16, widths=(2, 3, 4), filters: int = 16, dropout: float = 0.25):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed)
        self.convs = nn.ModuleList(nn.Conv1d(embed, filters, w) for w in widths)
        features = filters * len(widths)
        self.highway = nn.Linear(features, 2 * features)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(features, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens).transpose(1, 2)  # (B, E, T)
        h = torch.cat([F.relu(conv(x)).amax(-1) for conv in self.convs], -1)
        transform, gate = self.highway(h).chunk(2, -1)
        gate = torch.sigmoid(gate)
        h = gate * F.relu(transform) + (1 - gate) * h  # highway: carry what needs no transforming
        return self.out(self.dropout(h)).squeeze(-1)


def discriminator_step(disc: SequenceDiscriminator, optimizer: torch.optim.Optimizer, real: torch.Tensor,
                       fake: torch.Tensor) -> dict:
    """One minibatch of binary cross-entropy: real → 1, generated → 0. Returns loss and accuracy."""
    disc.train()
    logits = disc(torch.cat([real, fake]))
    labels = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))]).to(logits)
    loss = F.binary_cross_entropy_with_logits(logits, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"loss": loss.item(), "accuracy": ((logits > 0).float() == labels).float().mean().item()}


@torch.no_grad()
def complete(policy: SequencePolicy, tokens: torch.Tensor, keep: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Monte-Carlo completion MC^{G_β}: row i keeps its first `keep[i]` tokens, the rest are sampled.

    All rows advance together, one recurrent step per position, whatever their prefix length; a
    token is drawn by inverse-CDF (one uniform per row, cheaper than `torch.multinomial` on a CPU).
    """
    M, T = tokens.shape
    out = tokens.clone()
    keep = keep.to(tokens.device).view(M)
    state, step_input = None, torch.full((M, 1), policy.bos, dtype=torch.long, device=tokens.device)
    for t in range(T):
        h, state = policy.rnn(policy.embed(step_input), state)
        if bool((keep > t).all()):
            chosen = tokens[:, t]  # every row still inside its prefix: nothing to sample
        else:
            cdf = torch.softmax(policy.head(h[:, -1]), -1).cumsum(-1)
            u = torch.rand(M, 1, generator=generator).to(tokens.device) * cdf[:, -1:]
            sampled = torch.searchsorted(cdf, u).squeeze(-1).clamp(max=policy.vocab_size - 1)
            chosen = torch.where(keep > t, tokens[:, t], sampled)
        out[:, t] = chosen
        step_input = chosen.unsqueeze(-1)
    return out


def draw_sequences(policy: SequencePolicy, n: int, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, length) token sequences sampled from `policy`: `complete` with empty prefixes (inverse-CDF draws, several
    times faster on a CPU than `SequencePolicy.sample`, which also returns log-probabilities)."""
    device = policy.head.weight.device
    empty = torch.zeros(n, length, dtype=torch.long, device=device)
    return complete(policy, empty, torch.zeros(n, dtype=torch.long), generator)


@torch.no_grad()
def rollout_rewards(rollout: SequencePolicy, disc: SequenceDiscriminator, tokens: torch.Tensor, n_rollouts: int,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Q(Y_{1:t-1}, y_t) of the paper's Eq. 4 for every position of every sequence, (B, T).

    For t < T: the mean of D over `n_rollouts` completions of the prefix Y_{1:t} sampled by the rollout
    policy G_β; for t = T: D(Y_{1:T}) itself. D's output is the probability "real". All B·(T-1)·N
    completions are one batch (`complete`), scored by D in one call.
    """
    was_training = disc.training
    disc.eval()
    B, T = tokens.shape
    keep = torch.arange(1, T, device=tokens.device).repeat_interleave(n_rollouts * B)  # row (t, n, b)
    completed = complete(rollout, tokens.repeat((T - 1) * n_rollouts, 1), keep, generator)
    rewards = torch.empty(B, T, device=tokens.device)
    rewards[:, :T - 1] = torch.sigmoid(disc(completed)).view(T - 1, n_rollouts, B).mean(1).T
    rewards[:, T - 1] = torch.sigmoid(disc(tokens))
    disc.train(was_training)
    return rewards


def delayed_copy(policy: SequencePolicy) -> SequencePolicy:
    """The rollout policy G_β: a frozen copy of the generator, moved toward it by `delayed_update`."""
    return copy.deepcopy(policy).requires_grad_(False)


@torch.no_grad()
def delayed_update(rollout: SequencePolicy, policy: SequencePolicy, rate: float = 0.8):
    """θ_β ← rate·θ_β + (1 - rate)·θ (the SeqGAN code's `update_rate` = 0.8): the rollouts lag the generator."""
    for p_roll, p in zip(rollout.parameters(), policy.parameters()):
        p_roll.mul_(rate).add_(p.detach(), alpha=1 - rate)
