"""MDP solvers and tabular agents of rlgen_utils.rl against closed forms, linear solves and brute force."""
import gymnasium as gym
import numpy as np
import pytest

from rlgen_utils.rl.mdp import mdp_arrays, policy_evaluation, policy_iteration, run_policy, value_iteration
from rlgen_utils.rl.tabular import DYNA_MAZE, GridMaze, dyna_q, greedy_path, td_control

GAMMA = 0.9
# state 0: "stay" earns 1; "go" reaches state 1 with probability 1/2 and earns nothing.
# state 1: "stay" earns 2; "back" returns to state 0.
TWO_STATE = {
    0: {0: [(1.0, 0, 1.0, False)], 1: [(0.5, 1, 0.0, False), (0.5, 0, 0.0, False)]},
    1: {0: [(1.0, 1, 2.0, False)], 1: [(1.0, 0, 0.0, False)]},
}


def test_value_iteration_matches_the_closed_form_of_a_two_state_mdp():
    v1 = 2 / (1 - GAMMA)                                   # stay in state 1 forever: 20
    v0 = max(1 / (1 - GAMMA),                               # stay in state 0 forever: 10
             0.5 * GAMMA * v1 / (1 - 0.5 * GAMMA))          # keep trying to go: V0 = γ(V1 + V0)/2 -> 16.36
    V, policy, sweeps = value_iteration(TWO_STATE, GAMMA, tol=1e-12)
    np.testing.assert_allclose(V, [v0, v1], atol=1e-9)
    assert policy.tolist() == [1, 0] and sweeps > 1
    V_pi, policy_pi, _ = policy_iteration(TWO_STATE, GAMMA, tol=1e-12)
    np.testing.assert_allclose(V_pi, [v0, v1], atol=1e-9)
    assert policy_pi.tolist() == [1, 0]


def test_terminal_transitions_stop_the_return():
    # a 3-state chain 0 -> 1 -> 2 (terminal, reward 5 on entering): V = [γ·5, 5, 0]
    chain = {0: {0: [(1.0, 1, 0.0, False)]}, 1: {0: [(1.0, 2, 5.0, True)]}, 2: {0: [(1.0, 2, 0.0, True)]}}
    V, _, _ = value_iteration(chain, GAMMA)
    np.testing.assert_allclose(V, [GAMMA * 5, 5, 0], atol=1e-9)


def random_mdp(rng, n_states=6, n_actions=3):
    P = {}
    for s in range(n_states):
        P[s] = {}
        for a in range(n_actions):
            probs = rng.dirichlet(np.ones(n_states))
            P[s][a] = [(p, s2, float(rng.normal()), bool(s2 == n_states - 1 and a == 0)) for s2, p in enumerate(probs)]
    return P


def test_policy_evaluation_matches_a_linear_solve():
    rng = np.random.default_rng(0)
    P = random_mdp(rng)
    n_s, n_a = len(P), len(P[0])
    pi = rng.dirichlet(np.ones(n_a), size=n_s)
    # V = R_π + γ T_π V  <=>  (I - γ T_π) V = R_π, built straight from the table
    T_pi, R_pi = np.zeros((n_s, n_s)), np.zeros(n_s)
    for s in range(n_s):
        for a in range(n_a):
            for p, s2, r, done in P[s][a]:
                R_pi[s] += pi[s, a] * p * r
                T_pi[s, s2] += 0.0 if done else pi[s, a] * p
    exact = np.linalg.solve(np.eye(n_s) - GAMMA * T_pi, R_pi)
    np.testing.assert_allclose(policy_evaluation(P, pi, GAMMA), exact, atol=1e-8)
    # a deterministic policy is the same as its one-hot stochastic form
    det = rng.integers(n_a, size=n_s)
    np.testing.assert_allclose(policy_evaluation(P, det, GAMMA), policy_evaluation(P, np.eye(n_a)[det], GAMMA))


