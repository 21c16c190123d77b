"""rlgen_utils: the thin library behind the rlgen notebooks, a runnable companion to the survey
'Reinforcement Learning for Generative AI' (Cao, Sheng, McAuley, Yao, 2023).

Sub-packages by kind (docs/architecture.md has the map): `datasets` (images, synthetic corpora, the toy
language), `genmodels` (§1.1 models), `rl` (§1.2 and the RL maths every later section reuses),
`sequences` (token policies, seq2seq, SeqGAN, the RLHF step), `rewards` (the reward interface, BLEU,
rules, learned rewards), `nas` (§2.3). Top level: `runtime` (profiles, seeding, devices, record),
`runner` (executes the book), `plots`.
"""
from .runtime import choose, derived_seed, get_device, read_records, record, resolve_profile, seed_everything

__all__ = ["choose", "derived_seed", "get_device", "read_records", "record", "resolve_profile", "seed_everything"]
__version__ = "0.1.0"
