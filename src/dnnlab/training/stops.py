"""Ending a run early, at a batch boundary: a diverged loss, or Ctrl-C / SIGTERM.

Both callbacks raise a `TrainingStopped` instead of setting `model.stop_training`. With
`stop_training`, Keras still validates the cut-short epoch and calls every `on_epoch_end`, so
the partial epoch would be logged, judged by EarlyStopping and checkpointed as if complete:
its numbers would enter the history and a resumed run would skip the rest of that epoch.
The caller catches the exception; the last completed epoch is already on disk.
"""

from __future__ import annotations

import logging
import math
import signal
import threading

import keras

log = logging.getLogger(__name__)


class TrainingStopped(Exception):
    """Training stopped inside `epoch` (1-based); the epochs before it are complete."""

    def __init__(self, epoch: int):
        super().__init__(f"stopped in epoch {epoch}")
        self.epoch = epoch


class Diverged(TrainingStopped):
    """The training loss became NaN or infinite."""


class Interrupted(TrainingStopped):
    """A signal (SIGINT from Ctrl-C, or SIGTERM) asked the run to stop."""

    def __init__(self, epoch: int, signal_number: int):
        super().__init__(epoch)
        self.signal_number = signal_number


def divergence_message(epoch: int, lr: float) -> str:
    return f"diverged at epoch {epoch} (lr={lr:g}); try a lower learning rate"


class StopOnDivergence(keras.callbacks.Callback):
    """Raises `Diverged(epoch)` when an epoch's training loss is NaN or inf.

    Keras's TerminateOnNaN checks every batch, and any callback that reads batch losses makes
    Keras wait for each step to finish before dispatching the next (measured: 1.1-2.7x the
    wall time of an epoch). Checking the epoch's mean loss instead costs nothing: a NaN or inf
    in any batch makes the mean NaN or inf, and the epoch is not recorded, because this
    callback runs before `RunRecorder`. No arguments.
    """

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise Diverged(epoch + 1)


class StopOnSignal(keras.callbacks.Callback):
    """Turns SIGINT (Ctrl-C) and SIGTERM into `Interrupted` at the end of the current batch.

    Use the instance as a context manager around `fit`: it installs the handlers (only in the
    main thread, where Python allows it) and restores the previous ones afterwards. A second
    signal aborts at once with KeyboardInterrupt, for a user who will not wait for the batch.

    The "stopping" notice is a warning of the `dnnlab` logger (stderr, under the CLI).
    No arguments.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        super().__init__()
        self.received: int | None = None
        self._epoch = 0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignal:
        self.received = None
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc_info) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        # A newline first: Keras's progress bar may be mid-line.
        log.warning(
            "stopping at the end of this batch (press Ctrl-C again to abort now)", extra={"prefix": "\ndnnlab: "}
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    # The check sits before each batch, not after: a callback with a batch-*end* hook makes Keras
    # wait for every step's results, while a batch-begin hook keeps the dispatch asynchronous.
    def on_train_batch_begin(self, batch, logs=None):
        if self.received is not None:
            raise Interrupted(self._epoch + 1, self.received)
