"""Finite MDPs (survey §1.2, notebook 1.2a): the arrays of a Gymnasium transition table, policy evaluation,
value iteration, policy iteration, and running a tabular policy.

MDPs are read from a Gymnasium transition table `P[s][a] = [(p, s', r, done), ...]` (the `P` of the
toy-text environments, `env.unwrapped.P`), so the solvers work on FrozenLake, CliffWalking, Taxi, ...
Algorithms follow Sutton & Barto, *Reinforcement Learning: An Introduction* (2nd ed., 2018).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np


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


def run_policy(env: gym.Env, policy: np.ndarray, episodes: int, seed: int = 0, action_seed: int | None = None) -> np.ndarray:
    """Returns of `episodes` episodes of a tabular policy in a Gymnasium env (its time limit applies).

    `policy` is deterministic (n_states,) of actions, or stochastic (n_states, n_actions) of probabilities; a
    stochastic policy's actions are drawn from `np.random.default_rng(action_seed)` (`seed` when it is None), and
    `seed` seeds the environment."""
    policy = np.asarray(policy)
    if policy.ndim == 2:
        policy = _as_stochastic(policy, (env.observation_space.n, env.action_space.n))
        rng = np.random.default_rng(seed if action_seed is None else action_seed)
        act = lambda s: int(rng.choice(policy.shape[1], p=policy[s]))  # noqa: E731
    else:
        act = lambda s: int(policy[s])  # noqa: E731
    returns = np.zeros(episodes)
    obs, _ = env.reset(seed=seed)
    for i in range(episodes):
        if i:
            obs, _ = env.reset()
        done = False
        while not done:
            obs, r, terminated, truncated, _ = env.step(act(obs))
            returns[i] += r
            done = terminated or truncated
    return returns
