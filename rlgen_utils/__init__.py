"""rlgen_utils: the thin library behind the rlgen notebooks, a runnable companion to the survey
'Reinforcement Learning for Generative AI' (Cao, Sheng, McAuley, Yao, 2023).

Sub-packages by kind (docs/architecture.md has the map): `datasets` (images, synthetic corpora, the toy
language), `genmodels` (§1.1 models and the diffusion model of §4.3), `rl` (§1.2 and the RL maths every later
section reuses), `sequences` (token policies, seq2seq, SeqGAN, the RLHF step, the Transformer LM), `rewards`
(the reward interface, BLEU, rules, learned rewards), `nas` (§2.3), and for §4's applications `sandbox` (untrusted
programs under OS isolation), `codegen`, `music`, `chem`, `recsys`, `robotics`; `exercises` (the checks of the
book's exercises). Top level: `runtime` (profiles, seeding, devices, `record`), `verdicts` (arms compared over
seeds), `plots`. The book's machinery (running, checking, publishing, the website, the CLI) is `book`, which the
teaching code never imports.
"""
from .runtime import choose, derived_seed, get_device, read_records, record, resolve_profile, seed_everything

__all__ = ["choose", "derived_seed", "get_device", "read_records", "record", "resolve_profile", "seed_everything"]
__version__ = "0.1.0"
