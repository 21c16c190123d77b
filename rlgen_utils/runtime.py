"""What every notebook calls first: profiles, seeding, device choice, randomness across devices, `record()`.

docs/architecture.md ("Profiles", "Randomness and devices", "Recording results") explains the conventions.

Randomness across devices, in one rule: a notebook's random numbers come from a *CPU* `torch.Generator`
(the one `seed_everything` returns, or `torch.Generator().manual_seed(...)`); every draw made with it
happens on the CPU and the result moves to the tensors' device (`torch.randn(shape, generator=g).to(device)`,
`sample_categorical(probs, g)`). So the same seed gives the same draws on a CPU and on a GPU, and a CPU
generator never meets a CUDA kernel (which raises "Expected a 'cuda' device type for generator").
`tests/test_randomness.py` checks the rule over the library and the notebooks.
"""
from __future__ import annotations

import json
import os
import random
from numbers import Number
from pathlib import Path

import numpy as np
import torch

PROFILES = ("smoke", "full")
RECORD_MIME = "application/vnd.rlgen.record+json"


class ProfileError(ValueError):
    """An unknown profile name (the message says which names are valid)."""


def resolve_profile(profile: str | None = None) -> str:
    """Validate a profile name; `None` means `$RLGEN_PROFILE`, else "full"."""
    if profile is None:
        profile = os.environ.get("RLGEN_PROFILE") or "full"
    name = str(profile).strip().lower()
    if name not in PROFILES:
        raise ProfileError(
            f"unknown profile {profile!r}: use one of {', '.join(PROFILES)} "
            "(set PROFILE in the notebook's parameters cell, or the RLGEN_PROFILE environment variable)"
        )
    return name


def choose(profile: str, **by_profile: dict) -> dict:
    """Pick the settings of `profile` from one dict per profile, e.g. `choose(PROFILE, smoke={...}, full={...})`.

    All profiles must set the same keys, so a reader sees every size that changes in one place.
    """
    profile = resolve_profile(profile)
    missing = [p for p in PROFILES if p not in by_profile]
    if missing:
        raise ProfileError(f"settings for profile(s) {missing} are missing: give one dict per profile {PROFILES}")
    keys = {p: set(d) for p, d in by_profile.items()}
    if len({frozenset(k) for k in keys.values()}) != 1:
        raise ProfileError(f"the profiles set different keys: {keys}")
    return dict(by_profile[profile])


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch (all devices) in one call; returns a seeded CPU torch.Generator,
    the notebook's source of random draws on any device (see the module docstring)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


SEED_STRIDE = 1_000_000  # streams 0 .. SEED_STRIDE - 1 of one SEED never meet those of another


def derived_seed(seed: int, stream: int) -> int:
    """The seed of stream `stream` (an arm's i-th run, an evaluation draw, a data split) under the notebook's SEED.

    A sweep over SEED = 0, 1, 2, ... must not reuse one SEED's streams in another (with `SEED + i`, SEED = 1's
    first run would be SEED = 0's second). `SEED * 1_000_000 + stream` keeps them apart for streams below a
    million, and equals `stream` itself for the default SEED = 0.
    """
    if not 0 <= int(stream) < SEED_STRIDE:
        raise ValueError(f"stream {stream} is outside [0, {SEED_STRIDE}): number a notebook's streams 0, 1, 2, ...")
    return int(seed) * SEED_STRIDE + int(stream)


def sample_categorical(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw per row of `probs` (B, K) (or (K,) -> ()), on `probs`' device.

    With a `generator`, the draw happens on the generator's device (the CPU, by the book's convention) and
    the indices move back, so the same seed gives the same tokens whether the model runs on a CPU or a GPU
    (the copy is B x K floats per step: cheap next to the network). Without one, torch's default generator
    of `probs`' device draws. The same result as `torch.multinomial(probs, 1, generator=generator)` on a CPU.
    """
    if generator is None or generator.device == probs.device:
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return torch.multinomial(probs.to(generator.device), 1, generator=generator).squeeze(-1).to(probs.device)


def get_device(prefer: str | None = None, *, cpu_bound: bool = False) -> torch.device:
    """CUDA if present, then Apple MPS, else CPU. `prefer` (or `$RLGEN_DEVICE`) forces one.

    `cpu_bound=True` is for work whose cost is Python per step and tiny kernels (stepping a Gymnasium
    environment with a small network, tabular methods, tree search): a GPU's launch latency costs it more
    than the GPU's throughput saves, so it runs on the CPU unless a device is forced.
    """
    prefer = prefer or os.environ.get("RLGEN_DEVICE")
    if cpu_bound and not prefer:
        return torch.device("cpu")
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
        "cpu": True,
    }
    if prefer:
        kind = str(prefer).split(":")[0].lower()
        if kind not in available:
            raise ValueError(f"unknown device {prefer!r}: use 'cuda', 'mps' or 'cpu' (or leave it unset to pick automatically)")
        if not available[kind]:
            raise RuntimeError(f"device {prefer!r} was requested but is not available here: use 'cpu' or leave it unset")
        return torch.device(prefer)
    for kind in ("cuda", "mps"):
        if available[kind]:
            return torch.device(kind)
    return torch.device("cpu")


def _plain(value):
    """Turn numpy/torch scalars and arrays into JSON-able python values."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, Number, str)):
        return value
    raise TypeError(f"record() takes numbers, strings, lists or dicts, not {type(value).__name__}")


def format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value) if not isinstance(value, str) else value


def record(name: str, value):
    """Show a headline result and store it in the notebook's output for the tests and the report.

    The value is kept under the MIME type `application/vnd.rlgen.record+json` of a display_data
    output; `read_records(notebook)` reads it back. Returns the value, so `x = record("a/b", f())` works.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("record() needs a non-empty name such as 'vae/test_elbo'")
    plain = _plain(value)
    if isinstance(plain, float) and not np.isfinite(plain):
        raise ValueError(f"record {name!r} is {plain}: a headline number must be finite")
    text = f"{name} = {format_value(plain)}"
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display({RECORD_MIME: {"name": name, "value": plain}, "text/plain": text}, raw=True)
            return value
    except ImportError:
        pass
    print(text)
    return value


def read_records(notebook: str | Path) -> dict:
    """The records stored by `record()` in an executed notebook, in order: {name: value}."""
    import nbformat

    path = Path(notebook)
    if not path.exists():
        raise FileNotFoundError(f"no notebook at {path}: give the path of an .ipynb file")
    nb = nbformat.read(path, as_version=4)
    found = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if RECORD_MIME in data:
                item = data[RECORD_MIME]
                if isinstance(item, str):  # some writers store JSON MIME bundles as text
                    item = json.loads(item)
                found[item["name"]] = item["value"]
    return found
