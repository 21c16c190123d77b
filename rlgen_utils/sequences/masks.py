"""Where a token sequence ends: masks of the tokens before (or through) the first end token, for every
sequence module and reward. Sequences are (B, T) token tensors; everything after the first end is padding."""
from __future__ import annotations

import torch


def before_end(tokens: torch.Tensor, end: int) -> torch.Tensor:
    """(..., T) bool: the tokens before the first `end` (the end token itself excluded)."""
    return torch.cumsum((tokens == end).long(), -1) == 0


def through_end(tokens: torch.Tensor, end: int) -> torch.Tensor:
    """(..., T) bool: the tokens up to and including the first `end` (all of them if there is none)."""
    is_end = (tokens == end).long()
    return torch.cumsum(is_end, -1) - is_end == 0


def length_before_end(tokens: torch.Tensor, end: int) -> torch.Tensor:
    """(...,) int64: the number of tokens before the first `end`."""
    return before_end(tokens, end).sum(-1)
