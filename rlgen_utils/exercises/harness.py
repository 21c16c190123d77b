"""The exercises' check harness: run a reader's function on fresh random cases beside the reference, compare
with tolerances, and when they differ name the likely mistake by comparing the reader's outputs with those of
known mistakes (each written as code). A stub (it raises NotImplementedError, or returns None or Ellipsis) is
"not yet solved". Every check prints one line and returns the function the notebook should go on with: the
reader's when it matches the reference, else the reference, so a notebook always runs to its end.

The cases are drawn from a generator seeded by the exercise's id (deterministic), in float32 on the CPU, and
the check leaves the global random states of Python, numpy and torch as it found them: a check inside a
notebook changes none of its draws.
"""
from __future__ import annotations

import copy
import math
import random
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

EXERCISES: dict = {}  # id -> Exercise, in the order the part modules register them (the book's order)
N_CASES = 25


class Unsolved(Exception):
    """Raised inside a probe when the reader's function is a stub (None or Ellipsis returned)."""


@dataclass(frozen=True)
class Seeded:
    """A case argument that becomes a fresh random-number generator for each call, so that the reference,
    the reader's function and every mistake see the same draws: `kind` is "torch", "numpy" or "python"."""
    seed: int
    kind: str = "torch"

    def make(self):
        if self.kind == "torch":
            return torch.Generator().manual_seed(self.seed)
        if self.kind == "numpy":
            return np.random.default_rng(self.seed)
        return random.Random(self.seed)


@dataclass
class Mistake:
    """A common wrong answer, written as code with the exercise's signature, and what to tell the reader."""
    message: str
    fn: Callable


@dataclass
class Exercise:
    id: str                    # "<notebook number>.<index>", e.g. "1.2b.1"
    name: str                  # the function's name in the notebook; its check is check_<name>
    title: str
    stars: int                 # difficulty, 1 to 3
    statement: str             # what to write (markdown)
    contract: str              # arguments, shapes, what it returns (markdown)
    hint: str
    reference: Callable
    cases: Callable            # cases(generator) -> (args, kwargs): one random case
    mistakes: list = field(default_factory=list)
    equation: str = ""         # the paper's equation (LaTeX, without $$), where there is one
    probe: Callable | None = None  # probe(fn, args, kwargs) -> what is compared; default: fn's output
    rtol: float = 1e-4
    atol: float = 1e-5
    n_cases: int = N_CASES

    @property
    def notebook(self) -> str:
        return self.id.rsplit(".", 1)[0]

    @property
    def check_name(self) -> str:
        return f"check_{self.name}"


@dataclass
class Outcome:
    status: str                # "solved", "failed" or "unsolved"
    message: str
    fn: Callable


def register(*, mistakes=(), **fields) -> Callable:
    """Define an exercise and return its check: `check(fn)` prints one line and returns the function to use."""
    exercise = Exercise(mistakes=[Mistake(m, f) for m, f in mistakes], **fields)
    if exercise.id in EXERCISES:
        raise ValueError(f"exercise {exercise.id} is defined twice")
    if not 1 <= exercise.stars <= 3:
        raise ValueError(f"exercise {exercise.id}: stars must be 1, 2 or 3")
    EXERCISES[exercise.id] = exercise

    def check(fn: Callable) -> Callable:
        outcome = run_check(exercise, fn)
        print(outcome.message)
        return outcome.fn

    check.__name__ = check.__qualname__ = exercise.check_name
    check.__doc__ = (f"Exercise {exercise.id} ({'★' * exercise.stars}), {exercise.title}: checks `{exercise.name}` "
                     "against the reference on random cases; returns it when it matches, else the reference.")
    check.exercise = exercise
    exercise.check = check
    return check


# ---------------------------------------------------------------------------------------------------- probes
def fresh(value):
    """A private copy of a case argument (tensors cloned, generators made from their seeds)."""
    if isinstance(value, Seeded):
        return value.make()
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(fresh(v) for v in value)
    if isinstance(value, dict):
        return {k: fresh(v) for k, v in value.items()}
    if callable(value) and not isinstance(value, torch.nn.Module):
        return value
    return copy.deepcopy(value)


def returned(value):
    if value is None or value is Ellipsis:
        raise Unsolved
    return value


def call(fn, args, kwargs):
    """fn on private copies of the case; a None or Ellipsis result is a stub."""
    return returned(fn(*[fresh(a) for a in args], **{k: fresh(v) for k, v in kwargs.items()}))


def default_probe(fn, args, kwargs):
    return detach(call(fn, args, kwargs))


