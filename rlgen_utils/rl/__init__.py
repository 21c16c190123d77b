"""Reinforcement learning (survey §1.2) and the RL maths every later section reuses: MDP solvers, tabular
control, tree search and AlphaZero, advantages, policy-gradient losses, KL terms, preference losses,
gradient estimators for discrete samples."""