def test_value_and_policy_iteration_agree_on_frozenlake_and_the_optimum_beats_every_other_policy():
    env = gym.make("FrozenLake-v1", map_name="4x4", is_slippery=True)
    P = env.unwrapped.P
    V, policy, _ = value_iteration(P, 0.99)
    V_pi, policy_pi, _ = policy_iteration(P, 0.99)
    np.testing.assert_allclose(V, V_pi, atol=1e-8)
    # optimality: no random deterministic policy does better anywhere
    rng = np.random.default_rng(1)
    for _ in range(50):
        other = policy_evaluation(P, rng.integers(4, size=16), 0.99)
        assert np.all(other <= V + 1e-8)
    T, R = mdp_arrays(P)
    assert np.allclose(T.sum(axis=2)[0], 1.0)  # from the start no move ends the episode
    success = run_policy(env, policy, 300, seed=0).mean()
    assert 0.6 < success < 0.9  # the optimum of the slippery lake is ~0.74 within 100 steps


def test_mdp_arrays_rejects_a_non_table():
    with pytest.raises(TypeError, match="env.unwrapped.P"):
        mdp_arrays([[0.5]])


def test_q_learning_finds_the_optimal_cliff_path_and_sarsa_the_safe_one():
    env = gym.make("CliffWalking-v1")
    Q_q, returns_q = td_control(env, "qlearning", 300, seed=0)
    Q_s, returns_s = td_control(env, "sarsa", 300, seed=0)
    assert len(greedy_path(env, Q_q)) - 1 == 13           # along the cliff edge: the shortest path
    assert len(greedy_path(env, Q_s)) - 1 > 13            # SARSA keeps away from the edge
    assert returns_s[-100:].mean() > returns_q[-100:].mean()  # ... and so earns more while exploring
    with pytest.raises(ValueError, match="sarsa"):
        td_control(env, "expected", 1)


def shortest_path_length(layout):
    """Breadth-first search on the maze: the reference for what Dyna-Q should learn."""
    env = GridMaze(layout)
    start, goal = env.start, env.goal
    frontier, dist = [start], {start: 0}
    while frontier:
        nxt = []
        for r, c in frontier:
            for dr, dc in GridMaze.MOVES:
                cell = (r + dr, c + dc)
                if 0 <= cell[0] < env.rows and 0 <= cell[1] < env.cols and layout[cell[0]][cell[1]] != "#" and cell not in dist:
                    dist[cell] = dist[(r, c)] + 1
                    nxt.append(cell)
        frontier = nxt
    return dist[goal]


def test_dyna_q_planning_learns_the_maze_in_fewer_episodes():
    assert shortest_path_length(DYNA_MAZE) == 14  # Sutton & Barto's maze
    env = GridMaze()
    Q, steps = dyna_q(env, 30, planning_steps=50, epsilon=0.0, seed=0)
    assert steps[-1] == 14  # greedy after learning: the shortest path
    _, steps0 = dyna_q(env, 30, planning_steps=0, seed=0)
    _, steps50 = dyna_q(env, 30, planning_steps=50, seed=0)
    assert steps50[1:10].sum() < steps0[1:10].sum() / 3
    with pytest.raises(ValueError, match="'S'"):
        GridMaze(("...", "..G"))


def test_run_policy_with_a_stochastic_policy_matches_the_exact_success_within_the_time_limit():
    """A uniformly random policy on the slippery lake: rollouts against the exact probability of reaching the goal
    within the 100-step limit (the undiscounted expectation backup of the uniform policy, iterated 100 times)."""
    env = gym.make("FrozenLake-v1", map_name="4x4", is_slippery=True)
    T, R = mdp_arrays(env.unwrapped.P)
    uniform = np.full(R.shape, 1 / R.shape[1])
    T_pi, R_pi = np.einsum("sa,sat->st", uniform, T), (uniform * R).sum(axis=1)
    S = np.zeros(len(R))
    for _ in range(env.spec.max_episode_steps):
        S = R_pi + T_pi @ S
    returns = run_policy(env, uniform, 4000, seed=3, action_seed=4)
    assert abs(returns.mean() - S[0]) < 4 * returns.std(ddof=1) / np.sqrt(len(returns))
    # the action draws follow action_seed: the same seeds repeat the returns, another action seed changes them
    np.testing.assert_array_equal(run_policy(env, uniform, 200, seed=3, action_seed=4), returns[:200])
    assert not np.array_equal(run_policy(env, uniform, 200, seed=3, action_seed=5), returns[:200])
    with pytest.raises(ValueError):
        run_policy(env, np.full((16, 3), 1 / 3), 1)
