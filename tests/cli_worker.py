"""A `dnnlab search` or `dnnlab study` worker on synthetic data: the CI tests start several of these at once.

Usage: python tests/cli_worker.py search|study [flags...]

It runs the real CLI (`dnnlab.cli.main`) after two test-only substitutions:
  * `load_data` of `dnnlab.search.run` and `dnnlab.study.run`, the documented test hooks, returns
    `tests.conftest.synthetic_splits`;
  * each epoch sleeps $WORKER_EPOCH_SLEEP seconds (default 0), so a test can reliably kill a
    worker in the middle of a trial: a search trial's epochs end in `OptunaPruning`, a study
    cell's (a `dnnlab train` run) in `EpochTimer`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests` as a package, from any cwd

from dnnlab.cli import main  # noqa: E402
from dnnlab.search import run as search_run  # noqa: E402
from dnnlab.search.trial_pruning import OptunaPruning  # noqa: E402
from dnnlab.study import run as study_run  # noqa: E402
from dnnlab.training.callbacks import EpochTimer  # noqa: E402
from tests.conftest import synthetic_splits  # noqa: E402

EPOCH_SLEEP = float(os.environ.get("WORKER_EPOCH_SLEEP", "0"))


def slowed(epoch_end):
    def slow_epoch_end(self, epoch, logs=None):
        time.sleep(EPOCH_SLEEP)
        epoch_end(self, epoch, logs)

    return slow_epoch_end


if __name__ == "__main__":
    for module in (search_run, study_run):
        module.load_data = lambda config: synthetic_splits(n_train=256, n_valid=128, n_test=64)
    for callback in (OptunaPruning, EpochTimer):
        callback.on_epoch_end = slowed(callback.on_epoch_end)
    sys.exit(main(sys.argv[1:]))
