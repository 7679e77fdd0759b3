"""Train several runs at once, each in its own process: `train_in_parallel`.

On the 2-core machine, two fused-step trainings side by side ran at 3.3-4.4 s/epoch each
where one alone took 3.0-3.9 s: 1.7-2.2x the throughput of one run at a time, and `make run`
went from 6:28 to 4:23 (docs/benchmarks/issue-7.md). Processes, not threads: Keras keeps its seeds, layer names and
session per process, and `train` sets them.

The parent saves the prepared splits once as `.npy` files and every worker memory-maps them,
so no worker reads or checks CIFAR-10 again and the page cache holds one copy. Each worker is
`python -m dnnlab.parallel_runs CONFIG_JSON SPLITS_DIR`, which calls `dnnlab.train.train`, so
a run trained here is the run `dnnlab train` would have written, and it resumes the same way.
Workers run in their own session: a Ctrl-C (or SIGTERM) reaches the parent once, and the
parent passes it to every worker, which stops at the end of its batch and keeps what it has.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from dnnlab.config import RunConfig
from dnnlab.data import Splits
from dnnlab.errors import DnnlabError

POLL_SECONDS = 0.2
ERROR_EXIT = 2  # a worker's bad input or failure, with one "dnnlab: error: ..." line on stderr
INTERRUPTED_EXIT = 128 + signal.SIGINT


@dataclass(frozen=True)
class Job:
    label: str  # how progress lines name the run, e.g. "part a (elu), seed 1/3"
    config: RunConfig


@dataclass
class _Worker:
    job: Job
    process: subprocess.Popen
    echo: threading.Thread | None = None
    last_line: str = ""


def save_splits(splits: Splits, folder: Path) -> None:
    for field in dataclasses.fields(Splits):
        np.save(folder / f"{field.name}.npy", getattr(splits, field.name))


def load_saved_splits(folder: Path) -> Splits:
    """The splits `save_splits` wrote, memory-mapped: workers share one copy in the page cache."""
    return Splits(**{f.name: np.load(folder / f"{f.name}.npy", mmap_mode="r") for f in dataclasses.fields(Splits)})


def _echo(worker: _Worker, stream: IO[str], lock: threading.Lock) -> None:
    """Print the worker's output line by line under its label, keeping its last line for errors."""
    for line in worker.process.stdout:
        line = line.rstrip()
        if line:
            worker.last_line = line
            with lock:
                print(f"  [{worker.job.label}] {line}", file=stream, flush=True)


def train_in_parallel(
    jobs: Iterable[Job], splits: Splits, workers: int, scratch: Path, on_start: Callable[[Job], None],
    on_done: Callable[[Job, int], None], stream: IO[str] | None = None,
) -> str | None:
    """Train every job, at most `workers` at once, in job order; the stopping signal's name, if any.

    `on_start(job)` is called as each worker starts and `on_done(job, exit_code)` as it ends. After a Ctrl-C or SIGTERM no new
    job starts and the running ones stop at the end of their batch (a second signal aborts
    them); their folders resume on the next run. A worker that fails stops new starts too, the
    others finish, and then its last output line is raised as a `DnnlabError`.
    """
    stream = stream or sys.stdout
    pending, running, lock = list(enumerate(jobs)), [], threading.Lock()
    received: list[int] = []
    failed: list[_Worker] = []

    def forward(signum, frame) -> None:
        received.append(signum)
        for worker in running:
            worker.process.send_signal(signum)

    folder = Path(tempfile.mkdtemp(prefix="splits-", dir=scratch))
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            save_splits(splits, folder)
        except OSError as exc:
            raise DnnlabError(f"could not save the data for the worker processes in {folder} ({exc}); "
                              "free some space there, or train one run at a time with --jobs 1") from exc
        while pending or running:
            while pending and len(running) < workers and not received and not failed:
                index, job = pending.pop(0)
                on_start(job)
                running.append(_start(index, job, folder, stream, lock))
            time.sleep(POLL_SECONDS)
            for worker in [w for w in running if w.process.poll() is not None]:
                running.remove(worker)
                worker.echo.join()
                # After a forwarded signal any exit is a stop (SIGTERM outside training kills).
                if not received and worker.process.returncode not in (0, INTERRUPTED_EXIT):
                    failed.append(worker)
                on_done(worker.job, worker.process.returncode)
            if received or failed:
                pending.clear()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(folder, ignore_errors=True)
    if failed:
        worker = failed[0]
        raise DnnlabError(f"{worker.job.label} failed (exit {worker.process.returncode}): {worker.last_line}")
    return signal.Signals(received[0]).name if received else None


def _start(index: int, job: Job, folder: Path, stream: IO[str], lock: threading.Lock) -> _Worker:
    config_file = folder / f"job-{index}.json"
    config_file.write_text(json.dumps(job.config.to_dict()))
    process = subprocess.Popen(
        [sys.executable, "-m", "dnnlab.parallel_runs", str(config_file), str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )
    worker = _Worker(job, process)
    worker.echo = threading.Thread(target=_echo, args=(worker, stream, lock), daemon=True)
    worker.echo.start()
    return worker


def main(argv: list[str]) -> int:
    """A worker: train one saved run config on the saved splits (see the module docstring)."""
    from dnnlab.train import INTERRUPTED, train

    try:
        config = RunConfig.from_dict(json.loads(Path(argv[0]).read_text()))
        result = train(config, load_saved_splits(Path(argv[1])))
    except DnnlabError as exc:
        print(f"dnnlab: error: {exc}", file=sys.stderr)
        return ERROR_EXIT
    except KeyboardInterrupt:  # a second signal: abort now; the last finished epoch is kept
        print("dnnlab: aborted", file=sys.stderr)
        return INTERRUPTED_EXIT
    return INTERRUPTED_EXIT if result.status == INTERRUPTED else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
