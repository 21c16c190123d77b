"""Two continuous-control tasks with several equally good action modes, for survey §4 (robotics).

`MultimodalBandit`: a one-step problem with 2-D actions; the reward is a sum of Gaussian bumps at a few
separated modes (Diffusion-QL's toy, Wang et al. 2023), and the demonstrations are drawn around the modes.
A Gaussian fitted to them centres on their mean, between the modes, where the reward is low.

`PointObstacleEnv`: a point robot starts below a round obstacle and must reach a goal above it; going
round on the left or on the right is equally good, so the demonstrations have two modes. The dynamics are
one batched numpy function, `point_step`, on positions (N, 2): the notebook steps many robots at once with
it, and the `gymnasium.Env` wraps it for the API (and `gymnasium.utils.env_checker.check_env`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch

# ----------------------------------------------------------------------------- the bandit


@dataclass
class MultimodalBandit:
    """r(a) = Σ_k h_k · exp(−‖a − m_k‖² / (2 w²)) for 2-D actions a; demos a = m_k + σ·ε, k uniform."""
    modes: np.ndarray = field(default_factory=lambda: np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]]))
    heights: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.8, 0.6, 0.4]))
    width: float = 0.25
    demo_noise: float = 0.1
    mode_radius: float = 0.3   # "in a data mode": within 3 demo standard deviations of a mode's centre

    def reward(self, actions: torch.Tensor) -> torch.Tensor:
        """(B, 2) actions → (B,) rewards, differentiable, on the actions' device."""
        m = torch.as_tensor(self.modes, dtype=actions.dtype, device=actions.device)
        h = torch.as_tensor(self.heights, dtype=actions.dtype, device=actions.device)
        d2 = ((actions[:, None, :] - m[None]) ** 2).sum(-1)
        return (h * torch.exp(-d2 / (2 * self.width ** 2))).sum(1)

    def in_modes(self, actions: torch.Tensor) -> torch.Tensor:
        """(B,) booleans: the action lies within `mode_radius` of some mode's centre."""
        m = torch.as_tensor(self.modes, dtype=actions.dtype, device=actions.device)
        return ((actions[:, None, :] - m[None]) ** 2).sum(-1).min(1).values < self.mode_radius ** 2

    def demos(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n demonstration actions, each from a uniformly chosen mode plus N(0, σ²I) noise."""
        k = rng.integers(len(self.modes), size=n)
        return self.modes[k] + self.demo_noise * rng.standard_normal((n, 2))


# ----------------------------------------------------------------------------- the point robot
START = np.array([0.0, -1.5])      # mean start position (reset adds a small uniform jitter)
GOAL = np.array([0.0, 1.5])
OBSTACLE_RADIUS = 0.6              # a disc at the origin
SPEED = 0.1                        # displacement per step for an action of size 1 (actions are clipped to [-1, 1]²)
GOAL_RADIUS = 0.2                  # reaching it ends the episode with a bonus
GOAL_BONUS = 1.0
STEP_COST = 0.02                   # per step, so shorter paths earn more
HORIZON = 60
BOUND = 2.0                        # the arena is [-2, 2]²


def point_step(pos: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step for N robots at once: positions (N, 2), actions (N, 2) → (new positions, rewards, reached).

    The move is SPEED·clip(a, −1, 1); a move that would end inside the obstacle is cancelled (the robot
    stays). Reward: progress towards the goal (d_t − d_{t+1}) − STEP_COST, + GOAL_BONUS on reaching it."""
    move = SPEED * np.clip(action, -1.0, 1.0)
    proposal = np.clip(pos + move, -BOUND, BOUND)
    blocked = np.linalg.norm(proposal, axis=1) < OBSTACLE_RADIUS
    new = np.where(blocked[:, None], pos, proposal)
    d_old, d_new = np.linalg.norm(pos - GOAL, axis=1), np.linalg.norm(new - GOAL, axis=1)
    reached = d_new < GOAL_RADIUS
    reward = d_old - d_new - STEP_COST + GOAL_BONUS * reached
    return new, reward, reached


def reset_positions(n: int, rng: np.random.Generator) -> np.ndarray:
    """n start positions: START plus a uniform jitter of ±0.1 in x and ±0.05 in y."""
    return START + rng.uniform([-0.1, -0.05], [0.1, 0.05], size=(n, 2))


def expert_actions(pos: np.ndarray, side: np.ndarray) -> np.ndarray:
    """The demonstrator: head for a waypoint beside the obstacle (x = side · 1.0, y = 0) until level with
    it, then for the goal; unit-length actions. `side` is ±1 per robot (left = −1, right = +1)."""
    waypoint = np.stack([side * 1.0, np.zeros_like(side, dtype=float)], axis=1)
    target = np.where((pos[:, 1] < -0.05)[:, None], waypoint, GOAL[None])
    direction = target - pos
    return direction / np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-8)


