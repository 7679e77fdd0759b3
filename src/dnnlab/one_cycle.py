"""1cycle (Smith 2018) as a Keras callback that sets the LR and momentum before every batch."""

from __future__ import annotations

import keras

from dnnlab.schedules import one_cycle_lr, one_cycle_momentum, progress


class OneCycle(keras.callbacks.Callback):
    """Steps the 1cycle policy per **batch** (not per epoch) over the whole of `fit`.

    The LR rises from `max_lr / div` to `max_lr`, falls back, then drops to
    `max_lr / final_div` over the last 10% of the batches (`schedules.one_cycle_lr`). The
    momentum moves the other way, from `high_momentum` to `low_momentum` and back
    (`schedules.one_cycle_momentum`). The number of batches is `epochs x steps` from `fit`
    unless given. The values applied are recorded in `lrs` and `momentums`, reset at train
    begin, so an instance can be reused.

    Args:
        max_lr: the peak LR, e.g. from the LR range test.
        total_steps: batches in the cycle; defaults to all batches of the `fit` call.
        div: the first LR is `max_lr / div`. Defaults to 10 (the textbook's).
        final_div: the last LR is `max_lr / final_div`. Defaults to 1e4 (the textbook's).
        cycle_momentum: also cycle the momentum; needs an optimizer with a
            `current_momentum` variable (`dnnlab.momentum_sgd.VariableMomentumSGD`).
            Defaults to True.
        high_momentum: momentum at both ends of the cycle. Defaults to 0.95.
        low_momentum: momentum at the LR peak. Defaults to 0.85.
    """

    def __init__(self, max_lr: float, total_steps: int | None = None, div: float = 10.0, final_div: float = 1e4,
                 cycle_momentum: bool = True, high_momentum: float = 0.95, low_momentum: float = 0.85):
        super().__init__()
        if not max_lr > 0:
            raise ValueError(f"max_lr must be positive, got {max_lr}")
        if total_steps is not None and total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        if not (div >= 1 and final_div >= div):
            raise ValueError(f"need 1 <= div <= final_div, got div={div}, final_div={final_div}")
        if not 0 <= low_momentum <= high_momentum < 1:
            raise ValueError(f"need 0 <= low_momentum <= high_momentum < 1, got {low_momentum}, {high_momentum}")
        self.max_lr = max_lr
        self.total_steps = total_steps
        self.div = div
        self.final_div = final_div
        self.cycle_momentum = cycle_momentum
        self.high_momentum = high_momentum
        self.low_momentum = low_momentum
        self.lrs: list[float] = []
        self.momentums: list[float] = []
        self._steps = total_steps

    def on_train_begin(self, logs=None):
        self.lrs, self.momentums = [], []
        self._steps = self.total_steps
        if self._steps is None:
            epochs, steps = self.params.get("epochs"), self.params.get("steps")
            if not epochs or not steps:
                raise ValueError("OneCycle needs total_steps when fit does not know its steps per epoch")
            self._steps = epochs * steps
        if self.cycle_momentum and not hasattr(self.model.optimizer, "current_momentum"):
            raise ValueError(
                f"cannot cycle the momentum of {type(self.model.optimizer).__name__}: its momentum is fixed "
                "when the train step compiles; use dnnlab.momentum_sgd.VariableMomentumSGD or cycle_momentum=False"
            )

    def on_train_batch_begin(self, batch, logs=None):
        optimizer = self.model.optimizer  # on JAX this syncs the training state, so the assignments take effect
        # The optimizer's step counter, not a count of our own: a resumed run restores it, so the
        # schedule carries on where it stopped instead of starting a new cycle.
        pos = progress(int(keras.ops.convert_to_numpy(optimizer.iterations)), self._steps)
        lr = one_cycle_lr(pos, self.max_lr, self.div, self.final_div)
        optimizer.learning_rate = lr
        self.lrs.append(lr)
        if self.cycle_momentum:
            momentum = one_cycle_momentum(pos, self.high_momentum, self.low_momentum)
            optimizer.current_momentum.assign(momentum)
            self.momentums.append(momentum)
