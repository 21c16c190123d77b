"""The problem set of notebook 4.2 (survey §4.2, code generation): HumanEval-style tasks (Chen et al. 2021) — a
signature, a docstring-like specification and hidden unit tests — sized for the program language of
`program_tokens` (integer functions of `x` and `y`).

Each problem carries a canonical solution (a token program) and, for the pre-training corpus, other correct ways
to write it. Tests are split as in CodeRL (Le et al. 2022): a few *public* tests (the docstring's examples, the
only feedback a generator gets during training) and *hidden* tests that decide pass@k. The expected outputs come
from plain Python functions written here, never from running a program.

A specification is written in words only (`spec_words`), so that a generator can read it as its prompt and an
unseen problem can be posed in the same words: `HELDOUT_PROBLEMS` are such problems, every word of their
specifications used by the training problems' (`SPEC_WORDS`), none of them in `PROBLEMS`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .program_tokens import encode_program, mutate_program, split_tokens


@dataclass(frozen=True)
class Problem:
    name: str
    spec: str                       # the docstring, in words (numbers spelled out)
    solution: Callable[[int, int], int]
    canonical: str                  # a correct program, tokens separated by spaces
    alternatives: tuple[str, ...] = field(default=())  # other correct programs

    @property
    def prompt(self) -> str:
        """The HumanEval-style prompt: signature and docstring."""
        return f'def {self.name}(x: int, y: int) -> int:\n    """{self.spec}"""'

    @property
    def spec_words(self) -> list[str]:
        """The specification as a generator reads it: its lower-case words, punctuation dropped."""
        return re.findall(r"[a-z]+", self.spec.lower())


PROBLEMS: tuple[Problem, ...] = (
    Problem("add", "Return the sum of x and y.", lambda x, y: x + y, "x + y", ("y + x",)),
    Problem("subtract", "Return x minus y.", lambda x, y: x - y, "x - y", ("0 - y + x",)),
    Problem("multiply", "Return the product of x and y.", lambda x, y: x * y, "x * y", ("y * x",)),
    Problem("double", "Return two times x.", lambda x, y: 2 * x, "2 * x", ("x + x", "x * 2")),
    Problem("square", "Return x squared.", lambda x, y: x * x, "x * x", ("abs( x ) * abs( x )",)),
    Problem("distance", "Return the distance between x and y.", lambda x, y: abs(x - y),
            "abs( x - y )", ("abs( y - x )", "max( x , y ) - min( x , y )")),
    Problem("larger", "Return the larger of x and y.", lambda x, y: max(x, y), "max( x , y )",
            ("max( y , x )", "x if x > y else y")),
    Problem("smaller", "Return the smaller of x and y.", lambda x, y: min(x, y), "min( x , y )",
            ("min( y , x )", "x if x < y else y")),
    Problem("relu", "Return the larger of x and zero.", lambda x, y: max(x, 0), "max( x , 0 )",
            ("max( 0 , x )", "x if x > 0 else 0")),
    Problem("increment", "Return x plus one.", lambda x, y: x + 1, "x + 1", ("1 + x",)),
    Problem("parity", "Return x modulo two.", lambda x, y: x % 2, "x % 2", ("abs( x ) % 2",)),
    Problem("half", "Return x divided by two, rounded down.", lambda x, y: x // 2, "x // 2", ()),
    Problem("cap", "Return the smaller of x and five.", lambda x, y: min(x, 5), "min( x , 5 )", ("min( 5 , x )",)),
    Problem("manhattan", "Return the absolute value of x plus the absolute value of y.", lambda x, y: abs(x) + abs(y),
            "abs( x ) + abs( y )", ("abs( y ) + abs( x )",)),
    Problem("affine", "Return three times x plus one.", lambda x, y: 3 * x + 1, "3 * x + 1", ("1 + 3 * x", "x * 3 + 1")),
    Problem("sum_of_squares", "Return x squared plus y squared.", lambda x, y: x * x + y * y, "x * x + y * y",
            ("y * y + x * x",)),
    Problem("difference_of_squares", "Return x squared minus y squared.", lambda x, y: x * x - y * y, "x * x - y * y",
            ("( x + y ) * ( x - y )",)),
    Problem("grid_area", "Return the product of x plus one and y plus one.", lambda x, y: (x + 1) * (y + 1),
            "( x + 1 ) * ( y + 1 )", ("( y + 1 ) * ( x + 1 )", "x * y + x + y + 1")),
    Problem("midpoint", "Return the mean of x and y, rounded down.", lambda x, y: (x + y) // 2, "( x + y ) // 2",
            ("( y + x ) // 2",)),
    Problem("is_positive", "Return one if x is positive, else zero.", lambda x, y: int(x > 0), "1 if x > 0 else 0",
            ("0 if x < 1 else 1",)),
    Problem("last_digit", "Return x modulo ten.", lambda x, y: x % 10, "x % 10", ()),
    Problem("mod3", "Return x modulo three.", lambda x, y: x % 3, "x % 3", ()),
    Problem("negative_abs", "Return minus the absolute value of x.", lambda x, y: -abs(x), "0 - abs( x )",
            ("- abs( x )",)),
    Problem("cube", "Return x cubed.", lambda x, y: x ** 3, "x * x * x", ("x * ( x * x )",)),
)

# Every word the training problems' specifications use: the generator's prompt vocabulary.
SPEC_WORDS: tuple[str, ...] = tuple(sorted({w for p in PROBLEMS for w in p.spec_words}))

# Problems no generator is trained on, posed in the training specifications' words (new combinations of them).
HELDOUT_PROBLEMS: tuple[Problem, ...] = (
    Problem("y_plus_one", "Return y plus one.", lambda x, y: y + 1, "y + 1", ("1 + y",)),
    Problem("x_minus_one", "Return x minus one.", lambda x, y: x - 1, "x - 1", ()),
    Problem("triple", "Return three times x.", lambda x, y: 3 * x, "3 * x", ("x * 3",)),
    Problem("y_squared", "Return y squared.", lambda x, y: y * y, "y * y", ()),
    Problem("abs_y", "Return the absolute value of y.", lambda x, y: abs(y), "abs( y )", ()),
    Problem("y_parity", "Return y modulo two.", lambda x, y: y % 2, "y % 2", ()),
    Problem("relu_y", "Return the larger of y and zero.", lambda x, y: max(y, 0), "max( y , 0 )", ("max( 0 , y )",)),
    Problem("x_mod_five", "Return x modulo five.", lambda x, y: x % 5, "x % 5", ()),
)


def spec_ids(problem: Problem) -> list[int]:
    """The indices in `SPEC_WORDS` of a problem's specification words; a word outside it is an error."""
    unknown = [w for w in problem.spec_words if w not in SPEC_WORDS]
    if unknown:
        raise ValueError(f"{problem.name}: words {unknown} are not in the training specifications' SPEC_WORDS")
    return [SPEC_WORDS.index(w) for w in problem.spec_words]


