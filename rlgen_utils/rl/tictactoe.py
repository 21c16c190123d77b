"""Tic-tac-toe with a Gymnasium-style interface, a perfect minimax player and match play (survey §1.2, 1.2c).

A board is a tuple of 9 ints (1 = X, -1 = O, 0 = empty), cells numbered row by row; X moves first, so the
player to move follows from the board. Values are always from the point of view of the player to move.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import gymnasium as gym
import numpy as np

LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))


EMPTY = (0,) * 9


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


def player_strategy(player: Callable) -> dict[tuple, int]:
    """A deterministic player's move in every position it can reach against *any* opponent, as X and as O.

    The game tree is walked ply by ply; the player is called once per ply on all its positions there (one batch,
    so a search player searches them together). Tic-tac-toe is small enough for this: a few hundred positions."""
    strategy: dict[tuple, int] = {}
    for me in (1, -1):
        frontier = {EMPTY}
        while frontier:
            mine = sorted(b for b in frontier if terminal_value(b) is None and to_move(b) == me and b not in strategy)
            strategy.update(zip(mine, (int(m) for m in player(mine)) if mine else ()))
            nxt = set()
            for b in frontier:
                if terminal_value(b) is not None:
                    continue
                nxt.update([play(b, strategy[b])] if to_move(b) == me else [play(b, m) for m in legal_moves(b)])
            frontier = nxt
    return strategy


def exact_results(strategy: dict[tuple, int], opponent: str) -> tuple[float, float, float]:
    """Exact (win, draw, loss) probabilities of a deterministic strategy (from `player_strategy`) against
    `opponent` = "minimax" (uniform among its optimal moves, as `minimax_player`) or "random" (uniform among the
    legal moves, as `random_player`), averaged over playing X and playing O: what infinitely many games give."""
    if opponent not in ("minimax", "random"):
        raise ValueError(f"opponent={opponent!r}: use 'minimax' or 'random'")

    @lru_cache(maxsize=None)
    def outcome(board: tuple, me: int) -> tuple[float, float, float]:
        if terminal_value(board) is not None:
            w = winner(board) * me
            return (1.0, 0.0, 0.0) if w > 0 else (0.0, 0.0, 1.0) if w < 0 else (0.0, 1.0, 0.0)
        if to_move(board) == me:
            return outcome(play(board, strategy[board]), me)
        moves = minimax_moves(board) if opponent == "minimax" else legal_moves(board)
        branches = [outcome(play(board, m), me) for m in moves]
        return tuple(float(np.mean([b[k] for b in branches])) for k in range(3))

    as_x, as_o = outcome(EMPTY, 1), outcome(EMPTY, -1)
    return tuple((a + b) / 2 for a, b in zip(as_x, as_o))


def losing_moves(strategy: dict[tuple, int]) -> list[tuple[tuple, int]]:
    """The (board, move) pairs of a strategy where the move turns a position that is not lost (minimax value >= 0
    for the mover) into a lost one: the mistakes an opponent could punish. None means the player cannot be beaten."""
    return sorted((b, m) for b, m in strategy.items() if minimax_value(b) >= 0 and minimax_value(play(b, m)) > 0)