def detach(value):
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(detach(v) for v in value)
    if isinstance(value, dict):
        return {k: detach(v) for k, v in value.items()}
    return value


def weighted_sum(x: torch.Tensor) -> torch.Tensor:
    """Σ w ⊙ x with fixed, uneven weights: a scalar whose gradient sees every entry even where x sums to a constant."""
    return (x * torch.cos(torch.arange(x.numel(), dtype=x.dtype)).view_as(x)).sum()


def with_grads(*positions: int, output: Callable = lambda out: out, scalar: Callable | None = None) -> Callable:
    """A probe that also compares gradients: the arguments at `positions` require grad; the compared value is
    (output(result), the gradient of scalar(result) with respect to each of them, zeros where none flows).
    `scalar` defaults to the sum of output(result)."""
    def probe(fn, args, kwargs):
        args = [fresh(a) for a in args]
        for p in positions:
            args[p] = args[p].detach().clone().requires_grad_(True)
        with torch.enable_grad():
            result = returned(fn(*args, **{k: fresh(v) for k, v in kwargs.items()}))
            value = (scalar or (lambda r: output(r).sum()))(result)
            leaves = [args[p] for p in positions]
            if isinstance(value, torch.Tensor) and value.requires_grad:
                grads = torch.autograd.grad(value, leaves, allow_unused=True)
            else:
                grads = [None] * len(leaves)
        grads = tuple(torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads))
        return detach(output(result)), grads
    return probe


# ----------------------------------------------------------------------------------------------- comparison
def as_array(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy() if value.is_floating_point() else value.detach().cpu().numpy()
    return np.asarray(value)


def difference(expected, got, rtol: float, atol: float, where: str = "") -> str | None:
    """None when `got` matches `expected`, else a short description of the first difference."""
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return f"{where or 'the result'} should be a dict with keys {sorted(expected)}, got {_describe(got)}"
        for k in expected:
            d = difference(expected[k], got[k], rtol, atol, f"{where}[{k!r}]")
            if d:
                return d
        return None
    if isinstance(expected, (tuple, list)) and not isinstance(got, torch.Tensor):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"{where or 'the result'} should be a {type(expected).__name__} of {len(expected)}, got {_describe(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            d = difference(e, g, rtol, atol, f"{where}[{i}]")
            if d:
                return d
        return None
    if isinstance(expected, (torch.Tensor, np.ndarray, float, int, np.number, bool)) and not isinstance(got, (str, dict)):
        try:
            e, g = as_array(expected), as_array(got)
        except (TypeError, ValueError, RuntimeError):
            return f"{where or 'the result'} should be {_describe(expected)}, got {_describe(got)}"
        if isinstance(expected, (torch.Tensor, np.ndarray)) and e.shape != g.shape:
            return f"{where or 'the result'} has shape {tuple(g.shape)}, expected {tuple(e.shape)}"
        if e.dtype.kind in "biu" and g.dtype.kind in "biu" or e.dtype == bool:
            ok = np.array_equal(e, g.astype(e.dtype) if g.dtype != e.dtype and g.dtype.kind in "biuf" else g)
        else:
            try:
                ok = np.allclose(g.astype(float), e.astype(float), rtol=rtol, atol=atol, equal_nan=True)
            except (TypeError, ValueError):
                ok = False
        if ok:
            return None
        if e.size == 1:
            return f"{where or 'the result'} is {_short(g)}, expected {_short(e)}"
        bad = np.argwhere(~np.isclose(g.astype(float), e.astype(float), rtol=rtol, atol=atol, equal_nan=True))
        i = tuple(int(v) for v in bad[0]) if len(bad) else ()
        return (f"{where or 'the result'} differs at {len(bad)} of {e.size} entries, e.g. at index {i}: "
                f"{_short(g[i])} where the reference has {_short(e[i])}")
    return None if got == expected else f"{where or 'the result'} is {_describe(got)}, expected {_describe(expected)}"


def _short(x) -> str:
    x = np.asarray(x)
    return f"{float(x):.4g}" if x.dtype.kind in "fc" else str(x.tolist())


def _describe(x) -> str:
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return f"a {type(x).__name__} of shape {tuple(x.shape)}"
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)}"
    return f"{type(x).__name__} {x!r}"[:80]


