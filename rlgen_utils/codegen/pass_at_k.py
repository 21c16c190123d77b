"""pass@k, the unbiased estimator of Chen et al. (2021, "Evaluating large language models trained on code", §2.1;
survey §4.2): draw n ≥ k programs per problem, count the c that pass every hidden test, and estimate the chance
that at least one of k programs passes as 1 − C(n−c, k) / C(n, k).

Computing the binomials overflows for large n; the product form 1 − ∏_{i=n−c+1}^{n} (1 − k / i) is the same
number and stays in floating point. Averaged over problems, it is the benchmark number of HumanEval.
"""
from __future__ import annotations

import numpy as np


def pass_at_k(n, c, k: int):
    """Unbiased pass@k of one problem (scalars) or of many (arrays n, c of the same shape): 1 − C(n−c,k)/C(n,k)."""
    n_arr, c_arr = np.broadcast_arrays(np.asarray(n, dtype=np.int64), np.asarray(c, dtype=np.int64))
    if np.any(n_arr < k):
        raise ValueError(f"pass@{k} needs at least k = {k} samples per problem; got n = {n_arr.min()}")
    if np.any((c_arr < 0) | (c_arr > n_arr)):
        raise ValueError("the number of correct samples c must lie in [0, n]")
    out = np.empty(n_arr.shape, dtype=float)
    for idx in np.ndindex(n_arr.shape):
        ni, ci = int(n_arr[idx]), int(c_arr[idx])
        if ni - ci < k:  # every k-subset holds a correct program
            out[idx] = 1.0
        else:
            out[idx] = 1.0 - float(np.prod(1.0 - k / np.arange(ni - ci + 1, ni + 1)))
    return float(out) if out.shape == () else out


def mean_pass_at_k(correct_counts, n: int, k: int) -> float:
    """The benchmark number: pass@k averaged over problems, each with n samples and `correct_counts[i]` passing."""
    return float(np.mean(pass_at_k(np.full(len(correct_counts), n), np.asarray(correct_counts), k)))
