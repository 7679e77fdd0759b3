"""The LR range test as a Keras callback: an exponential LR sweep plus a stop rule."""

from __future__ import annotations

import math
import threading

import keras

from dnnlab.models import state as model_state
from dnnlab.schedules.curves import exponential, progress


class LRRangeTest(keras.callbacks.Callback):
    """Raises the LR exponentially every batch and records the loss; restores the model after.

    Before batch `i` the LR is set to `exponential(i / (steps - 1), start_lr, end_lr)`, so the
    first batch runs at `start_lr` and batch `steps` at `end_lr`. After each batch its loss and
    the exponentially smoothed, bias-corrected average are recorded. The sweep ends after
    `steps` batches, or as soon as the smoothed loss exceeds `stop_factor` times the best
    smoothed loss so far or stops being finite (the point that triggered the stop is kept,
    so the plot shows the blow-up). At train end every model and optimizer variable gets its
    value from train begin back.

    The curve is in `lrs`, `losses` (raw) and `smoothed`; `stopped_early` says whether the
    stop rule fired. All are reset at train begin, so an instance can be reused.

    Speed: the callback is `async_safe`, so Keras hands it each batch's loss in a worker
    thread instead of making the training loop wait for every loss: 1.3-2.7x faster per step
    on the 2 shared cores, the more so the busier they are (docs/benchmarks/issue-3.md).
    Batch ends may then arrive late or out of order: they are recorded in step order, and the
    stop takes effect at the next batch begin, a step or more after the loss that triggered
    it (those extra steps are not recorded, and are undone with the rest).

    Args:
        steps: batches in the sweep (at least 2).
        start_lr: LR of the first batch. Defaults to 1e-7.
        end_lr: LR of batch `steps`. Defaults to 10.
        beta: smoothing factor of the loss average. Defaults to 0.98 (fastai's).
        stop_factor: stop when the smoothed loss exceeds this multiple of its best value.
            Defaults to 4.
        restore: put the model and optimizer state back at train end. Defaults to True.
    """

    async_safe = True

    def __init__(
        self,
        steps: int,
        start_lr: float = 1e-7,
        end_lr: float = 10.0,
        beta: float = 0.98,
        stop_factor: float = 4.0,
        restore: bool = True,
    ):
        super().__init__()
        if steps < 2:
            raise ValueError(f"steps must be >= 2 to sweep from start_lr to end_lr, got {steps}")
        if not 0 < start_lr < end_lr:
            raise ValueError(f"need 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}")
        if not 0 <= beta < 1:
            raise ValueError(f"beta must be in [0, 1), got {beta}")
        if stop_factor <= 1:
            raise ValueError(f"stop_factor must be > 1, got {stop_factor}")
        self.steps = steps
        self.start_lr = start_lr
        self.end_lr = end_lr
        self.beta = beta
        self.stop_factor = stop_factor
        self.restore = restore
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.stopped_early = False
        self._average = 0.0
        self._best = math.inf
        self._planned: list[float] = []  # the LR set before each batch, by global step
        self._pending: dict[int, float] = {}  # losses that arrived ahead of an earlier step's
        self._epoch_start = 0  # global step of the current epoch's batch 0
        self._initial_state = None

    # Main thread: the LR for the next batch, and the stop.
    def on_train_begin(self, logs=None):
        self._reset()
        if self.restore:
            self._initial_state = model_state.capture(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = len(self._planned)  # Keras has waited for every batch end of the last epoch

    def on_train_batch_begin(self, batch, logs=None):
        model = self.model  # on JAX this syncs the training state, so the assignments below take effect
        if self.stopped_early:
            model.stop_training = True  # this batch still runs; it is neither recorded nor kept
        lr = exponential(progress(len(self._planned), self.steps), self.start_lr, self.end_lr)
        self._planned.append(lr)
        model.optimizer.learning_rate = lr
        # Keras logs the running mean over the epoch; a reset makes `logs["loss"]` this batch's loss.
        model.reset_metrics()
        if len(self._planned) >= self.steps:
            model.stop_training = True

    # Possibly a worker thread, in any order: record losses in step order.
    def on_train_batch_end(self, batch, logs=None):
        with self._lock:
            self._pending[self._epoch_start + batch] = float(logs["loss"])
            while not self.stopped_early and len(self.losses) in self._pending:
                self._record(self._planned[len(self.losses)], self._pending.pop(len(self.losses)))

    def _record(self, lr: float, loss: float) -> None:
        self._average = self.beta * self._average + (1 - self.beta) * loss
        smoothed = self._average / (1 - self.beta ** (len(self.losses) + 1))  # bias correction
        self.lrs.append(lr)
        self.losses.append(loss)
        self.smoothed.append(smoothed)
        if not math.isfinite(smoothed) or smoothed > self.stop_factor * self._best:
            self.stopped_early = True
        self._best = min(self._best, smoothed)

    def on_train_end(self, logs=None):
        if self._initial_state is not None:
            model_state.restore(self.model, self._initial_state)
            self._initial_state = None
