"""rlgen_utils.codegen (notebook 4.2): pass@k against brute-force enumeration of k-subsets and exact rational
arithmetic; the problem set's canonical programs against its reference functions; the harness run as a plain
subprocess (the sandbox has its own tests) on correct, wrong, broken and hanging candidates."""
import itertools
import subprocess
import sys
from fractions import Fraction
from math import comb

import numpy as np
import pytest

from rlgen_utils.codegen import (PROGRAM_END, PROBLEMS, PUBLIC_TESTS, build_harness, encode_program, hidden_inputs, mean_pass_at_k,
                                 parse_harness_output, pass_at_k, pretraining_corpus, split_tokens, to_source,
                                 unit_tests)


def brute_force_pass_at_k(n, c, k):
    """The fraction of the k-subsets of n samples (c of them correct) that hold at least one correct sample."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return Fraction(sum(any(samples[i] for i in s) for s in subsets), len(subsets))


@pytest.mark.parametrize("n", [1, 2, 5, 8, 10])
def test_pass_at_k_equals_enumeration_over_all_k_subsets(n):
    for k in range(1, n + 1):
        for c in range(n + 1):
            exact = brute_force_pass_at_k(n, c, k)
            assert pass_at_k(n, c, k) == pytest.approx(float(exact), abs=1e-12), (n, c, k)


def test_pass_at_k_vectorised_matches_scalar_and_mean():
    n = np.array([10, 20, 20, 30])
    c = np.array([0, 3, 20, 7])
    vec = pass_at_k(n, c, 5)
    assert vec.shape == (4,)
    assert np.allclose(vec, [pass_at_k(a, b, 5) for a, b in zip(n, c)])
    assert mean_pass_at_k([0, 3, 20], 20, 1) == pytest.approx(np.mean([0, 3 / 20, 1]))


def test_pass_at_1_is_the_fraction_correct():
    for n, c in [(20, 0), (20, 7), (200, 199), (3, 3)]:
        assert pass_at_k(n, c, 1) == pytest.approx(c / n)


@pytest.mark.parametrize("n,c,k", [(1000, 13, 100), (5000, 2, 1000), (2000, 1500, 10), (10_000, 9_000, 400)])
def test_pass_at_k_is_numerically_stable_for_large_n(n, c, k):
    """The binomials overflow a float (C(5000, 1000) ~ 1e1000); the product form does not, and matches exact maths."""
    exact = 1 - Fraction(comb(n - c, k), comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-9, abs=1e-12)


def test_pass_at_k_rejects_too_few_samples():
    with pytest.raises(ValueError):
        pass_at_k(5, 1, 10)
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)


def test_problem_set_is_large_enough_and_canonical_programs_are_correct():
    assert len(PROBLEMS) >= 20
    assert len({p.name for p in PROBLEMS}) == len(PROBLEMS)
    inputs = list(PUBLIC_TESTS) + hidden_inputs()
    assert not set(PUBLIC_TESTS) & set(hidden_inputs())
    for p in PROBLEMS:
        for form in (p.canonical,) + p.alternatives:
            source = to_source(encode_program(form))
            f = eval(f"lambda x, y: {source}", {"__builtins__": {"abs": abs, "min": min, "max": max}})
            assert all(f(x, y) == p.solution(x, y) for x, y in inputs), (p.name, source)
        tests = unit_tests(p)
        assert len(tests["public"]) == len(PUBLIC_TESTS) and len(tests["hidden"]) == len(hidden_inputs())
        assert p.prompt.startswith(f"def {p.name}(x: int, y: int) -> int:")


def test_tokens_round_trip_and_numbers_are_digits():
    assert split_tokens("x % 10") == ["x", "%", "1", "0"]
    assert to_source(encode_program("x % 10")) == "x % 10"
    assert to_source(encode_program("abs( x - y )")) == "abs(x - y)"
    assert to_source(encode_program("1 if x > 0 else 0")) == "1 if x > 0 else 0"
    assert to_source(encode_program("x + y") + [0, 0]) == "x + y"   # stops at the end token
    assert encode_program("x")[-1] == PROGRAM_END


def test_corpus_mixes_correct_and_incorrect_programs():
    rng = np.random.default_rng(0)
    idx, programs = pretraining_corpus(400, 0.3, rng)
    correct = []
    for i, prog in zip(idx, programs):
        p = PROBLEMS[i]
        f = eval(f"lambda x, y: ({to_source(prog)})", {"__builtins__": {"abs": abs, "min": min, "max": max}})
        try:
            correct.append(all(f(x, y) == p.solution(x, y) for x, y in hidden_inputs()))
        except (ArithmeticError, TypeError):
            correct.append(False)
    assert 0.25 < np.mean(correct) < 0.6   # 30 % written correct, plus mutations that happen to be right


def test_harness_judges_each_candidate_in_isolation():
    tests = {"add": [(1, 2, 3), (0, 0, 0), (-1, 5, 4)]}
    candidates = [("add", "x + y"), ("add", "x - y"), ("add", "x +"), ("add", "x // 0"),
                  ("add", "3 ** 3 ** 15 % 7"),                 # seconds inside C code: killed by its timer
                  ("add", "(lambda: exit(3))()"),                         # not in the builtins: an error per test
                  ("add", "y + x")]
    source = build_harness(candidates, tests, time_limit_s=0.2)
    out = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=60)
    passed, status = parse_harness_output(out.stdout, [3] * len(candidates))
    assert [p.tolist() for p in passed] == [[True] * 3, [False, True, False], [False] * 3, [False] * 3,
                                            [False] * 3, [False] * 3, [True] * 3]
    assert status == ["ran", "ran", "syntax_error", "ran", "timeout", "ran", "ran"]


def test_parse_counts_missing_lines_as_lost():
    passed, status = parse_harness_output('{"i": 1, "status": "ran", "passed": "11"}\nnot json\n', [2, 2, 3])
    assert status == ["lost", "ran", "lost"]
    assert passed[1].all() and not passed[0].any() and passed[2].shape == (3,)
    with pytest.raises(KeyError):
        build_harness([("nope", "x")], {"add": [(1, 2, 3)]})


def test_specifications_are_words_and_held_out_problems_use_only_training_words():
    """The generator's prompt is a specification in words: every held-out problem is posed in words the training
    problems use (so it can be read), none is a training problem, and its programs are right (brute force over the
    test inputs against its reference function)."""
    from rlgen_utils.codegen.problems import HELDOUT_PROBLEMS, SPEC_WORDS, spec_ids

    assert PROBLEMS[0].spec_words == ["return", "the", "sum", "of", "x", "and", "y"]
    assert list(SPEC_WORDS) == sorted({w for p in PROBLEMS for w in p.spec.lower().replace(",", " ").replace(".", " ").split()})
    names = {p.name for p in PROBLEMS}
    specs = {tuple(p.spec_words) for p in PROBLEMS}
    assert len(HELDOUT_PROBLEMS) >= 6 and not names & {p.name for p in HELDOUT_PROBLEMS}
    inputs = list(PUBLIC_TESTS) + hidden_inputs()
    for p in HELDOUT_PROBLEMS:
        assert tuple(p.spec_words) not in specs, p.name
        assert [SPEC_WORDS[j] for j in spec_ids(p)] == p.spec_words
        for form in (p.canonical,) + p.alternatives:
            f = eval(f"lambda x, y: {to_source(encode_program(form))}", {"__builtins__": {"abs": abs, "min": min, "max": max}})
            assert all(f(x, y) == p.solution(x, y) for x, y in inputs), (p.name, form)
        # a held-out problem is a new function: some test input tells it apart from every training problem
        assert all(any(p.solution(x, y) != q.solution(x, y) for x, y in inputs) for q in PROBLEMS), p.name
    with pytest.raises(ValueError):
        spec_ids(PROBLEMS[0].__class__("unknown", "Return x cubed twice over.", lambda x, y: x, "x"))
