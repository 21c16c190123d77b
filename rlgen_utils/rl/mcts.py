"""Monte-Carlo tree search on tic-tac-toe (survey §1.2, notebook 1.2c): UCT with random rollouts (Kocsis &
Szepesvári 2006) and PUCT guided by a policy-value network (Silver et al. 2017); `puct_search` searches many
positions at once so the network sees one batch per step."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .tictactoe import legal_moves, play, terminal_value, to_move


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
    """PUCT as in AlphaGo Zero / AlphaZero: Q(s,a) + c P(s,a) √N(s) / (1 + N(s,a)). `c` scales the whole second
    term, so c = 0 removes the prior P as well as the exploration bonus: the search then ranks moves by Q alone."""
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


def puct_search(boards: list[tuple], evaluate_boards: Callable, n_simulations: int, c_puct: float = 1.5,
                dirichlet_alpha: float | None = None, noise_fraction: float = 0.25,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """AlphaZero's search on many positions at once. `evaluate_boards(boards) -> (priors (B, 9), values (B,))` is
    called once per simulation step on the batch of new leaves (values for the player to move there).
    Dirichlet noise on the root priors (self-play exploration) when `dirichlet_alpha` is set.
    Returns visit counts (B, 9)."""
    if any(terminal_value(b) is not None for b in boards):
        raise ValueError("every board given to puct_search must be a position with legal moves")
    rng = rng or np.random.default_rng(0)
    roots = [Node(b) for b in boards]
    priors, _ = evaluate_boards(boards)
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
            priors, values = evaluate_boards([path[-1].board for path in pending])  # one batch for every tree
            for path, p, v in zip(pending, priors, values):
                path[-1].expand(p)
                _backup(path, float(v))
    return np.stack([visit_counts(root) for root in roots])
