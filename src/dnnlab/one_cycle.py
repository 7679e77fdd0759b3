"""1cycle (Smith 2018) as schedules of the optimizer's step count, evaluated inside the compiled step.

The formulas live in `dnnlab.schedules` (pure functions of progress). With linear annealing,
the textbook's, both curves are piecewise linear, so here they are sampled at their phase
boundaries and interpolated per step by `PiecewiseLinear`, a Keras `LearningRateSchedule`.
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

from dnnlab.schedules import ONE_CYCLE_RISE, ONE_CYCLE_TAIL, one_cycle_lr, one_cycle_momentum

# Where the 1cycle phases meet, as progress in [0, 1]: the linear curves bend only there.
ONE_CYCLE_KNOTS = (0.0, ONE_CYCLE_RISE, 1.0 - ONE_CYCLE_TAIL, 1.0)


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


def one_cycle_schedules(max_lr: float, total_steps: int, div: float = 10.0, final_div: float = 1e4,
                        high_momentum: float = 0.95, low_momentum: float = 0.85) -> OneCycleSchedules:
    """1cycle over `total_steps` batches: `one_cycle_lr` and `one_cycle_momentum` (linear) per step.

    The LR rises from `max_lr / div` to `max_lr` over 45% of the batches, falls back over the
    next 45%, and drops to `max_lr / final_div` over the last 10%. The momentum moves the other
    way, `high_momentum` to `low_momentum` and back, and stays high at the end. Batch `k`
    (0-based) is at progress `k / (total_steps - 1)`, so the first and last batches get the
    curves' endpoints (`schedules.progress`).
    """
    if not max_lr > 0:
        raise ValueError(f"max_lr must be positive, got {max_lr}")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if not (div >= 1 and final_div >= div):
        raise ValueError(f"need 1 <= div <= final_div, got div={div}, final_div={final_div}")
    if not 0 <= low_momentum <= high_momentum < 1:
        raise ValueError(f"need 0 <= low_momentum <= high_momentum < 1, got {low_momentum}, {high_momentum}")
    knots = ONE_CYCLE_KNOTS if total_steps > 1 else ONE_CYCLE_KNOTS[:1]  # one batch: progress 0
    steps = [pos * (total_steps - 1) for pos in knots]
    return OneCycleSchedules(
        lr=PiecewiseLinear(steps, [one_cycle_lr(pos, max_lr, div, final_div) for pos in knots]),
        momentum=PiecewiseLinear(steps, [one_cycle_momentum(pos, high_momentum, low_momentum) for pos in knots]),
    )
