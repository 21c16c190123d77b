"""Tic-tac-toe with a Gymnasium-style interface, a perfect minimax player, MCTS (UCT) and PUCT search (survey §1.2).

A board is a tuple of 9 ints (1 = X, -1 = O, 0 = empty), cells numbered row by row; X moves first, so the
player to move follows from the board. Values are always from the point of view of the player to move.
The search follows Kocsis & Szepesvári (2006, UCT) and Silver et al. (2017, AlphaZero: PUCT with a
policy-value network); `puct_search` searches many positions at once so the network sees one batch per step.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

import gymnasium as gym
import numpy as np

LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))
EMPTY = (0,) * 9


# ----------------------------------------------------------------------------- rules
def to_move(board: tuple) -> int:
    """1 (X) when the number of stones is even, else -1 (O)."""
    return 1 if board.count(0) % 2 else -1


@lru_cache(maxsize=None)  # tic-tac-toe has only 5,478 positions; the search asks about them again and again
def winner(board: tuple) -> int:
    """1 or -1 for a completed line, 0 otherwise."""
    for i, j, k in LINES:
        if board[i] and board[i] == board[j] == board[k]:
            return board[i]
    return 0


@lru_cache(maxsize=None)
def legal_moves(board: tuple) -> tuple[int, ...]:
    """Empty cells, or () when the game is over."""
    return () if winner(board) else tuple(i for i, v in enumerate(board) if v == 0)


def play(board: tuple, move: int) -> tuple:
    if not (0 <= move < 9) or board[move] != 0 or winner(board):
        raise ValueError(f"illegal move {move} on board {board}: choose one of legal_moves(board) = {legal_moves(board)}")
    out = list(board)
    out[move] = to_move(board)
    return tuple(out)


@lru_cache(maxsize=None)
def terminal_value(board: tuple) -> float | None:
    """The game's result for the player to move (-1: the opponent just completed a line, 0: a draw),
    or None while the game goes on."""
    if winner(board):
        return -1.0
    return 0.0 if all(board) else None


def render(board: tuple) -> str:
    marks = {1: "X", -1: "O", 0: "."}
    return "\n".join(" ".join(marks[board[3 * r + c]] for c in range(3)) for r in range(3))


class TicTacToe(gym.Env):
    """Tic-tac-toe for two players taking turns, Gymnasium-style: `step(action)` plays for the player to move
    and returns that player's reward (+1 for completing a line, 0 otherwise). Observations are the board
    as seen by the player to move (+1 own stones, -1 the opponent's)."""

    def __init__(self):
        self.observation_space = gym.spaces.Box(-1, 1, shape=(9,), dtype=np.int8)
        self.action_space = gym.spaces.Discrete(9)
        self.board = EMPTY

    def _obs(self):
        return np.array(self.board, dtype=np.int8) * to_move(self.board)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.board = EMPTY
        return self._obs(), {"board": self.board, "legal_moves": legal_moves(self.board)}

    def step(self, action):
        self.board = play(self.board, int(action))
        result = terminal_value(self.board)
        reward = 1.0 if result == -1.0 else 0.0  # the next player "lost": the mover won
        info = {"board": self.board, "legal_moves": legal_moves(self.board)}
        return self._obs(), reward, result is not None, False, info


# ----------------------------------------------------------------------------- perfect play
@lru_cache(maxsize=None)
def minimax_value(board: tuple) -> int:
    """The game-theoretic value for the player to move (negamax over the whole tree, memoised: 5,478 positions)."""
    result = terminal_value(board)
    if result is not None:
        return int(result)
    return max(-minimax_value(play(board, m)) for m in legal_moves(board))


def minimax_moves(board: tuple) -> list[int]:
    """Every optimal move of the player to move."""
    values = {m: -minimax_value(play(board, m)) for m in legal_moves(board)}
    best = max(values.values())
    return [m for m, v in values.items() if v == best]


def minimax_player(rng: np.random.Generator) -> Callable:
    """A perfect player that picks uniformly among its optimal moves (so repeated games differ)."""
    return lambda boards: [int(rng.choice(minimax_moves(b))) for b in boards]


def random_player(rng: np.random.Generator) -> Callable:
    return lambda boards: [int(rng.choice(legal_moves(b))) for b in boards]


def play_games(x_player: Callable, o_player: Callable, n_games: int) -> np.ndarray:
    """Play `n_games` games side by side; a player maps a list of boards (its turn) to a list of moves, so a
    search-based player can batch its work. Returns the winner of every game (1 X, -1 O, 0 draw)."""
    boards = [EMPTY] * n_games
    while True:
        live = [i for i, b in enumerate(boards) if terminal_value(b) is None]
        if not live:
            return np.array([winner(b) for b in boards])
        side = to_move(boards[live[0]])  # all live games have the same number of stones
        moves = (x_player if side == 1 else o_player)([boards[i] for i in live])
        for i, m in zip(live, moves):
            boards[i] = play(boards[i], m)


# ----------------------------------------------------------------------------- search
class Node:
    """A search-tree node. `value_sum` is kept from the view of the player who moved *into* this node,
    so a parent picks the child with the best mean value for itself."""

    __slots__ = ("board", "prior", "visits", "value_sum", "children")

    def __init__(self, board: tuple, prior: float = 1.0):
        self.board, self.prior, self.visits, self.value_sum, self.children = board, prior, 0, 0.0, {}

    def q(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0

    def expand(self, priors=None):
        moves = legal_moves(self.board)
        for m in moves:
            self.children[m] = Node(play(self.board, m), 1.0 if priors is None else float(priors[m]))


def uct_score(parent: Node, child: Node, c: float) -> float:
    """UCB1 applied to trees: Q + c √(ln N(parent) / N(child)); unvisited children first."""
    if child.visits == 0:
        return math.inf
    return child.q() + c * math.sqrt(math.log(parent.visits) / child.visits)


def puct_score(parent: Node, child: Node, c: float) -> float:
    """AlphaZero's PUCT: Q(s,a) + c P(s,a) √N(s) / (1 + N(s,a))."""
    return child.q() + c * child.prior * math.sqrt(parent.visits) / (1 + child.visits)


def _select_leaf(root: Node, c: float, score) -> list[Node]:
    path = [root]
    node = root
    while node.children:
        node = max(node.children.values(), key=lambda ch: score(path[-1], ch, c))
        path.append(node)
    return path


def _backup(path: list[Node], value: float):
    """`value` is for the player to move at the leaf; each node stores it for the player who moved into it."""
    for node in reversed(path):
        value = -value
        node.value_sum += value
        node.visits += 1


def random_rollout(board: tuple, rng: np.random.Generator) -> float:
    """Play uniformly random moves to the end; the result for the player to move at `board`."""
    start = to_move(board)
    while (result := terminal_value(board)) is None:
        moves = legal_moves(board)
        board = play(board, moves[rng.integers(len(moves))])
    return result if to_move(board) == start else -result


def uct_search(board: tuple, n_simulations: int, c: float = 1.4, rng: np.random.Generator | None = None) -> np.ndarray:
    """Plain MCTS: UCT selection, expansion, a random rollout as the evaluation, backup. Returns root visit counts (9,)."""
    if terminal_value(board) is not None:
        raise ValueError("the game is over on this board: search needs a position with legal moves")
    rng = rng or np.random.default_rng(0)
    root = Node(board)
    root.expand()
    root.visits = 1
    for _ in range(n_simulations):
        path = _select_leaf(root, c, uct_score)
        leaf = path[-1]
        value = terminal_value(leaf.board)
        if value is None:
            if leaf.visits > 0:  # expand on the second visit, then evaluate one new child
                leaf.expand()
                leaf = leaf.children[next(iter(leaf.children))]
                path.append(leaf)
                value = terminal_value(leaf.board)
            if value is None:
                value = random_rollout(leaf.board, rng)
        _backup(path, value)
    return visit_counts(root)


def visit_counts(root: Node) -> np.ndarray:
    counts = np.zeros(9)
    for m, child in root.children.items():
        counts[m] = child.visits
    return counts


def puct_search(boards: list[tuple], evaluate: Callable, n_simulations: int, c_puct: float = 1.5,
                dirichlet_alpha: float | None = None, noise_fraction: float = 0.25,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """AlphaZero's search on many positions at once. `evaluate(boards) -> (priors (B, 9), values (B,))` is
    called once per simulation step on the batch of new leaves (values for the player to move there).
    Dirichlet noise on the root priors (self-play exploration) when `dirichlet_alpha` is set.
    Returns visit counts (B, 9)."""
    if any(terminal_value(b) is not None for b in boards):
        raise ValueError("every board given to puct_search must be a position with legal moves")
    rng = rng or np.random.default_rng(0)
    roots = [Node(b) for b in boards]
    priors, _ = evaluate(boards)
    for root, p in zip(roots, priors):
        root.expand(p)
        root.visits = 1
        if dirichlet_alpha:
            noise = rng.dirichlet([dirichlet_alpha] * len(root.children))
            for child, eta in zip(root.children.values(), noise):
                child.prior = (1 - noise_fraction) * child.prior + noise_fraction * eta
    for _ in range(n_simulations):
        paths = [_select_leaf(root, c_puct, puct_score) for root in roots]
        pending = []
        for path in paths:
            value = terminal_value(path[-1].board)
            if value is None:
                pending.append(path)
            else:
                _backup(path, value)
        if pending:
            priors, values = evaluate([path[-1].board for path in pending])  # one batch for every tree
            for path, p, v in zip(pending, priors, values):
                path[-1].expand(p)
                _backup(path, float(v))
    return np.stack([visit_counts(root) for root in roots])


# ----------------------------------------------------------------------------- symmetries
def _symmetries() -> list[np.ndarray]:
    grid = np.arange(9).reshape(3, 3)
    perms = []
    for k in range(4):
        rotated = np.rot90(grid, k)
        perms += [rotated.flatten(), np.fliplr(rotated).flatten()]
    return perms


SYMMETRIES = _symmetries()  # 8 permutations of the cells: new_board = board[perm], new_policy = policy[perm]


# ----------------------------------------------------------------------------- AlphaZero's policy-value network
import torch  # noqa: E402  (kept next to the network that needs it)
from torch import nn  # noqa: E402


def encode(boards: list[tuple]) -> torch.Tensor:
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
    """`evaluate(boards) -> (priors, values)` for `puct_search`: softmax over the legal moves, one forward pass.

    The search calls this hundreds of times per move on batches of a few dozen boards, so the forward pass
    runs in numpy (einsum: no BLAS thread start-up) on the current weights: for a net this small, per-call and
    thread costs would dominate in torch. Training still runs in torch, on any device."""
    def dense(layer, x):
        return np.einsum("bi,oi->bo", x, layer.weight.detach().cpu().numpy()) + layer.bias.detach().cpu().numpy()

    def evaluate(boards):
        b = np.asarray(boards, dtype=np.float32)
        own = b * np.where((b == 0).sum(axis=1) % 2 == 1, 1.0, -1.0).astype(np.float32)[:, None]
        x = np.concatenate([own == 1, own == -1], axis=1).astype(np.float32)   # same features as encode()
        h = np.maximum(dense(net.body[2], np.maximum(dense(net.body[0], x), 0)), 0)
        logits = np.where(b == 0, dense(net.policy_head, h), -np.inf)
        priors = np.exp(logits - logits.max(axis=1, keepdims=True))
        return priors / priors.sum(axis=1, keepdims=True), np.tanh(dense(net.value_head, h))[:, 0]
    return evaluate


def search_player(evaluate: Callable, n_simulations: int, c_puct: float = 1.5) -> Callable:
    """A player for `play_games`: PUCT search on all its boards at once, then the most visited move."""
    return lambda boards: [int(m) for m in puct_search(boards, evaluate, n_simulations, c_puct).argmax(axis=1)]


def forced_win_puzzles() -> list[tuple[tuple, int]]:
    """Every reachable position where the player to move cannot win at once but has exactly one move that
    wins by force (found by minimax): (board, winning move) pairs, a test set for search."""
    seen, frontier, puzzles = {EMPTY}, [EMPTY], []
    while frontier:
        board = frontier.pop()
        moves = legal_moves(board)
        if moves and minimax_value(board) == 1 and not any(winner(play(board, m)) for m in moves):
            winning = [m for m in moves if minimax_value(play(board, m)) == -1]
            if len(winning) == 1:
                puzzles.append((board, winning[0]))
        for m in moves:
            if (child := play(board, m)) not in seen:
                seen.add(child)
                frontier.append(child)
    return sorted(puzzles)
