"""A `dnnlab study` worker on synthetic data: the CI tests start several of these at once.

Usage: python tests/study_worker.py optimizers|schedules [dnnlab study flags...]

It runs the real CLI (`dnnlab.cli.main(["study", ...])`) after two test-only substitutions:
  * `dnnlab.study.run.load_data`, the documented test hook, returns `tests.conftest.synthetic_splits`;
  * each epoch sleeps $STUDY_WORKER_EPOCH_SLEEP seconds (default 0), so a test can reliably kill
    a worker in the middle of a cell.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests` as a package, from any cwd

from dnnlab.cli import main  # noqa: E402
from dnnlab.study import run as study_run  # noqa: E402
from dnnlab.training.callbacks import EpochTimer  # noqa: E402
from tests.conftest import synthetic_splits  # noqa: E402

EPOCH_SLEEP = float(os.environ.get("STUDY_WORKER_EPOCH_SLEEP", "0"))


def slow_epoch_end(self, epoch, logs=None, _timed=EpochTimer.on_epoch_end):
    time.sleep(EPOCH_SLEEP)
    _timed(self, epoch, logs)


if __name__ == "__main__":
    study_run.load_data = lambda config: synthetic_splits(n_train=256, n_valid=128, n_test=64)
    EpochTimer.on_epoch_end = slow_epoch_end
    sys.exit(main(["study", *sys.argv[1:]]))
