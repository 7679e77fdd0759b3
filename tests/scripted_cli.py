"""`python -m tests.scripted_cli ARGS...`: the dnnlab CLI on a fake dataset, with scripted faults.

The real loader accepts only the official CIFAR-10 files (md5-checked). This test-only entry
point swaps in the checksums of a folder written by `tests.conftest.write_fake_cifar`, and can
hold or poison training at a known point, so subprocess tests can kill, interrupt or diverge a
run exactly where they mean to. It is configured through the environment, so the CLI arguments
pass through untouched:

    DNNLAB_TEST_CHECKSUMS  a JSON file {file name: md5} replacing the official table
    DNNLAB_TEST_HOLD       "EPOCH:BATCH:MARKER": after that (1-based) batch of that epoch (a
                           compiled group of `FUSED_SAMPLES_IN_TESTS` samples), create
                           the MARKER file and wait while it exists (the test kills the process,
                           or signals it and deletes the marker to let it go on)
    DNNLAB_TEST_NAN_EPOCH  set every trainable weight to NaN as that (1-based) epoch begins
    DNNLAB_TEST_HOLD_RECORD "EPOCH:MARKER": at the end of that (1-based) epoch, after the callbacks
                           before `RunRecorder` (the TensorBoard logger) and before it records
                           the epoch, create MARKER and wait while it exists
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import dnnlab  # noqa: F401  (sets the Keras backend)
import dnnlab.data
import dnnlab.models.fused_steps
import dnnlab.training.train
from dnnlab.training.callbacks import EpochTimer
from dnnlab.training.resume import RunRecorder

HOLD_LIMIT_SECONDS = 300  # a held run that nobody releases or kills must not live forever
# Two 32-sample steps per compiled call: runs still fuse steps, as they do for real, and a
# test's 800 images still make 13 groups per epoch to hold and kill a run in the middle of.
FUSED_SAMPLES_IN_TESTS = 64


class ScriptedEpochTimer(EpochTimer):
    """`EpochTimer` plus the scripted faults above; `train` builds it in place of the real one."""

    def __init__(self, hold: str | None = None, nan_epoch: int | None = None):
        super().__init__()
        self.hold = None
        if hold:
            epoch, batch, marker = hold.split(":", 2)
            self.hold = (int(epoch), int(batch), Path(marker))
        self.nan_epoch = nan_epoch
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self._epoch = epoch + 1
        if self._epoch == self.nan_epoch:
            for variable in self.model.trainable_variables:
                variable.assign(variable * math.nan)

    def on_train_batch_end(self, batch, logs=None):
        if self.hold is not None and (self._epoch, batch + 1) == self.hold[:2]:
            hold_at(self.hold[2])


def hold_at(marker: Path) -> None:
    """Create `marker` and wait while it exists."""
    marker.write_text(str(os.getpid()))
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while marker.exists():
        if time.monotonic() > deadline:
            sys.exit("scripted_cli: held too long; the test never released this run")
        time.sleep(0.02)


class ScriptedRunRecorder(RunRecorder):
    """`RunRecorder` that holds before recording the epoch DNNLAB_TEST_HOLD_RECORD names."""

    hold: tuple[int, Path] | None = None

    def on_epoch_end(self, epoch, logs=None):
        if self.hold is not None and epoch + 1 == self.hold[0]:
            hold_at(self.hold[1])
        super().on_epoch_end(epoch, logs)


def install_faults(environ=os.environ) -> None:
    """Apply the DNNLAB_TEST_* settings to this process."""
    dnnlab.models.fused_steps.FUSED_SAMPLES = FUSED_SAMPLES_IN_TESTS
    if environ.get("DNNLAB_TEST_CHECKSUMS"):
        checksums = json.loads(Path(environ["DNNLAB_TEST_CHECKSUMS"]).read_text())
        # In place: the loader's functions hold this dict as their default argument.
        dnnlab.data.OFFICIAL_MD5.clear()
        dnnlab.data.OFFICIAL_MD5.update(checksums)
    hold = environ.get("DNNLAB_TEST_HOLD")
    nan_epoch = int(environ["DNNLAB_TEST_NAN_EPOCH"]) if environ.get("DNNLAB_TEST_NAN_EPOCH") else None
    if hold or nan_epoch:
        dnnlab.training.train.EpochTimer = lambda: ScriptedEpochTimer(hold, nan_epoch)
    if environ.get("DNNLAB_TEST_HOLD_RECORD"):
        epoch, marker = environ["DNNLAB_TEST_HOLD_RECORD"].split(":", 1)
        ScriptedRunRecorder.hold = (int(epoch), Path(marker))
        dnnlab.training.train.RunRecorder = ScriptedRunRecorder


if __name__ == "__main__":
    install_faults()
    from dnnlab.cli import main

    raise SystemExit(main())
