"""rlgen_utils: the thin library behind the rlgen notebooks, a runnable companion to the survey
'Reinforcement Learning for Generative AI' (Cao, Sheng, McAuley, Yao, 2023).

Modules: runtime (profiles, seeding, device, record), data, plots, policies, trainers, rewards, runner.
"""
from .runtime import choose, get_device, read_records, record, resolve_profile, seed_everything

__all__ = ["choose", "get_device", "read_records", "record", "resolve_profile", "seed_everything"]
__version__ = "0.1.0"
