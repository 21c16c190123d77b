"""Code generation rewarded by unit tests (survey §4.2; notebook 4.2): the problem set with public and hidden
tests (`problems`), the program language and its tokens (`program_tokens`), the batch test harness run inside
the sandbox (`harness`), and the unbiased pass@k estimator of Chen et al. 2021 (`pass_at_k`)."""
from .harness import build_harness, parse_harness_output
from .pass_at_k import mean_pass_at_k, pass_at_k
from .problems import PROBLEMS, PUBLIC_TESTS, Problem, hidden_inputs, pretraining_corpus, unit_tests
from .program_tokens import (PROGRAM_END, PROGRAM_TOKENS, batch_to_sources, encode_program, mutate_program, split_tokens,
                             to_source)

__all__ = ["build_harness", "parse_harness_output", "mean_pass_at_k", "pass_at_k", "PROBLEMS", "PUBLIC_TESTS",
           "Problem", "hidden_inputs", "pretraining_corpus", "unit_tests", "PROGRAM_END", "PROGRAM_TOKENS",
           "batch_to_sources", "encode_program", "mutate_program", "split_tokens", "to_source"]
