import math

import numpy as np
import pytest

from dnnlab.schedules import (
    ONE_CYCLE_RISE, combine, cosine, exponential, linear, one_cycle_lr, one_cycle_momentum, progress,
)


def test_progress_spans_zero_to_one():
    assert [progress(i, 5) for i in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert progress(0, 1) == 0.0 and progress(9, 5) == 1.0


def test_exponential_is_log_linear_and_hits_endpoints():
    values = np.array([exponential(p, 1e-7, 10.0) for p in np.linspace(0, 1, 9)])
    assert values[0] == pytest.approx(1e-7) and values[-1] == pytest.approx(10.0)
    ratios = values[1:] / values[:-1]
    assert np.allclose(ratios, ratios[0]) and ratios[0] == pytest.approx(10.0)  # 8 decades in 8 steps


@pytest.mark.parametrize("anneal", [linear, cosine])
def test_annealers_hit_endpoints_and_are_monotone(anneal):
    values = [anneal(p, 3.0, 1.0) for p in np.linspace(0, 1, 11)]
    assert values[0] == pytest.approx(3.0) and values[-1] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_cosine_is_flat_at_the_ends_unlike_linear():
    assert cosine(0.05, 1.0, 0.0) > linear(0.05, 1.0, 0.0)
    assert cosine(0.5, 1.0, 0.0) == pytest.approx(0.5)


def test_combine_runs_phases_end_to_end():
    phases = [(0.25, linear, 0.0, 1.0), (0.75, linear, 1.0, 0.0)]
    assert combine(0.0, phases) == 0.0
    assert combine(0.125, phases) == pytest.approx(0.5)
    assert combine(0.25, phases) == pytest.approx(1.0)
    assert combine(0.625, phases) == pytest.approx(0.5)
    assert combine(1.0, phases) == pytest.approx(0.0)


def test_one_cycle_lr_shape():
    max_lr = 0.1
    assert one_cycle_lr(0.0, max_lr) == pytest.approx(0.01)  # max/10: the textbook's start
    assert one_cycle_lr(ONE_CYCLE_RISE, max_lr) == pytest.approx(max_lr)  # the peak
    assert one_cycle_lr(0.9, max_lr) == pytest.approx(0.01)  # back to the start
    assert one_cycle_lr(1.0, max_lr) == pytest.approx(1e-5)  # 1000x below the start
    grid = np.linspace(0, 1, 201)
    lrs = [one_cycle_lr(p, max_lr) for p in grid]
    assert max(lrs) == pytest.approx(max_lr) and grid[int(np.argmax(lrs))] == pytest.approx(ONE_CYCLE_RISE)


def test_one_cycle_momentum_moves_inversely_to_the_lr():
    grid = np.linspace(0, 0.9, 91)  # the last 10% keeps momentum high while the LR keeps falling
    lrs = np.array([one_cycle_lr(p, 1.0) for p in grid])
    momentums = np.array([one_cycle_momentum(p) for p in grid])
    assert np.all(np.sign(np.diff(lrs)) == -np.sign(np.diff(momentums)))
    assert momentums[int(np.argmax(lrs))] == pytest.approx(0.85)
    assert one_cycle_momentum(0.0) == pytest.approx(0.95) and one_cycle_momentum(1.0) == pytest.approx(0.95)


def test_cosine_one_cycle_keeps_its_endpoints():
    assert one_cycle_lr(0.0, 1.0, anneal=cosine) == pytest.approx(0.1)
    assert one_cycle_lr(1.0, 1.0, anneal=cosine) == pytest.approx(1e-4)
    assert math.isclose(one_cycle_lr(ONE_CYCLE_RISE, 1.0, anneal=cosine), 1.0)
