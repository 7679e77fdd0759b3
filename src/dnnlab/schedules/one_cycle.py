"""1cycle (Smith 2018) as schedules of the optimizer's step count, evaluated inside the compiled step.

The curves live in `dnnlab.schedules.curves` (pure functions of progress). As in the textbook,
both are piecewise linear, so here their values at the phase boundaries (`ONE_CYCLE_KNOTS`) are
interpolated per step by `PiecewiseLinear`, a Keras `LearningRateSchedule`.
The optimizer evaluates it from its own `iterations` counter in every train step, like any
Keras LR schedule, so no per-batch callback runs: such a callback makes Keras wait for every
batch (part 8f ran 3.5 s per epoch at batch 128 with one, on an idle machine; see
docs/benchmarks/issue-7.md). A resumed run restores `iterations`, so its cycle carries on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
from keras import ops

from dnnlab.schedules.curves import ONE_CYCLE_KNOTS, one_cycle_lr_knots, one_cycle_momentum_knots


@keras.saving.register_keras_serializable(package="dnnlab")
class PiecewiseLinear(keras.optimizers.schedules.LearningRateSchedule):
    """A value interpolated linearly between knots `(steps[i], values[i])`.

    Flat before the first knot and after the last. Usable as an optimizer's learning rate, or
    as `ScheduledMomentumSGD`'s momentum.

    Args:
        steps: increasing step numbers (at least one).
        values: the value at each of `steps`.
    """

    def __init__(self, steps: Sequence[float], values: Sequence[float]):
        super().__init__()
        if not steps or len(steps) != len(values):
            raise ValueError(f"need as many values as steps (at least one), got {len(steps)} and {len(values)}")
        if any(b <= a for a, b in zip(steps, steps[1:])):
            raise ValueError(f"steps must increase, got {list(steps)}")
        self.steps = [float(s) for s in steps]
        self.values = [float(v) for v in values]

    def __call__(self, step):
        step = ops.cast(step, "float32")
        # The segment holding `step` is picked, not the increments summed: in float32 a sum of
        # rises and falls would cancel and lose the tiny final LR (1e-4 of the peak).
        value = ops.convert_to_tensor(self.values[-1], "float32")
        segments = list(zip(self.steps, self.steps[1:], self.values, self.values[1:]))
        for s0, s1, v0, v1 in reversed(segments):
            within = v0 + (v1 - v0) * ops.clip((step - s0) / (s1 - s0), 0.0, 1.0)
            value = ops.where(step < s1, within, value)
        return value

    def get_config(self):
        return {"steps": self.steps, "values": self.values}


@dataclass(frozen=True)
class OneCycleSchedules:
    lr: PiecewiseLinear
    momentum: PiecewiseLinear


def one_cycle_schedules(
    max_lr: float,
    total_steps: int,
    div: float = 10.0,
    final_div: float = 1e4,
    high_momentum: float = 0.95,
    low_momentum: float = 0.85,
) -> OneCycleSchedules:
    """1cycle over `total_steps` batches: `curves.one_cycle_lr` and `curves.one_cycle_momentum` per step.

    The LR rises from `max_lr / div` to `max_lr` over 45% of the batches, falls back over the
    next 45%, and drops to `max_lr / final_div` over the last 10%. The momentum moves the other
    way, `high_momentum` to `low_momentum` and back, and stays high at the end. Batch `k`
    (0-based) is at progress `k / (total_steps - 1)`, so the first and last batches get the
    curves' endpoints (`curves.progress`).
    """
    if not max_lr > 0:
        raise ValueError(f"max_lr must be positive, got {max_lr}")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if not (div >= 1 and final_div >= div):
        raise ValueError(f"need 1 <= div <= final_div, got div={div}, final_div={final_div}")
    if not 0 <= low_momentum <= high_momentum < 1:
        raise ValueError(f"need 0 <= low_momentum <= high_momentum < 1, got {low_momentum}, {high_momentum}")
    knots = len(ONE_CYCLE_KNOTS) if total_steps > 1 else 1  # one batch: progress 0 only
    steps = [pos * (total_steps - 1) for pos in ONE_CYCLE_KNOTS[:knots]]
    return OneCycleSchedules(
        lr=PiecewiseLinear(steps, one_cycle_lr_knots(max_lr, div, final_div)[:knots]),
        momentum=PiecewiseLinear(steps, one_cycle_momentum_knots(high_momentum, low_momentum)[:knots]),
    )
