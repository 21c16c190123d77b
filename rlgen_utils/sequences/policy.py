"""Autoregressive token policies π(y_t | y_<t) shared by sections 2–4 (generators, oracles, controllers).

A sequence policy is a language model read as an RL policy (survey §2.1): the state is the prefix,
the action is the next token, and the log-probabilities feed the losses in `rl.policy_gradient`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..runtime import sample_categorical


class SequencePolicy(nn.Module):
    """Embedding → LSTM/GRU → next-token logits, with an optional value head for PPO.

    Token ids are 0..vocab_size-1; an extra id `vocab_size` is the begin-of-sequence input, so every
    sequence's first token is also predicted. `log_prob`, `entropy` and `values` score given sequences
    in one batched pass; `sample` generates a batch step by step (optionally continuing a prefix).
    """

    def __init__(self, vocab_size: int, hidden: int = 32, embed: int | None = None, cell: str = "lstm",
                 layers: int = 1, value_head: bool = False):
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f"unknown cell {cell!r}: use 'lstm' or 'gru'")
        self.vocab_size, self.bos = vocab_size, vocab_size
        self.embed = nn.Embedding(vocab_size + 1, embed or hidden)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(embed or hidden, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)
        self.value_head = nn.Linear(hidden, 1) if value_head else None

    def _inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        bos = torch.full_like(tokens[:, :1], self.bos)
        return torch.cat([bos, tokens[:, :-1]], dim=1)

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, H): the state that predicts each token of `tokens` from the tokens before it."""
        self.rnn.flatten_parameters()  # a deepcopy on CUDA leaves cuDNN's weights apart (a warning); no-op on the CPU
        out, _ = self.rnn(self.embed(self._inputs(tokens)))
        return out

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, V) next-token logits for every position of `tokens` (teacher forcing)."""
        return self.head(self.hidden_states(tokens))

    def log_prob(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) log π(y_t | y_<t) of the given tokens."""
        return torch.distributions.Categorical(logits=self.logits(tokens)).log_prob(tokens)

    def logp_entropy_value(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(log π(y_t|y_<t), entropy of π(·|y_<t), value V(y_<t) or None), each (B, T), in one pass."""
        h = self.hidden_states(tokens)
        dist = torch.distributions.Categorical(logits=self.head(h))
        value = self.value_head(h).squeeze(-1) if self.value_head is not None else None
        return dist.log_prob(tokens), dist.entropy(), value

    @torch.no_grad()
    def sample(self, n: int, length: int, temperature: float = 1.0, prefix: torch.Tensor | None = None,
               generator: torch.Generator | None = None, greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Generate `n` sequences of `length` tokens (including a given `prefix` (n, k), which is kept).

        Returns (tokens (n, length), log π of each token (n, length) at temperature 1; the prefix's
        positions are scored too). Sampling runs the recurrent cell once per position for the whole batch.
        """
        device = self.head.weight.device
        tokens = torch.empty(n, length, dtype=torch.long, device=device)
        logp = torch.empty(n, length, device=device)
        k = 0 if prefix is None else prefix.shape[1]
        if k > length:
            raise ValueError(f"prefix of length {k} is longer than the requested length {length}")
        state, step_input = None, torch.full((n, 1), self.bos, dtype=torch.long, device=device)
        self.rnn.flatten_parameters()
        if k:
            tokens[:, :k] = prefix
            inputs = torch.cat([step_input, prefix[:, :-1]], dim=1)
            out, state = self.rnn(self.embed(inputs), state)
            logp[:, :k] = torch.log_softmax(self.head(out), -1).gather(-1, prefix.unsqueeze(-1)).squeeze(-1)
            step_input = prefix[:, -1:]
        for t in range(k, length):
            out, state = self.rnn(self.embed(step_input), state)
            logits = self.head(out[:, -1])
            log_probs = torch.log_softmax(logits, -1)
            if greedy:
                choice = logits.argmax(-1)
            else:
                probs = torch.softmax(logits / temperature, -1)
                choice = sample_categorical(probs, generator)
            tokens[:, t] = choice
            logp[:, t] = log_probs.gather(-1, choice.unsqueeze(-1)).squeeze(-1)
            step_input = choice.unsqueeze(-1)
        return tokens, logp


def sequence_mle_loss(policy: SequencePolicy, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean negative log-likelihood per token (teacher forcing): the MLE pre-training objective."""
    logits = policy.logits(tokens)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1), reduction="none")
    nll = nll.view_as(tokens).float()
    return nll.mean() if mask is None else (nll * mask).sum() / mask.sum().clamp(min=1)
