"""Small callbacks Keras lacks. Keras's own (EarlyStopping, ModelCheckpoint, CSVLogger,
TerminateOnNaN, BackupAndRestore) are used as they are."""

from __future__ import annotations

import time

import keras


class EpochTimer(keras.callbacks.Callback):
    """Adds each epoch's times, in seconds, to the epoch logs.

    - `epoch_time`: wall time of the whole epoch, training and validation;
    - `train_time`: wall time of its training part, up to validation;
    - `train_cpu_time`: this process's CPU time (all threads) over the training part. Unlike
      wall time it barely grows when another job shares the cores, so speed comparisons of
      runs trained side by side (`dnnlab exercise --jobs 2`) use it.

    The training part ends where Keras starts validating (`on_test_begin`). Training steps are
    dispatched asynchronously, so there the callback first waits for the last step (it reads
    the optimizer's step count, which validation would wait for anyway).

    Place it before any callback that records the logs (`RunRecorder`, `CSVLogger`): Keras
    passes one logs dict to every callback of an epoch in list order.

    Args:
        clock: wall-clock seconds; defaults to `time.perf_counter` (tests pass a scripted clock).
        cpu_clock: CPU seconds; defaults to `time.process_time`.
    """

    def __init__(self, clock=time.perf_counter, cpu_clock=time.process_time):
        super().__init__()
        self.clock = clock
        self.cpu_clock = cpu_clock
        self._start = self._cpu_start = self._train_end = None

    def on_train_begin(self, logs=None):
        self._start = self._cpu_start = self._train_end = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._cpu_start, self._train_end = self.clock(), self.cpu_clock(), None

    def _end_training_part(self) -> None:
        if self._start is not None and self._train_end is None:
            if self.model is not None and getattr(self.model, "optimizer", None) is not None:
                keras.ops.convert_to_numpy(self.model.optimizer.iterations)  # waits for the last step
            self._train_end = (self.clock(), self.cpu_clock())

    def on_test_begin(self, logs=None):
        self._end_training_part()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self._start is None:
            return
        self._end_training_part()  # no validation this epoch: training ends here
        train_end, cpu_end = self._train_end
        logs["epoch_time"] = self.clock() - self._start
        logs["train_time"] = train_end - self._start
        logs["train_cpu_time"] = cpu_end - self._cpu_start
        self._start = None
