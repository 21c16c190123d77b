"""AlphaGo Zero's / AlphaZero's pieces for tic-tac-toe (Silver et al. 2017, 2018; survey §1.2, notebook 1.2c): the
board symmetries for data augmentation, the network's input encoding, the policy-value network, a search player
and the network alone as a player (no search)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from .mcts import puct_search
from .tictactoe import to_move


def _symmetries() -> list[np.ndarray]:
    grid = np.arange(9).reshape(3, 3)
    perms = []
    for k in range(4):
        rotated = np.rot90(grid, k)
        perms += [rotated.flatten(), np.fliplr(rotated).flatten()]
    return perms


SYMMETRIES = _symmetries()  # 8 permutations of the cells: new_board = board[perm], new_policy = policy[perm]


def encode_boards(boards: list[tuple]) -> torch.Tensor:
    """(B, 18) input: the stones of the player to move, then the opponent's (a board seen from the mover's side)."""
    b = torch.tensor(boards, dtype=torch.float32)
    own = b * torch.tensor([to_move(x) for x in boards], dtype=torch.float32)[:, None]
    return torch.cat([(own == 1).float(), (own == -1).float()], dim=1)


class PolicyValueNet(nn.Module):
    """f_θ(s) = (p, v): move logits (illegal moves masked by the caller) and a value in [-1, 1] for the player to move."""

    def __init__(self, hidden: int = 128):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(18, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.policy_head = nn.Linear(hidden, 9)
        self.value_head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.policy_head(h), torch.tanh(self.value_head(h)).squeeze(-1)


def network_evaluator(net: PolicyValueNet) -> Callable:
    """`evaluate_boards(boards) -> (priors, values)` for `puct_search`: softmax over the legal moves, one forward pass.

    The search calls this hundreds of times per move on batches of a few dozen boards, so the forward pass
    runs in numpy (einsum: no BLAS thread start-up) on the current weights: for a net this small, per-call and
    thread costs would dominate in torch. Training still runs in torch, on any device."""
    def dense(layer, x):
        return np.einsum("bi,oi->bo", x, layer.weight.detach().cpu().numpy()) + layer.bias.detach().cpu().numpy()

    def evaluate(boards):
        b = np.asarray(boards, dtype=np.float32)
        own = b * np.where((b == 0).sum(axis=1) % 2 == 1, 1.0, -1.0).astype(np.float32)[:, None]
        x = np.concatenate([own == 1, own == -1], axis=1).astype(np.float32)   # same features as encode_boards()
        h = np.maximum(dense(net.body[2], np.maximum(dense(net.body[0], x), 0)), 0)
        logits = np.where(b == 0, dense(net.policy_head, h), -np.inf)
        priors = np.exp(logits - logits.max(axis=1, keepdims=True))
        return priors / priors.sum(axis=1, keepdims=True), np.tanh(dense(net.value_head, h))[:, 0]
    return evaluate


def search_player(evaluate_boards: Callable, n_simulations: int, c_puct: float) -> Callable:
    """A player for `play_games`: PUCT search on all its boards at once, then the most visited move."""
    return lambda boards: [int(m) for m in puct_search(boards, evaluate_boards, n_simulations, c_puct).argmax(axis=1)]


def policy_player(evaluate_boards: Callable) -> Callable:
    """A player for `play_games` without search: the legal move with the highest prior p(a|s) of the network."""
    return lambda boards: [int(m) for m in evaluate_boards(boards)[0].argmax(axis=1)]
