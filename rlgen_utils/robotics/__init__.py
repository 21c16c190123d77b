"""Survey §4 (robotics): generative action policies improved with a Q-function — a flow-matching policy
(`flow_policy`) and two tasks with several equally good action modes (`tasks`: a 2-D bandit and a point
robot that goes round an obstacle on either side)."""