def collect_demos(n_episodes: int, rng: np.random.Generator, noise: float = 0.1, discount: float = 0.99,
                  chunk: int = 1) -> dict:
    """Roll out the demonstrator (half the episodes left, half right, in random order) with N(0, noise²)
    action noise, all episodes stepped together. Returns flat arrays over the steps taken: `states` (n, 2),
    `actions` (n, 2·chunk): the action at that step and the chunk − 1 after it (past the episode's end,
    the last action repeated), `rewards`, `returns` (discounted return-to-go), `episodes` (the episode each
    step belongs to), and per episode `episode_returns`, `sides`. Action chunks are what Diffusion Policy (Chi et al. 2023) predicts: a short open-loop plan."""
    side = rng.permutation(np.repeat([-1.0, 1.0], (n_episodes + 1) // 2))[:n_episodes]
    pos = reset_positions(n_episodes, rng)
    alive = np.ones(n_episodes, dtype=bool)
    S, A, R, M = [], [], [], []
    for _ in range(HORIZON):
        a = np.clip(expert_actions(pos, side) + noise * rng.standard_normal((n_episodes, 2)), -1.0, 1.0)
        a = np.where(alive[:, None], a, A[-1] if A else a)     # after the end: repeat the last action
        new, r, reached = point_step(pos, a)
        S.append(pos), A.append(a), R.append(np.where(alive, r, 0.0)), M.append(alive.copy())
        pos = np.where(alive[:, None], new, pos)
        alive = alive & ~reached
    A += [A[-1]] * (chunk - 1)
    S, R, M = (np.stack(x) for x in (S, R, M))                # (T, N, ...)
    chunks = np.concatenate([np.stack(A[k:k + HORIZON]) for k in range(chunk)], axis=-1)   # (T, N, 2·chunk)
    G = np.zeros_like(R)
    running = np.zeros(n_episodes)
    for t in reversed(range(HORIZON)):
        running = R[t] + discount * running
        G[t] = running
    episodes = np.broadcast_to(np.arange(n_episodes), M.shape)
    return dict(states=S[M], actions=chunks[M], rewards=R[M], returns=G[M], episodes=episodes[M],
                episode_returns=R.sum(0), sides=side)


def rollout(act, n: int, rng: np.random.Generator, horizon: int = HORIZON, chunk: int = 1) -> dict:
    """Run a policy `act(positions (n, 2) numpy) → actions (n, 2·chunk) numpy` in n robots at once; each
    call's chunk of actions is executed open loop before the policy is asked again.

    Returns `returns` (n,), `reached` (n,) booleans, `paths` (horizon + 1, n, 2)."""
    pos = reset_positions(n, rng)
    alive = np.ones(n, dtype=bool)
    total = np.zeros(n)
    paths = [pos]
    for t in range(horizon):
        if t % chunk == 0:
            plan = act(pos).reshape(n, chunk, 2)
        new, r, reached = point_step(pos, plan[:, t % chunk])
        total += np.where(alive, r, 0.0)
        pos = np.where(alive[:, None], new, pos)
        alive = alive & ~reached
        paths.append(pos)
    return dict(returns=total, reached=~alive, paths=np.stack(paths))


class PointObstacleEnv(gym.Env):
    """Gymnasium wrapper of `point_step` for one robot: observation = position (Box [−2, 2]²), action =
    desired direction (Box [−1, 1]²); terminates on reaching the goal, truncates after HORIZON steps."""
    metadata = {"render_modes": []}

    def __init__(self):
        self.observation_space = gym.spaces.Box(-BOUND, BOUND, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._pos = START.copy()
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._pos = reset_positions(1, self.np_random)[0]
        self._t = 0
        return self._pos.astype(np.float32), {}

    def step(self, action):
        new, r, reached = point_step(self._pos[None], np.asarray(action, dtype=float).reshape(1, 2))
        self._pos, self._t = new[0], self._t + 1
        return self._pos.astype(np.float32), float(r[0]), bool(reached[0]), self._t >= HORIZON, {}
