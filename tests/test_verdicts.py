"""rlgen_utils.verdicts against scipy's own t-test intervals, and the verdict's three cases."""
import numpy as np
import pytest
from scipy import stats

from rlgen_utils.runtime import derived_seed
from rlgen_utils.verdicts import compare_arms, mean_interval, verdict


def test_mean_interval_is_scipys_t_interval():
    x = np.array([0.61, 0.70, 0.66, 0.58, 0.73])
    mean, low, high = mean_interval(x)
    ref = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert mean == pytest.approx(x.mean()) and (low, high) == pytest.approx(ref)


def test_paired_comparison_is_the_interval_of_the_differences():
    rl, alt = np.array([0.9, 0.8, 0.85]), np.array([0.7, 0.62, 0.66])
    c = compare_arms(rl, alt)
    ref = stats.ttest_rel(rl, alt).confidence_interval(0.95)
    assert (c["low"], c["high"]) == pytest.approx((ref.low, ref.high))
    assert c["gap"] == pytest.approx((rl - alt).mean()) and c["seeds"] == 3 and c["verdict"] == "ahead"


def test_welch_comparison_matches_scipy():
    rl, alt = np.array([0.9, 0.8, 0.85, 0.95]), np.array([0.7, 0.75, 0.6])
    c = compare_arms(rl, alt, paired=False)
    ref = stats.ttest_ind(rl, alt, equal_var=False).confidence_interval(0.95)
    assert (c["low"], c["high"]) == pytest.approx((ref.low, ref.high))


def test_verdict_reads_the_interval_in_the_metrics_direction():
    assert verdict(0.01, 0.2) == "ahead" and verdict(-0.2, -0.01) == "behind" and verdict(-0.1, 0.1) == "level"
    assert verdict(0.01, 0.2, better="lower") == "behind" and verdict(-0.2, -0.01, better="lower") == "ahead"
    noisy = compare_arms([0.9, 0.5, 0.95], [0.7, 0.72, 0.71])  # mean gap +0.07, spread covers zero
    assert noisy["gap"] > 0 and noisy["verdict"] == "level"
    with pytest.raises(ValueError, match="better"):
        verdict(0, 1, better="up")
    with pytest.raises(ValueError, match="at least 2 seeds"):
        compare_arms([1.0], [0.5])


def test_derived_seeds_of_two_sweep_seeds_never_meet():
    assert [derived_seed(0, i) for i in range(3)] == [0, 1, 2]  # the default SEED = 0 keeps today's streams
    first = {derived_seed(0, i) for i in range(50_000)}
    second = {derived_seed(1, i) for i in range(50_000)}
    assert not first & second
    with pytest.raises(ValueError, match="outside"):
        derived_seed(0, 1_000_000)
