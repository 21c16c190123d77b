"""Tabular reinforcement learning (survey §1.2): MDP solvers, TD control, Dyna-Q, and rollout helpers.

MDPs are read from a Gymnasium transition table `P[s][a] = [(p, s', r, done), ...]` (the `P` of the
toy-text environments, `env.unwrapped.P`), so the solvers work on FrozenLake, CliffWalking, Taxi, ...
Algorithms follow Sutton & Barto, *Reinforcement Learning: An Introduction* (2nd ed., 2018).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np


# ----------------------------------------------------------------------------- MDPs from a transition table
def mdp_arrays(P: dict) -> tuple[np.ndarray, np.ndarray]:
    """(T, R) from a transition table: T[s, a, s'] = P(s' | s, a) for continuing transitions
    (a `done` transition leads nowhere), R[s, a] = E[r | s, a]. Then Q = R + γ T V."""
    if not isinstance(P, dict) or not P or not isinstance(P[next(iter(P))], dict):
        raise TypeError("give the transition table P[s][a] = [(p, s', r, done), ...], e.g. env.unwrapped.P")
    n_states, n_actions = len(P), len(P[0])
    T = np.zeros((n_states, n_actions, n_states))
    R = np.zeros((n_states, n_actions))
    for s in range(n_states):
        for a in range(n_actions):
            for p, s_next, r, done in P[s][a]:
                R[s, a] += p * r
                if not done:
                    T[s, a, int(s_next)] += p
    return T, R


def policy_evaluation(P: dict, policy: np.ndarray, gamma: float, tol: float = 1e-10,
                      max_sweeps: int = 100_000) -> np.ndarray:
    """V^π by iterating the Bellman expectation backup V ← Σ_a π(a|s) [R + γ T V] to a fixed point.

    `policy` is deterministic (n_states,) of actions or stochastic (n_states, n_actions) of probabilities."""
    T, R = mdp_arrays(P)
    pi = _as_stochastic(policy, R.shape)
    V = np.zeros(R.shape[0])
    for _ in range(max_sweeps):
        V_new = (pi * (R + gamma * T @ V)).sum(axis=1)
        if np.max(np.abs(V_new - V)) < tol:
            return V_new
        V = V_new
    raise RuntimeError(f"policy evaluation did not converge in {max_sweeps} sweeps: use gamma < 1 or a proper policy")


def value_iteration(P: dict, gamma: float, tol: float = 1e-10, max_sweeps: int = 100_000):
    """Bellman optimality backup V ← max_a [R + γ T V] until the change is below `tol`.

    Returns (V*, greedy policy (n_states,), number of sweeps)."""
    T, R = mdp_arrays(P)
    V = np.zeros(R.shape[0])
    for sweep in range(1, max_sweeps + 1):
        Q = R + gamma * T @ V
        V_new = Q.max(axis=1)
        if np.max(np.abs(V_new - V)) < tol:
            return V_new, greedy_policy(R + gamma * T @ V_new), sweep
        V = V_new
    raise RuntimeError(f"value iteration did not converge in {max_sweeps} sweeps: use gamma < 1")


def policy_iteration(P: dict, gamma: float, tol: float = 1e-10, max_iterations: int = 1000):
    """Alternate policy evaluation and greedy improvement until the policy is stable.

    Returns (V^π*, policy (n_states,), number of improvement steps)."""
    T, R = mdp_arrays(P)
    policy = np.zeros(R.shape[0], dtype=int)
    for iteration in range(1, max_iterations + 1):
        V = policy_evaluation(P, policy, gamma, tol)
        Q = R + gamma * T @ V
        # keep the current action on ties, so the loop stops instead of cycling between equal actions
        improved = np.where(Q.max(axis=1) > Q[np.arange(len(policy)), policy] + 1e-9, Q.argmax(axis=1), policy)
        if np.array_equal(improved, policy):
            return V, policy, iteration
        policy = improved
    raise RuntimeError(f"policy iteration did not stabilise in {max_iterations} steps")


def greedy_policy(Q: np.ndarray) -> np.ndarray:
    """argmax_a Q[s, a] for every state."""
    return np.asarray(Q).argmax(axis=1)


def _as_stochastic(policy: np.ndarray, shape: tuple) -> np.ndarray:
    policy = np.asarray(policy)
    if policy.ndim == 1:
        return np.eye(shape[1])[policy.astype(int)]
    if policy.shape != shape:
        raise ValueError(f"policy has shape {policy.shape}: give (n_states,) actions or {shape} probabilities")
    return policy


def run_policy(env: gym.Env, policy: np.ndarray, episodes: int, seed: int = 0) -> np.ndarray:
    """Returns of `episodes` episodes of a deterministic tabular policy in a Gymnasium env (its time limit applies)."""
    returns = np.zeros(episodes)
    obs, _ = env.reset(seed=seed)
    for i in range(episodes):
        if i:
            obs, _ = env.reset()
        done = False
        while not done:
            obs, r, terminated, truncated, _ = env.step(int(policy[obs]))
            returns[i] += r
            done = terminated or truncated
    return returns


# ----------------------------------------------------------------------------- model-free TD control
def epsilon_greedy(Q: np.ndarray, s: int, epsilon: float, rng: np.random.Generator) -> int:
    """A random action with probability ε, else a greedy one (ties broken at random)."""
    if rng.random() < epsilon:
        return int(rng.integers(Q.shape[1]))
    best = np.flatnonzero(Q[s] == Q[s].max())
    return int(best[0] if len(best) == 1 else rng.choice(best))


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


# ----------------------------------------------------------------------------- model-based: Dyna-Q
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
