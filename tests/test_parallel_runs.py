"""Runs trained in worker processes must equal in-process runs, fail clearly and stop on a signal."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from dnnlab.config import ModelConfig, RunConfig, TrainConfig
from dnnlab.errors import DnnlabError
from dnnlab.training.history import read_history_csv
from dnnlab.training.parallel_runs import Job, train_in_parallel
from dnnlab.training.run_dir import COMPLETED, INTERRUPTED, METRICS_FILE
from dnnlab.training.run_lock import RunLock
from dnnlab.training.train import train
from tests.conftest import synthetic_splits

TINY = ModelConfig(depth=2, width=16)


def job(tmp_path, name: str, **train_fields) -> Job:
    train_fields = {"lr": 1e-3, "epochs": 3, "batch_size": 32, **train_fields}
    config = RunConfig(
        variant="bn", name=name, out=str(tmp_path / "runs"), model=TINY, train=TrainConfig(**train_fields)
    )
    return Job(name, config)


def run_all(jobs: list[Job], splits, scratch, **callbacks) -> tuple[str | None, list]:
    ended = []
    stopped = train_in_parallel(
        jobs,
        splits,
        2,
        scratch,
        on_start=callbacks.get("on_start", lambda job: None),
        on_done=lambda job, code: ended.append((job.label, code)),
    )
    return stopped, ended


def metrics_of(config: RunConfig) -> dict:
    return json.loads((config.run_dir / METRICS_FILE).read_text())


def test_workers_train_exactly_what_train_trains_in_process(tmp_path, capsys):
    splits = synthetic_splits(n_train=256, n_valid=64, n_test=64)
    jobs = [job(tmp_path, "seed-1", seed=1), job(tmp_path, "seed-2", seed=2)]
    stopped, ended = run_all(jobs, splits, tmp_path)
    assert stopped is None and sorted(ended) == [("seed-1", 0), ("seed-2", 0)]
    assert "  [seed-1] Epoch 1/3" in capsys.readouterr().out  # each worker's output, labelled
    assert list(tmp_path.glob("splits-*")) == []  # the shared arrays are removed afterwards
    for item in jobs:
        alone = train(job(tmp_path / "alone", item.label, seed=item.config.train.seed).config, splits, verbose=0)
        assert metrics_of(item.config)["status"] == COMPLETED
        for key in ("valid_loss", "valid_accuracy", "test_loss", "best_epoch"):
            assert metrics_of(item.config)[key] == alone.metrics[key], key
        assert read_history_csv(item.config.run_dir / "history.csv")["loss"] == alone.history["loss"]
    # Different seeds really trained differently: the equality above is not a shared constant.
    assert metrics_of(jobs[0].config)["valid_loss"] != metrics_of(jobs[1].config)["valid_loss"]


def test_a_failing_worker_is_one_clear_error_and_later_jobs_do_not_start(tmp_path):
    splits = synthetic_splits(n_train=64, n_valid=32, n_test=32)
    locked, fine, never = job(tmp_path, "locked"), job(tmp_path, "fine"), job(tmp_path, "never")
    locked.config.run_dir.mkdir(parents=True)
    with RunLock(locked.config.run_dir), pytest.raises(DnnlabError) as raised:
        run_all([locked, fine, never], splits, tmp_path)
    message = str(raised.value)
    assert message.startswith("locked failed (exit 2): ") and "\n" not in message
    assert "lock" in message.removeprefix("locked") and "dnnlab: error" not in message
    assert metrics_of(fine.config)["status"] == COMPLETED  # the run already going was finished, not lost
    assert not never.config.run_dir.exists()


def test_a_signal_stops_every_worker_and_the_rerun_resumes(tmp_path):
    splits = synthetic_splits(n_train=256, n_valid=64, n_test=64)
    jobs = [job(tmp_path, name, epochs=400, patience=400) for name in ("one", "two")]

    def interrupt_when_training() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if all((item.config.run_dir / "history.csv").exists() for item in jobs):
                os.kill(os.getpid(), signal.SIGINT)  # as a Ctrl-C reaches the parent
                return
            time.sleep(0.05)

    threading.Thread(target=interrupt_when_training, daemon=True).start()
    stopped, ended = run_all(jobs, splits, tmp_path)
    assert stopped == "SIGINT" and len(ended) == 2
    for item in jobs:
        metrics = metrics_of(item.config)
        assert metrics["status"] == INTERRUPTED and metrics["epochs_run"] < 400
    stopped, _ = run_all(jobs, splits, tmp_path)
    assert stopped is None
    assert [metrics_of(item.config)["epochs_run"] for item in jobs] == [400, 400]


def test_no_room_for_the_shared_data_is_one_clear_error(tmp_path, monkeypatch):
    import dnnlab.training.parallel_runs as parallel_runs

    def disk_full(splits, folder):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(parallel_runs, "save_splits", disk_full)
    with pytest.raises(DnnlabError, match=r"could not save the data .*No space left.*--jobs 1"):
        run_all(
            [job(tmp_path, "one"), job(tmp_path, "two")], synthetic_splits(n_train=64, n_valid=32, n_test=32), tmp_path
        )
    assert list(tmp_path.glob("splits-*")) == []


def workers_mentioning(path) -> list[str]:
    """Command lines of live `dnnlab.parallel_runs` workers whose arguments lie under `path`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"dnnlab.parallel_runs" in args and any(str(path).encode() in a for a in args):
            found.append(b" ".join(args).decode(errors="replace"))
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux's /proc to find the workers")
def test_a_failing_parent_ends_its_workers(tmp_path):
    splits = synthetic_splits(n_train=256, n_valid=64, n_test=64)
    jobs = [job(tmp_path, name, epochs=400, patience=400) for name in ("first", "second")]

    def on_start(item: Job) -> None:
        if item.label == "second":
            raise RuntimeError("the parent breaks")

    with pytest.raises(RuntimeError, match="the parent breaks"):
        run_all(jobs, splits, tmp_path, on_start=on_start)
    assert workers_mentioning(tmp_path) == []  # "first" did not go on training as an orphan
    assert list(tmp_path.glob("splits-*")) == []


def test_shared_data_left_by_a_dead_parent_is_removed(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"splits-{dead.stdout.strip()}-abc"
    stale.mkdir()
    mine = tmp_path / f"splits-{os.getpid()}-keep"  # a live process's folder stays
    mine.mkdir()
    run_all([], synthetic_splits(n_train=64, n_valid=32, n_test=32), tmp_path)
    assert not stale.exists() and mine.exists()
