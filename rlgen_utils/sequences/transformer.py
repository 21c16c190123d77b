"""A tiny causal Transformer language model (nanoGPT-style; Radford et al. 2019, Vaswani et al. 2017) read as
an RL policy: the language model of the survey's NLP applications (§4.1), notebook 4.1.

Token and position embeddings, a few pre-LayerNorm blocks of causal multi-head self-attention and an MLP,
a language-model head, and an optional scalar value head on the same trunk (PPO's critic, as in RLHF).
`generate` continues a batch of prompts token by token, with categorical draws through
`rlgen_utils.runtime.sample_categorical` (a CPU generator, the book's convention); `completion_logp`
scores given continuations in one teacher-forced pass, so sampling and scoring agree (tests/test_transformer.py).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..runtime import sample_categorical


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ / √d + causal mask) v for (B, H, T, d) tensors, written out (Vaswani et al. 2017):
    position t attends to positions ≤ t only."""
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    future = torch.triu(torch.ones(T, T, dtype=torch.bool, device=q.device), diagonal=1)
    return torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1) @ v


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: one projection to q, k, v, heads attended separately, one output projection."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of n_heads ({n_heads})")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=-1)
        q, k, v = (z.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2) for z in (q, k, v))
        y = causal_attention(q, k, v).transpose(1, 2).reshape(B, T, D)
        return self.proj(y)


class Block(nn.Module):
    """Pre-LN Transformer block (GPT-2): x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """A causal Transformer LM over token ids 0..vocab_size-1, with an optional value head V(prefix).

    `logits(tokens)` (B, T, V) predicts token t+1 from tokens ≤ t. For prompt-completion pairs,
    `completion_logp(prompt, completion)` gives log π(y_t | x, y_<t) per completion token and
    `completion_logp_entropy_value` adds the entropy and the value of each state (x, y_<t).
    """

    def __init__(self, vocab_size: int, d_model: int = 64, n_layers: int = 2, n_heads: int = 4,
                 max_len: int = 32, value_head: bool = False):
        super().__init__()
        self.vocab_size, self.max_len = vocab_size, max_len
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.value_head = nn.Linear(d_model, 1) if value_head else None
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, d_model): the final (normalised) state at each position."""
        T = tokens.shape[1]
        if T > self.max_len:
            raise ValueError(f"sequence of length {T} is longer than max_len={self.max_len}")
        x = self.tok(tokens) + self.pos(torch.arange(T, device=tokens.device))
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, V): logits of the token after each position."""
        return self.head(self.hidden_states(tokens))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.logits(tokens)

    def completion_logp_entropy_value(self, prompt: torch.Tensor, completion: torch.Tensor):
        """For prompts (B, P) and completions (B, L): (log π(y_t|x, y_<t), entropy of π(·|x, y_<t),
        V(x, y_<t) or None), each (B, L), from one pass over the concatenation."""
        P, L = prompt.shape[1], completion.shape[1]
        h = self.hidden_states(torch.cat([prompt, completion], dim=1))[:, P - 1:P - 1 + L]
        log_probs = torch.log_softmax(self.head(h), dim=-1)
        logp = log_probs.gather(-1, completion.unsqueeze(-1)).squeeze(-1)
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        value = self.value_head(h).squeeze(-1) if self.value_head is not None else None
        return logp, entropy, value

    def completion_logp(self, prompt: torch.Tensor, completion: torch.Tensor) -> torch.Tensor:
        """(B, L): log π(y_t | x, y_<t) of each completion token."""
        return self.completion_logp_entropy_value(prompt, completion)[0]

    def completion_log_probs(self, prompt: torch.Tensor, completion: torch.Tensor) -> torch.Tensor:
        """(B, L, V): the whole next-token log-distribution at each completion step (for exact per-step KL)."""
        P, L = prompt.shape[1], completion.shape[1]
        h = self.hidden_states(torch.cat([prompt, completion], dim=1))[:, P - 1:P - 1 + L]
        return torch.log_softmax(self.head(h), dim=-1)

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, n_new: int, generator: torch.Generator | None = None,
                 greedy: bool = False, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Continue each prompt (B, P) by `n_new` tokens, the whole batch at once.

        Returns (completion (B, n_new), log π of each drawn token at temperature 1 (B, n_new)). Draws use
        `sample_categorical` with the given (CPU) generator; `greedy` takes the argmax instead.
        Each step re-reads the whole prefix (no key-value cache: the sequences here are a dozen tokens).
        """
        tokens = prompt
        completion, logp = [], []
        for _ in range(n_new):
            log_probs = torch.log_softmax(self.logits(tokens)[:, -1], dim=-1)
            if greedy:
                choice = log_probs.argmax(-1)
            else:
                choice = sample_categorical(torch.softmax(log_probs / temperature, dim=-1), generator)
            completion.append(choice)
            logp.append(log_probs.gather(-1, choice.unsqueeze(-1)).squeeze(-1))
            tokens = torch.cat([tokens, choice.unsqueeze(-1)], dim=1)
        return torch.stack(completion, 1), torch.stack(logp, 1)


def lm_loss(model: TinyGPT, tokens: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the positions where `loss_mask` (B, T) is set: token t is predicted
    from tokens < t, so `loss_mask[:, 0]` is ignored (supervised fine-tuning scores only the answer tokens)."""
    logits = model.logits(tokens[:, :-1])
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1), reduction="none")
    mask = loss_mask[:, 1:].to(nll.dtype).reshape(-1)
    return (nll * mask).sum() / mask.sum().clamp(min=1)
