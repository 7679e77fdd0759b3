"""Schedules as pure functions of training progress `pos` in [0, 1] (fastai style).

`pos = step / (total_steps - 1)`, so the first step gets `pos = 0` and the last `pos = 1`:
every schedule hits both of its endpoints. The LR range test and 1cycle are a few lines on
top of the same helpers: the range test's callback (`lr_range_test.py`) only counts steps, and
`one_cycle.py` samples the 1cycle curves at their phase boundaries for the compiled step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

Anneal = Callable[[float, float, float], float]  # (pos, start, end) -> value

# 1cycle after Smith (2018) and the textbook's `OneCycleScheduler`: rise for 45% of the steps,
# fall back for 45%, then spend the last 10% dropping far below the starting LR.
ONE_CYCLE_RISE = 0.45
ONE_CYCLE_TAIL = 0.10


def progress(step: int, total_steps: int) -> float:
    """`pos` of 0-based `step` out of `total_steps`, clipped to [0, 1] (one step: 0)."""
    if total_steps <= 1:
        return 0.0
    return min(max(step / (total_steps - 1), 0.0), 1.0)


def linear(pos: float, start: float, end: float) -> float:
    return start + (end - start) * pos


def cosine(pos: float, start: float, end: float) -> float:
    """Half a cosine from `start` to `end`: flat at both ends, steepest in the middle."""
    return end + (start - end) * (1 + math.cos(math.pi * pos)) / 2


def exponential(pos: float, start: float, end: float) -> float:
    """Evenly spaced in log(value): the LR range test's sweep from 1e-7 to 10."""
    return start * (end / start) ** pos


def combine(pos: float, phases: Sequence[tuple[float, Anneal, float, float]]) -> float:
    """Phases `(fraction, anneal, start, end)` laid end to end; the fractions must sum to 1.

    Each phase sees its own progress in [0, 1], so a phase reaches its `end` exactly where
    the next one begins.
    """
    begin = 0.0
    for i, (fraction, anneal, start, end) in enumerate(phases):
        last = i == len(phases) - 1
        if pos <= begin + fraction or last:
            local = (pos - begin) / fraction if fraction > 0 else 1.0
            return anneal(min(max(local, 0.0), 1.0), start, end)
        begin += fraction
    raise ValueError("combine() needs at least one phase")


def one_cycle_lr(
    pos: float, max_lr: float, div: float = 10.0, final_div: float = 1e4, anneal: Anneal = linear
) -> float:
    """1cycle LR: max_lr/div up to max_lr, back to max_lr/div, then down to max_lr/final_div.

    Defaults are the textbook's: start at a tenth of the peak and end 1000x below the start.
    Pass `anneal=cosine` for fastai's smoother variant.
    """
    low = max_lr / div
    fall = 1.0 - ONE_CYCLE_RISE - ONE_CYCLE_TAIL
    return combine(pos, [
        (ONE_CYCLE_RISE, anneal, low, max_lr),
        (fall, anneal, max_lr, low),
        (ONE_CYCLE_TAIL, anneal, low, max_lr / final_div),
    ])


def one_cycle_momentum(pos: float, high: float = 0.95, low: float = 0.85, anneal: Anneal = linear) -> float:
    """Momentum cycled inversely to `one_cycle_lr`: high -> low while the LR rises, back after.

    Smith (2018): a large LR with large momentum is unstable, so momentum makes room while
    the LR peaks, and stays at `high` during the final LR drop.
    """
    fall = 1.0 - ONE_CYCLE_RISE - ONE_CYCLE_TAIL
    return combine(pos, [
        (ONE_CYCLE_RISE, anneal, high, low),
        (fall, anneal, low, high),
        (ONE_CYCLE_TAIL, anneal, high, high),
    ])
