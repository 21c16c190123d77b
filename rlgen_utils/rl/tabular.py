"""Tabular model-free and model-based control (survey §1.2): ε-greedy SARSA and Q-learning (written out
in notebook 1.2b), the greedy path of a Q-table, the Dyna maze and Dyna-Q (notebook 1.2c)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np


def epsilon_greedy(Q: np.ndarray, s: int, epsilon: float, rng: np.random.Generator) -> int:
    """A random action with probability ε, else a greedy one (ties broken at random)."""
    if rng.random() < epsilon:
        return int(rng.integers(Q.shape[1]))
    best = np.flatnonzero(Q[s] == Q[s].max())
    return int(best[0] if len(best) == 1 else rng.choice(best))


# Defined in notebooks/1.2b_model_free.ipynb, which explains it (tests/test_notebook_copies.py keeps the two identical).
def td_control(env: gym.Env, method: str, episodes: int, alpha: float = 0.5, epsilon: float = 0.1,
               gamma: float = 1.0, seed: int = 0, max_steps: int = 10_000):
    """SARSA (on-policy) or Q-learning (off-policy) with an ε-greedy behaviour policy (Sutton & Barto §6.4-6.5).

    SARSA:      Q(s,a) ← Q(s,a) + α [r + γ Q(s',a') - Q(s,a)],   a' the action actually taken next;
    Q-learning: Q(s,a) ← Q(s,a) + α [r + γ max_b Q(s',b) - Q(s,a)].
    Returns (Q, online return of every episode)."""
    if method not in ("sarsa", "qlearning"):
        raise ValueError(f"unknown method {method!r}: use 'sarsa' or 'qlearning'")
    rng = np.random.default_rng(seed)
    Q = np.zeros((env.observation_space.n, env.action_space.n))
    returns = np.zeros(episodes)
    s, _ = env.reset(seed=seed)
    for episode in range(episodes):
        if episode:
            s, _ = env.reset()
        a = epsilon_greedy(Q, s, epsilon, rng)
        for _ in range(max_steps):
            s2, r, terminated, truncated, _ = env.step(a)
            returns[episode] += r
            a2 = epsilon_greedy(Q, s2, epsilon, rng)
            bootstrap = 0.0 if terminated else (Q[s2, a2] if method == "sarsa" else Q[s2].max())
            Q[s, a] += alpha * (r + gamma * bootstrap - Q[s, a])
            s, a = s2, a2
            if terminated or truncated:
                break
    return Q, returns


def greedy_path(env: gym.Env, Q: np.ndarray, max_steps: int = 200) -> list[int]:
    """States visited by the greedy policy from the start state (stops at a terminal state or `max_steps`)."""
    s, _ = env.reset(seed=0)
    path = [int(s)]
    for _ in range(max_steps):
        s, _, terminated, truncated, _ = env.step(int(Q[s].argmax()))
        path.append(int(s))
        if terminated or truncated:
            break
    return path


DYNA_MAZE = (".......#G",
             "..#....#.",
             "S.#....#.",
             "..#......",
             ".....#...",
             ".........")  # Sutton & Barto, Figure 8.2


class GridMaze(gym.Env):
    """A deterministic grid maze with walls ('#'), a start 'S' and a goal 'G' (reward 1 on reaching it).

    Gymnasium has no walled maze among its toy-text environments, so this is one with its interface.
    Actions: 0 up, 1 right, 2 down, 3 left; bumping into a wall or the border leaves the agent in place."""

    MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))

    def __init__(self, layout: tuple[str, ...] = DYNA_MAZE):
        self.layout = layout
        self.rows, self.cols = len(layout), len(layout[0])
        cells = {ch: (r, c) for r, row in enumerate(layout) for c, ch in enumerate(row) if ch in "SG"}
        if set(cells) != {"S", "G"}:
            raise ValueError("the maze layout needs exactly one 'S' (start) and one 'G' (goal)")
        self.start, self.goal = cells["S"], cells["G"]
        self.observation_space = gym.spaces.Discrete(self.rows * self.cols)
        self.action_space = gym.spaces.Discrete(4)
        self.position = self.start

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = self.start
        return self._index(self.position), {}

    def step(self, action):
        dr, dc = self.MOVES[int(action)]
        r, c = self.position[0] + dr, self.position[1] + dc
        if 0 <= r < self.rows and 0 <= c < self.cols and self.layout[r][c] != "#":
            self.position = (r, c)
        at_goal = self.position == self.goal
        return self._index(self.position), float(at_goal), at_goal, False, {}

    def _index(self, cell):
        return cell[0] * self.cols + cell[1]


def dyna_q(env: gym.Env, episodes: int, planning_steps: int, alpha: float = 0.1, epsilon: float = 0.1,
           gamma: float = 0.95, seed: int = 0, max_steps: int = 100_000):
    """Tabular Dyna-Q (Sutton & Barto §8.2): Q-learning on each real step, plus `planning_steps` Q-learning
    updates on transitions replayed from a learned deterministic model Model(s, a) = (r, s').
    Returns (Q, number of steps of every episode)."""
    rng = np.random.default_rng(seed)
    Q = np.zeros((env.observation_space.n, env.action_space.n))
    model: dict[tuple[int, int], tuple[float, int, bool]] = {}
    steps = np.zeros(episodes, dtype=int)
    s, _ = env.reset(seed=seed)
    for episode in range(episodes):
        if episode:
            s, _ = env.reset()
        for t in range(max_steps):  # noqa: B007 (t is read after the loop)
            a = epsilon_greedy(Q, s, epsilon, rng)
            s2, r, terminated, truncated, _ = env.step(a)
            Q[s, a] += alpha * (r + gamma * (0.0 if terminated else Q[s2].max()) - Q[s, a])   # direct RL
            model[(s, a)] = (r, s2, terminated)                                                 # model learning
            seen = list(model)
            for i in rng.integers(len(seen), size=planning_steps):                              # planning
                (ps, pa), (pr, ps2, pdone) = seen[i], model[seen[i]]
                Q[ps, pa] += alpha * (pr + gamma * (0.0 if pdone else Q[ps2].max()) - Q[ps, pa])
            s = s2
            if terminated or truncated:
                break
        steps[episode] = t + 1
    return Q, steps