PUBLIC_TESTS = ((2, 3), (-4, 1), (0, -2))           # the docstring's examples (every problem)
N_HIDDEN = 10


def hidden_inputs(seed: int = 2021) -> list[tuple[int, int]]:
    """The hidden tests' inputs, shared by every problem: fixed pairs in [−9, 9]², none equal to a public one."""
    rng = np.random.default_rng(seed)
    pairs: list[tuple[int, int]] = [(7, -7), (-9, 9)]
    while len(pairs) < N_HIDDEN:
        pair = tuple(int(v) for v in rng.integers(-9, 10, size=2))
        if pair not in pairs and pair not in PUBLIC_TESTS:
            pairs.append(pair)
    return pairs


def unit_tests(problem: Problem) -> dict[str, list[tuple[int, int, int]]]:
    """{"public": [(x, y, expected), ...], "hidden": [...]} of one problem."""
    case = lambda pairs: [(x, y, int(problem.solution(x, y))) for x, y in pairs]
    return {"public": case(PUBLIC_TESTS), "hidden": case(hidden_inputs())}


def pretraining_corpus(size: int, fraction_correct: float, rng, problems=PROBLEMS) -> tuple[list[int], list[list[int]]]:
    """(problem index, program token ids ending with the end token) pairs: correct programs and near misses.

    A share `fraction_correct` are the problem's canonical or alternative programs; the rest are one or two
    mutations of them (`program_tokens.mutate_program`), the kind of bug seen in real code. The labels are not kept: the
    generator imitates the corpus as it is, and only the tests say which programs are right.
    """
    indices, programs = [], []
    for _ in range(size):
        p = int(rng.integers(len(problems)))
        forms = (problems[p].canonical,) + problems[p].alternatives
        tokens = split_tokens(forms[int(rng.integers(len(forms)))])
        if rng.random() >= fraction_correct:
            for _ in range(1 + int(rng.random() < 0.3)):
                tokens = mutate_program(tokens, rng)
        indices.append(p)
        programs.append(encode_program(" ".join(tokens)))
    return indices, programs