def scale_between(expected, got) -> float | None:
    """c when `got` is c · `expected` for one constant c ≠ 1 (the first array of a tuple), else None."""
    while isinstance(expected, (tuple, list)) and expected and isinstance(got, (tuple, list)) and got:
        expected, got = expected[0], got[0]
    try:
        e, g = as_array(expected).astype(float).ravel(), as_array(got).astype(float).ravel()
    except (TypeError, ValueError, RuntimeError):
        return None
    if e.shape != g.shape or not np.all(np.isfinite(e)) or not np.all(np.isfinite(g)):
        return None
    big = np.abs(e) > 1e-3
    if not big.any():
        return None
    c = float(np.median(g[big] / e[big]))
    if abs(c - 1) < 1e-3 or not np.allclose(g, c * e, rtol=1e-3, atol=1e-5):
        return None
    return c


def describe_scale(c: float) -> str:
    if abs(c + 1) < 1e-3:
        return "your result is the reference's with the sign flipped"
    for value, words in ((2, "twice"), (0.5, "half"), (-2, "minus twice"), (-0.5, "minus half"), (0, "zero times")):
        if abs(c - value) < 1e-3:
            return f"your result is {words} the reference's"
    return f"your result is {c:.3g} times the reference's"


# --------------------------------------------------------------------------------------------------- checks
def case_list(exercise: Exercise) -> list:
    g = torch.Generator().manual_seed(zlib.crc32(exercise.id.encode()))
    return [exercise.cases(g) for _ in range(exercise.n_cases)]


def _same(a, b, exercise: Exercise) -> bool:
    return difference(a, b, exercise.rtol, exercise.atol) is None


def run_check(exercise: Exercise, fn: Callable) -> Outcome:
    """Compare `fn` with the exercise's reference on its cases, in isolated random states."""
    tag = f"Exercise {exercise.id}"
    unsolved = Outcome("unsolved", f"{tag} not yet solved — the notebook continues with the reference implementation",
                       exercise.reference)
    if fn is None or fn is Ellipsis:
        return unsolved
    if not callable(fn):
        return Outcome("failed", f"✗ {tag}: `{exercise.name}` should be a function, got {_describe(fn)} — "
                                 "continuing with the reference", exercise.reference)
    probe = exercise.probe or default_probe
    with isolated_random_state():
        cases = case_list(exercise)
        got = []
        for i, (args, kwargs) in enumerate(cases):  # the reader's function first: a stub is recognised at once
            try:
                got.append(probe(fn, args, kwargs))
            except (NotImplementedError, Unsolved):
                return unsolved
            except Exception as e:  # the reader's code raised: say what and where
                text = str(e).splitlines()[0][:160] if str(e) else ""
                return Outcome("failed", f"✗ {tag}: your `{exercise.name}` raised {type(e).__name__}"
                                         f"{': ' + text if text else ''} (case {i + 1} of {len(cases)}) — "
                                         "continuing with the reference", exercise.reference)
        expected = [probe(exercise.reference, a, k) for a, k in cases]
        first_bad = next((i for i, (e, g) in enumerate(zip(expected, got)) if not _same(e, g, exercise)), None)
        if first_bad is None:
            return Outcome("solved", f"✓ {tag} solved: matches the reference on {len(cases)} random cases", fn)
        for mistake in exercise.mistakes:
            try:
                if all(_same(probe(mistake.fn, a, k), g, exercise) for (a, k), g in zip(cases, got)):
                    return Outcome("failed", f"✗ {tag}: {mistake.message} — continuing with the reference",
                                   exercise.reference)
            except Exception:  # a mistake that cannot run on this case is not the reader's
                continue
    e, g = expected[first_bad], got[first_bad]
    c = scale_between(e, g)
    detail = describe_scale(c) if c is not None else difference(e, g, exercise.rtol, exercise.atol)
    return Outcome("failed", f"✗ {tag}: on case {first_bad + 1} of {len(cases)}, {detail} (hint: {exercise.hint}) — "
                             "continuing with the reference", exercise.reference)


class isolated_random_state:
    """Save and restore the global random states of Python, numpy and torch (CPU) around a check."""

    def __enter__(self):
        self.states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
        self.grad = torch.is_grad_enabled()
        return self

    def __exit__(self, *exc):
        random.setstate(self.states[0])
        np.random.set_state(self.states[1])
        torch.random.set_rng_state(self.states[2])
        torch.set_grad_enabled(self.grad)
        return False


def uniform(g: torch.Generator, *shape, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    return low + (high - low) * torch.rand(*shape, generator=g)


def randn(g: torch.Generator, *shape, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=g)


def randint(g: torch.Generator, low: int, high: int, *shape) -> torch.Tensor:
    return torch.randint(low, high, shape, generator=g)


def pick(g: torch.Generator, options):
    return options[int(torch.randint(len(options), (1,), generator=g))]


def logit(p: float) -> float:
    return math.log(p / (1 - p))
