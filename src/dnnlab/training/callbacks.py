"""Small callbacks Keras lacks. Keras's own (EarlyStopping, ModelCheckpoint, CSVLogger,
TerminateOnNaN, BackupAndRestore) are used as they are."""

from __future__ import annotations

import time

import keras


class EpochTimer(keras.callbacks.Callback):
    """Adds each epoch's wall time, in seconds, to the epoch logs as `epoch_time`.

    Place it before `CSVLogger` in the callback list so the CSV gets the column: Keras
    passes one logs dict to every callback of an epoch in list order.

    Args:
        clock: a function returning seconds; defaults to `time.perf_counter`
            (tests pass a scripted clock).
    """

    def __init__(self, clock=time.perf_counter):
        super().__init__()
        self.clock = clock
        self._start = None

    def on_train_begin(self, logs=None):
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._start is not None:
            logs["epoch_time"] = self.clock() - self._start
