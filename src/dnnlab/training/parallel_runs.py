"""Train several runs at once, each in its own process: `train_in_parallel`.

On the 2-core machine, two fused-step trainings side by side ran at 3.3-4.4 s/epoch each
(median 3.5) where one alone took 3.0-3.9 s: 1.7-2.2x the throughput of one run at a time, and
`make run` went from 6:28 to 4:23 (docs/benchmarks/issue-7.md). Processes, not threads: Keras
keeps its seeds, layer names and session per process, and `train` sets them.

The parent saves the prepared splits once as `.npy` files and every worker memory-maps them,
so no worker reads or checks CIFAR-10 again and the page cache holds one copy. Each worker is
`python -m dnnlab.training.parallel_runs CONFIG_JSON SPLITS_DIR`, which calls `train`, so
a run trained here is the run `dnnlab train` would have written, and it resumes the same way.
Workers run in their own session: a Ctrl-C (or SIGTERM) reaches the parent once, and the
parent passes it to every worker, which stops and keeps what it has (`train_in_parallel`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
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

import numpy as np

from dnnlab import log as logs
from dnnlab.config import RunConfig
from dnnlab.data import Splits
from dnnlab.errors import ERROR_PREFIX, INTERRUPTED_EXIT, USAGE_ERROR, DnnlabError, writing
from dnnlab.training.run_dir import INTERRUPTED
from dnnlab.training.train import train

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 30  # a worker ended by a failing parent gets this long to save, then is killed
SCRATCH_PREFIX = "splits-"  # + the parent's pid: the shared data of one call, removed at its end


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


def _echo(worker: _Worker) -> None:
    """Log the worker's output line by line under its label, keeping its last line for errors.

    Reads to the end even if logging fails (a closed terminal): a worker whose pipe is not
    drained blocks on its next write, and the parent would wait for it forever.
    """
    for line in worker.process.stdout:
        line = line.rstrip()
        if line:
            worker.last_line = line
            try:
                log.info("  [%s] %s", worker.job.label, line, extra=logs.PLAIN)
            except (OSError, ValueError):
                pass


def _failure(worker: _Worker) -> str:
    """One line: which run failed and why, from its exit status and last output line."""
    code = worker.process.returncode
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"failed (exit {code})"
    reason = worker.last_line.removeprefix(ERROR_PREFIX) or "no output"
    return f"{worker.job.label} {how}: {reason}"


def _remove_stale_folders(scratch: Path) -> None:
    """Delete the shared data of earlier parents that died without cleaning up (kill -9, OOM)."""
    for folder in scratch.glob(f"{SCRATCH_PREFIX}*"):
        pid = folder.name.removeprefix(SCRATCH_PREFIX).split("-", 1)[0]
        try:
            os.kill(int(pid), 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            pass  # someone else's live process


def _stop(workers: list[_Worker]) -> None:
    """End workers still running when the parent itself fails: SIGTERM, then SIGKILL."""
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for worker in workers:
        try:
            worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()


def train_in_parallel(
    jobs: Iterable[Job],
    splits: Splits,
    workers: int,
    scratch: Path,
    on_start: Callable[[Job], None],
    on_done: Callable[[Job, int], None],
    verbose: int | None = None,
) -> str | None:
    """Train every job, at most `workers` at once, in job order; the stopping signal's name, if any.

    Each worker's output is logged line by line under its label. `on_start(job)` is called as
    each worker starts and `on_done(job, exit_code)` as it ends; `verbose` is Keras's verbosity
    in the workers (None: one line per epoch). After a Ctrl-C or SIGTERM no new job starts and
    the running ones stop: at the end of their current group of batches while training, at once
    during an LR search; a second signal aborts them. Their
    folders resume on the next run. A worker that fails stops new starts too, the others
    finish, and then its failure is raised as a one-line `DnnlabError`. If the parent itself
    fails, it ends its workers before it returns.
    """
    pending, running = list(enumerate(jobs)), []
    received: list[int] = []
    failed: list[_Worker] = []

    def forward(signum, frame) -> None:
        received.append(signum)
        for worker in running:
            worker.process.send_signal(signum)

    # Signal handlers can only be set from the main thread; elsewhere the caller's stay.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    folder = None
    try:
        _remove_stale_folders(scratch)
        folder = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=scratch))
        try:
            save_splits(splits, folder)
        except OSError as exc:
            raise DnnlabError(
                f"could not save the data for the worker processes in {folder} ({exc}); "
                "free some space there, or train one run at a time with --jobs 1"
            ) from exc
        while pending or running:
            while pending and len(running) < workers and not received and not failed:
                index, job = pending.pop(0)
                on_start(job)
                worker = _start(index, job, folder, verbose)
                running.append(worker)
                if received:  # the signal came while this one was starting: it missed the forward
                    worker.process.send_signal(received[0])
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
        _stop(running)  # empty unless the parent failed
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    if failed:
        raise DnnlabError(_failure(failed[0]))
    return signal.Signals(received[0]).name if received else None


def _start(index: int, job: Job, folder: Path, verbose: int | None) -> _Worker:
    config_file = folder / f"job-{index}.json"
    with writing(config_file):
        config_file.write_text(json.dumps(job.config.to_dict()))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dnnlab.training.parallel_runs",
            str(config_file),
            str(folder),
            *([] if verbose is None else [str(verbose)]),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    worker = _Worker(job, process)
    worker.echo = threading.Thread(target=_echo, args=(worker,), daemon=True)
    worker.echo.start()
    return worker


def main(argv: list[str]) -> int:
    """A worker: `CONFIG_JSON SPLITS_DIR [VERBOSE]`, train one saved run config on the saved splits."""
    logs.configure()
    try:
        config = RunConfig.from_dict(json.loads(Path(argv[0]).read_text()))
        result = train(config, load_saved_splits(Path(argv[1])), verbose=int(argv[2]) if len(argv) > 2 else None)
    except DnnlabError as exc:
        log.error("%s", exc, extra={"prefix": ERROR_PREFIX})  # the parent reads the reason after the prefix
        return USAGE_ERROR
    except KeyboardInterrupt:  # a signal outside training's own handler (the LR search), or a second one
        log.warning("aborted; the last finished epoch is kept")
        return INTERRUPTED_EXIT
    return INTERRUPTED_EXIT if result.status == INTERRUPTED else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
