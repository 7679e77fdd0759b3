"""A `dnnlab search` worker on synthetic data: the CI tests start several of these at once.

Usage: python tests/search_worker.py [dnnlab search flags...]

It runs the real CLI (`dnnlab.cli.main(["search", ...])`) after two test-only substitutions:
  * `dnnlab.search.run.load_data`, the documented test hook, returns `tests.conftest.synthetic_splits`;
  * each epoch sleeps $SEARCH_WORKER_EPOCH_SLEEP seconds (default 0), so a test can reliably kill
    a worker in the middle of a trial.
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
from tests.conftest import synthetic_splits  # noqa: E402

EPOCH_SLEEP = float(os.environ.get("SEARCH_WORKER_EPOCH_SLEEP", "0"))


def slow_epoch_end(self, epoch, logs=None, _report=OptunaPruning.on_epoch_end):
    time.sleep(EPOCH_SLEEP)
    _report(self, epoch, logs)


if __name__ == "__main__":
    search_run.load_data = lambda config: synthetic_splits(n_train=256, n_valid=128, n_test=64)
    OptunaPruning.on_epoch_end = slow_epoch_end
    sys.exit(main(["search", *sys.argv[1:]]))
