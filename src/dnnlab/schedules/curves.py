"""Schedules as pure functions of training progress `pos` in [0, 1] (fastai style).

`pos = step / (total_steps - 1)`, so the first step gets `pos = 0` and the last `pos = 1`:
every schedule hits both of its endpoints. The LR range test's callback
(`dnnlab.lr.range_test`) sweeps `exponential`; 1cycle is piecewise linear between
`ONE_CYCLE_KNOTS`, which `one_cycle.py` turns into a schedule of the compiled step.
"""

from __future__ import annotations

import numpy as np

# 1cycle after Smith (2018) and the textbook's `OneCycleScheduler`: rise for 45% of the steps,
# fall back for 45%, then spend the last 10% dropping far below the starting LR. These are the
# progress values where those phases meet; between them every 1cycle curve is linear.
ONE_CYCLE_KNOTS = (0.0, 0.45, 0.9, 1.0)


def progress(step: int, total_steps: int) -> float:
    """`pos` of 0-based `step` out of `total_steps`, clipped to [0, 1] (one step: 0)."""
    if total_steps <= 1:
        return 0.0
    return min(max(step / (total_steps - 1), 0.0), 1.0)


def exponential(pos: float, start: float, end: float) -> float:
    """Evenly spaced in log(value): the LR range test's sweep from 1e-7 to 10."""
    return start * (end / start) ** pos


def one_cycle_lr_knots(max_lr: float, div: float = 10.0, final_div: float = 1e4) -> tuple[float, ...]:
    """1cycle's LR at `ONE_CYCLE_KNOTS`: max_lr/div up to max_lr, back to max_lr/div, down to max_lr/final_div.

    Defaults are the textbook's: start at a tenth of the peak and end 1000x below the start.
    """
    return (max_lr / div, max_lr, max_lr / div, max_lr / final_div)


def one_cycle_momentum_knots(high: float = 0.95, low: float = 0.85) -> tuple[float, ...]:
    """1cycle's momentum at `ONE_CYCLE_KNOTS`, inverse to the LR: high -> low while the LR rises, back after.

    Smith (2018): a large LR with large momentum is unstable, so momentum makes room while the
    LR peaks, and stays at `high` during the final LR drop.
    """
    return (high, low, high, high)


def one_cycle_lr(pos: float, max_lr: float, div: float = 10.0, final_div: float = 1e4) -> float:
    """1cycle's LR at progress `pos` (see `one_cycle_lr_knots`)."""
    return float(np.interp(pos, ONE_CYCLE_KNOTS, one_cycle_lr_knots(max_lr, div, final_div)))


def one_cycle_momentum(pos: float, high: float = 0.95, low: float = 0.85) -> float:
    """1cycle's momentum at progress `pos` (see `one_cycle_momentum_knots`)."""
    return float(np.interp(pos, ONE_CYCLE_KNOTS, one_cycle_momentum_knots(high, low)))
