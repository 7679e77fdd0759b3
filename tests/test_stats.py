"""`dnnlab.stats`: intervals against scipy, the verdict rule's error rates by simulation, one-seed rules."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from dnnlab.stats import (
    HIGHER,
    LOWER,
    SAME,
    UNDECIDED,
    NoiseLevel,
    decide,
    evidence,
    mean_interval,
    paired_differences,
    paired_ratios,
    ratio_interval,
)


def test_mean_interval_is_student_t_with_ddof_1():
    values = [0.512, 0.498, 0.530, 0.505]
    interval = mean_interval(values)
    low, high = scipy_stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=scipy_stats.sem(values))
    assert interval.low == pytest.approx(low) and interval.high == pytest.approx(high)
    assert interval.std == pytest.approx(np.std(values, ddof=1)) and interval.n == 4
    one = mean_interval([0.5])
    assert one.mean == 0.5 and math.isnan(one.low) and one.std is None


def test_ratio_interval_is_geometric():
    interval = ratio_interval([2.0, 0.5])
    assert interval.mean == pytest.approx(1.0)  # 2x and 1/2x cancel on the log scale
    assert interval.low < 1.0 < interval.high
    with pytest.raises(ValueError):
        ratio_interval([1.0, -1.0])


def test_pairing_uses_common_seeds_only():
    base = {42: 0.50, 43: 0.52, 44: None}
    other = {42: 0.55, 43: 0.50, 44: 0.60, 45: 0.7}
    assert paired_differences(base, other) == pytest.approx([0.05, -0.02])
    assert paired_ratios({1: 2.0, 2: 4.0}, {1: 1.0, 2: 1.0}) == [0.5, 0.25]


def simulated_claim_rate(effect: float, seeds: int, trials: int = 10_000, min_effect: float = 0.0) -> dict[str, float]:
    rng = np.random.default_rng(20261130)
    outcomes = [decide(rng.normal(effect, 1.0, seeds), min_effect=min_effect).direction for _ in range(trials)]
    return {d: outcomes.count(d) / trials for d in (HIGHER, LOWER, SAME, UNDECIDED)}


def test_with_no_true_effect_a_direction_is_claimed_at_most_5_percent_of_the_time():
    rates = simulated_claim_rate(effect=0.0, seeds=3)
    # The interval rule alone is calibrated: 5% by construction, within the simulation's noise.
    assert rates[HIGHER] + rates[LOWER] == pytest.approx(0.05, abs=0.007)
    assert abs(rates[HIGHER] - rates[LOWER]) < 0.01
    # As the report applies it, with a minimum effect (here one seed-std), it claims less than 5%.
    with_gap = simulated_claim_rate(effect=0.0, seeds=3, min_effect=1.0)
    assert with_gap[HIGHER] + with_gap[LOWER] <= 0.05


def test_the_replaced_rule_over_claimed():
    """The old rule ("every seed agrees and the mean gap exceeds the std") for comparison: ~21% at 3 seeds."""
    rng = np.random.default_rng(20261130)
    claims = 0
    for _ in range(10_000):
        d = rng.normal(0.0, 1.0, 3)
        claims += (all(d > 0) or all(d < 0)) and abs(d.mean()) > d.std(ddof=1)
    assert 0.18 < claims / 10_000 < 0.24


def test_a_true_effect_of_3_seed_std_is_found_in_the_right_direction_most_of_the_time():
    rates = simulated_claim_rate(effect=3.0, seeds=3)
    assert rates[HIGHER] > 0.6 and rates[LOWER] < 0.001
    assert simulated_claim_rate(effect=-3.0, seeds=3)[LOWER] > 0.6


def test_same_needs_the_whole_interval_inside_the_minimum_effect():
    assert decide([0.001, -0.002, 0.0005, 0.001], min_effect=0.01).direction == SAME
    assert decide([0.02, 0.03, 0.025], min_effect=0.01).direction == HIGHER
    assert decide([0.004, 0.005, 0.006], min_effect=0.01).direction == SAME  # certain, but too small to matter
    assert decide([0.05, -0.04, 0.01], min_effect=0.01).direction == UNDECIDED


def test_ratios_are_judged_against_1():
    assert decide([0.5, 0.55, 0.52], null=1.0, ratio=True).direction == LOWER
    assert decide([0.9, 1.1, 1.05], null=1.0, ratio=True).direction == UNDECIDED


def test_one_seed_decides_only_against_a_stored_noise_level():
    verdict = decide([0.03])
    assert verdict.direction == UNDECIDED and "no stored noise level" in verdict.reason
    assert "one seed, and no stored noise level" in evidence(verdict)
    noise = NoiseLevel(std=0.01, n=3, source="dnnlab exercise --seeds 3 at abc1234")
    assert noise.threshold() == pytest.approx(scipy_stats.t.ppf(0.975, 2) * 0.01)
    assert decide([0.05], noise=noise).direction == HIGHER  # 0.05 > 4.30 x 0.01
    assert decide([-0.03], noise=noise).direction == UNDECIDED
    assert "abc1234" in decide([0.05], noise=noise).reason
    assert evidence(decide([0.05], noise=noise)) == (
        "+5.0 points (one seed: with this comparison's seed-to-seed noise over 3 seeds, "
        "it decides only beyond ±4.3 points)"
    )
    log_noise = NoiseLevel(std=0.1, n=3, source="x")  # of log ratios
    assert "below 0.65× or above 1.54×" in evidence(decide([1.2], null=1.0, ratio=True, noise=log_noise), "×")
