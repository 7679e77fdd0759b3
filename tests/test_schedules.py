import numpy as np
import pytest

from dnnlab.schedules.curves import exponential, one_cycle_lr, one_cycle_momentum, progress

PEAK_AT = 0.45  # the textbook's 1cycle rises for 45% of the steps


def test_progress_spans_zero_to_one():
    assert [progress(i, 5) for i in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert progress(0, 1) == 0.0 and progress(9, 5) == 1.0


def test_exponential_is_log_linear_and_hits_endpoints():
    values = np.array([exponential(p, 1e-7, 10.0) for p in np.linspace(0, 1, 9)])
    assert values[0] == pytest.approx(1e-7) and values[-1] == pytest.approx(10.0)
    ratios = values[1:] / values[:-1]
    assert np.allclose(ratios, ratios[0]) and ratios[0] == pytest.approx(10.0)  # 8 decades in 8 steps


def textbook_one_cycle_lr(iteration: int, iterations: int, max_rate: float) -> float:
    """The textbook's `OneCycleScheduler` (ch. 11), a reference written apart from dnnlab's knots."""
    start_rate = max_rate / 10
    last_rate = start_rate / 1000
    last_iterations = iterations // 10 + 1
    half_iteration = (iterations - last_iterations) // 2

    def interpolate(iter1, iter2, rate1, rate2):
        return (rate2 - rate1) * (iteration - iter1) / (iter2 - iter1) + rate1

    if iteration < half_iteration:
        return interpolate(0, half_iteration, start_rate, max_rate)
    if iteration < 2 * half_iteration:
        return interpolate(half_iteration, 2 * half_iteration, max_rate, start_rate)
    return interpolate(2 * half_iteration, iterations, start_rate, last_rate)


def test_one_cycle_lr_follows_the_textbook_rule():
    iterations, max_rate = 1001, 0.05  # the book's phase boundaries fall on steps 450 and 900
    ours = [one_cycle_lr(progress(i, iterations), max_rate) for i in range(iterations)]
    book = [textbook_one_cycle_lr(i, iterations, max_rate) for i in range(iterations)]
    assert ours[:901] == pytest.approx(book[:901], rel=1e-9)  # warm-up and cool-down: the same line
    # The final drop: the book stops one step short of its last rate; ours ends on it, at the last step.
    tail = np.array(ours[900:])
    assert tail[0] == pytest.approx(max_rate / 10) and tail[-1] == pytest.approx(max_rate / 1e4)
    assert np.allclose(np.diff(tail), np.diff(tail)[0]) and np.all(np.array(book[900:]) >= tail)


def test_one_cycle_lr_shape():
    max_lr = 0.1
    assert one_cycle_lr(0.0, max_lr) == pytest.approx(0.01)  # max/10: the textbook's start
    assert one_cycle_lr(PEAK_AT, max_lr) == pytest.approx(max_lr)  # the peak
    assert one_cycle_lr(0.9, max_lr) == pytest.approx(0.01)  # back to the start
    assert one_cycle_lr(1.0, max_lr) == pytest.approx(1e-5)  # 1000x below the start
    grid = np.linspace(0, 1, 201)
    lrs = [one_cycle_lr(p, max_lr) for p in grid]
    assert max(lrs) == pytest.approx(max_lr) and grid[int(np.argmax(lrs))] == pytest.approx(PEAK_AT)


def test_one_cycle_momentum_moves_inversely_to_the_lr():
    grid = np.linspace(0, 0.9, 91)  # the last 10% keeps momentum high while the LR keeps falling
    lrs = np.array([one_cycle_lr(p, 1.0) for p in grid])
    momentums = np.array([one_cycle_momentum(p) for p in grid])
    assert np.all(np.sign(np.diff(lrs)) == -np.sign(np.diff(momentums)))
    assert momentums[int(np.argmax(lrs))] == pytest.approx(0.85)
    assert one_cycle_momentum(0.0) == pytest.approx(0.95) and one_cycle_momentum(1.0) == pytest.approx(0.95)
