"""A small attention seq2seq model and self-critical sequence training (survey §2.1, Rennie et al. 2017).

The translation model is a policy π(y_t | y_<t, x): `decode` samples or greedily decodes a whole batch
(one recurrent step per position for all sentences), `log_prob` scores given outputs by teacher forcing
(the MLE loss and the policy-gradient surrogate both use it), and `scst_loss` is SCST's REINFORCE with
the greedy decode's reward as the baseline. Token conventions follow `data.make_translation_pairs`:
target words 0..V-1, eos = V, pad = V + 1, begin = V + 2; source pad = source vocabulary size.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..rl.policy_gradient import reinforce_loss
from ..runtime import sample_categorical


class Seq2Seq(nn.Module):
    """Bidirectional GRU encoder, GRU decoder with dot-product (Luong) attention over the source."""

    def __init__(self, src_vocab: int, tgt_vocab: int, hidden: int = 64, embed: int = 32):
        super().__init__()
        if hidden % 2:
            raise ValueError(f"hidden must be even (two encoder directions), got {hidden}")
        self.src_pad, self.eos, self.pad, self.bos = src_vocab, tgt_vocab, tgt_vocab + 1, tgt_vocab + 2
        self.src_embed = nn.Embedding(src_vocab + 1, embed, padding_idx=src_vocab)
        self.encoder = nn.GRU(embed, hidden // 2, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(hidden, hidden)
        self.tgt_embed = nn.Embedding(tgt_vocab + 3, embed)
        self.decoder = nn.GRU(embed, hidden, batch_first=True)
        self.combine = nn.Linear(2 * hidden, hidden)
        self.out = nn.Linear(hidden, tgt_vocab + 1)  # target words and eos

    def encode(self, src: torch.Tensor):
        """(memory (B, S, H), source mask (B, S), initial decoder state (1, B, H))."""
        mask = src != self.src_pad
        memory, _ = self.encoder(self.src_embed(src))
        mean = (memory * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return memory, mask, torch.tanh(self.bridge(mean)).unsqueeze(0)

    def _logits(self, h: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = (h @ memory.transpose(1, 2)).masked_fill(~mask.unsqueeze(1), float("-inf"))  # (B, T, S)
        context = torch.softmax(scores, -1) @ memory
        return self.out(torch.tanh(self.combine(torch.cat([h, context], -1))))

    def logits(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """(B, T, V+1) next-token logits for every position of `tgt` (teacher forcing)."""
        memory, mask, state = self.encode(src)
        inputs = torch.cat([torch.full_like(tgt[:, :1], self.bos), tgt[:, :-1]], 1)
        inputs = inputs.masked_fill(inputs == self.pad, self.eos)  # positions after eos: any valid id
        h, _ = self.decoder(self.tgt_embed(inputs), state)
        return self._logits(h, memory, mask)

    def log_prob(self, src: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log π(y_t | y_<t, x) (B, T), mask (B, T) of the real positions: the words and the eos)."""
        mask = tgt != self.pad
        logp = torch.log_softmax(self.logits(src, tgt), -1)
        logp = logp.gather(-1, tgt.masked_fill(~mask, 0).unsqueeze(-1)).squeeze(-1)
        return logp * mask, mask

    @torch.no_grad()
    def decode(self, src: torch.Tensor, max_len: int, greedy: bool = True, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, max_len) output ids for a batch of sources: greedy or sampled; pad after each eos."""
        memory, mask, state = self.encode(src)
        B = src.shape[0]
        out = torch.full((B, max_len), self.pad, dtype=torch.long, device=src.device)
        step = torch.full((B, 1), self.bos, dtype=torch.long, device=src.device)
        done = torch.zeros(B, dtype=torch.bool, device=src.device)
        for t in range(max_len):
            h, state = self.decoder(self.tgt_embed(step), state)
            logits = self._logits(h, memory, mask)[:, 0]
            if greedy:
                choice = logits.argmax(-1)
            else:
                choice = sample_categorical(torch.softmax(logits / temperature, -1), generator)
            out[:, t] = torch.where(done, self.pad, choice)
            done = done | (choice == self.eos)
            if bool(done.all()):
                break
            step = choice.unsqueeze(-1)
        return out


def seq2seq_mle_loss(model: Seq2Seq, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood per target token (words and eos): the MLE objective."""
    logp, mask = model.log_prob(src, tgt)
    return -logp.sum() / mask.sum()


def word_ids_before_end(tokens: torch.Tensor, eos: int, pad: int) -> list:
    """Token rows → lists of word ids, cut at the first eos/pad (what BLEU scores)."""
    rows = []
    for row in tokens.tolist():
        words = []
        for t in row:
            if t in (eos, pad):
                break
            words.append(t)
        rows.append(words)
    return rows


def scst_loss(logp: torch.Tensor, mask: torch.Tensor, sample_reward: torch.Tensor,
              greedy_reward: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-critical sequence training (Rennie et al. 2017): REINFORCE with the greedy decode as baseline.

    A = r(y^s) - r(ŷ) per sentence (B,), applied to every token of the sample: samples that beat the
    model's own test-time output are made more likely, worse ones less. Returns (loss, A).
    """
    advantage = (sample_reward - greedy_reward).detach()
    return reinforce_loss(logp, advantage.unsqueeze(1).expand_as(logp), mask), advantage
