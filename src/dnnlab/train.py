"""`train(config) -> Result`: Nadam + early stopping with Keras's own callbacks, one run folder.

A run folder (`<out>/<name>/`) holds everything needed to reproduce and report the run:
`config.json` (resolved config), `history.csv` (per-epoch metrics and wall time),
`metrics.json` (status, best epoch, validation and test scores of the restored best model,
timings, seed, versions) and `best.keras` (the best model). While a run is unfinished it also
holds `checkpoint/` (see `dnnlab.resume`), and while a process trains into it, `run.lock`.

Running the same config into the same folder again never trains twice: a finished run
(completed or diverged) is reused as it is; an unfinished one (killed, or interrupted by
Ctrl-C) resumes after its last completed epoch and ends as the uninterrupted run would have.
A folder holding a run of another config is refused, naming the fields that differ.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import keras

from dnnlab.atomic import write_json_atomic
from dnnlab.callbacks import EpochTimer
from dnnlab.config import RunConfig, TrainConfig
from dnnlab.data import Splits, load_splits
from dnnlab.errors import DnnlabError
from dnnlab.fused_steps import fit_batch_size
from dnnlab.models import build_model
from dnnlab.resume import (Checkpoint, RunRecorder, check_same_config, latest_checkpoint, remove_checkpoints,
                           resume_epoch)
from dnnlab.run_lock import RunLock
from dnnlab.stops import Diverged, Interrupted, StopOnDivergence, StopOnSignal, TrainingStopped
from dnnlab.momentum_sgd import ScheduledMomentumSGD
from dnnlab.one_cycle import one_cycle_schedules
from dnnlab.versions import library_versions

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
MODEL_FILE = "best.keras"
CHECKPOINT_DIR = "checkpoint"
COMPLETED = "completed"
INTERRUPTED = "interrupted"  # by Ctrl-C or SIGTERM; running it again resumes it
DIVERGED = "diverged"  # NaN/inf loss; running it again would diverge again, so it is finished too
FINISHED = (COMPLETED, DIVERGED)
EVAL_BATCH_SIZE = 1000  # inference only: large batches are faster and give the same numbers


@dataclass
class Result:
    """What `train` returns: the run folder, its metrics, its history and the restored best model."""

    run_dir: Path
    metrics: dict[str, Any]
    history: dict[str, list[float]]
    model: keras.Model | None  # None when the run stopped before completing an epoch

    @property
    def status(self) -> str:
        """COMPLETED, INTERRUPTED or DIVERGED."""
        return self.metrics["status"]

    @property
    def diverged(self) -> bool:
        """The loss became NaN or inf (an LR search records such a candidate and goes on)."""
        return self.status == DIVERGED


def make_optimizer(train_config: TrainConfig, lr: float, total_steps: int | None = None) -> keras.optimizers.Optimizer:
    """Nadam or SGD at `lr`; under `schedule == "1cycle"` with `total_steps` (the batches of the
    whole fit), `lr` is the cycle's peak and the LR, and SGD's momentum, follow the cycle inside
    the compiled step. Without `total_steps` (an LR range test) they stay constant."""
    cycle = one_cycle_schedules(lr, total_steps) if train_config.schedule == "1cycle" and total_steps else None
    if train_config.optimizer == "sgd":
        if cycle is not None:
            return ScheduledMomentumSGD(learning_rate=cycle.lr, momentum_schedule=cycle.momentum)
        return keras.optimizers.SGD(learning_rate=lr, momentum=train_config.momentum)
    return keras.optimizers.Nadam(learning_rate=cycle.lr if cycle is not None else lr)


def steps_in_fit(config: RunConfig, splits: Splits) -> int:
    """Batches in a whole fit of `config` on `splits` (the length of a 1cycle)."""
    return config.train.epochs * math.ceil(len(splits.x_train) / config.train.batch_size)


def compile_model(model: keras.Model, train_config: TrainConfig, lr: float, total_steps: int | None = None) -> None:
    model.compile(
        optimizer=make_optimizer(train_config, lr, total_steps),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def build_for(config: RunConfig, splits: Splits) -> keras.Model:
    """The config's model, with input statistics from `splits`' training images."""
    return build_model(
        config.model,
        feature_mean=splits.feature_mean,
        feature_std=splits.feature_std,
        input_shape=splits.x_train.shape[1:],
        num_classes=splits.num_classes,
    )


def load_data(config: RunConfig) -> Splits:
    return load_splits(config.data.data_dir, config.data.valid_size, config.data.subset, config.data.download)


def read_history(path: str | Path) -> dict[str, list[float]]:
    """`history.csv` as columns of floats."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(row[key]) for row in rows] for key in (rows[0] if rows else {})}


def keras_verbosity() -> int:
    """The per-step progress bar on a terminal; one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2


def best_epoch_index(history: dict[str, list[float]]) -> int:
    """0-based index of the lowest validation loss; the first one on ties, as EarlyStopping does."""
    losses = np.asarray(history["val_loss"], dtype=float)
    if not np.isfinite(losses).any():
        raise DnnlabError("no finite validation loss was recorded; try a lower learning rate")
    return int(np.nanargmin(np.where(np.isfinite(losses), losses, np.nan)))


def evaluate(model: keras.Model, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    loss, accuracy = model.evaluate(x, y, batch_size=EVAL_BATCH_SIZE, verbose=0)
    return float(loss), float(accuracy)


def summarize(
    config: RunConfig, lr: float, history: dict[str, list[float]], model: keras.Model | None, splits: Splits,
    wall_seconds: float, status: str = COMPLETED,
) -> dict[str, Any]:
    """`metrics.json`: scores of the restored best model plus the run's timings and provenance.

    `model` is None when no epoch completed; the scores are None then.
    """
    epoch_times = history.get("epoch_time", [])
    metrics: dict[str, Any] = {
        "status": status,
        "variant": config.variant,
        "lr": lr,
        "seed": config.train.seed,
        "epochs_run": len(history.get("val_loss", [])),
        "best_epoch": None,
        "valid_loss": None,
        "valid_accuracy": None,
        "test_loss": None,
        "test_accuracy": None,
        "mean_epoch_seconds": float(np.mean(epoch_times)) if epoch_times else None,
        "time_to_best_seconds": None,
        "wall_seconds": wall_seconds,
        "train_size": int(len(splits.x_train)),
        "versions": library_versions(),
    }
    if model is None:
        return metrics
    best = best_epoch_index(history)
    valid_loss, valid_accuracy = evaluate(model, splits.x_valid, splits.y_valid)
    test_loss, test_accuracy = evaluate(model, splits.x_test, splits.y_test)
    metrics.update(
        best_epoch=best + 1,
        valid_loss=valid_loss,
        valid_accuracy=valid_accuracy,
        test_loss=test_loss,
        test_accuracy=test_accuracy,
        time_to_best_seconds=float(np.sum(epoch_times[: best + 1])) if epoch_times else None,
    )
    return metrics


def prepare_run_dir(run_dir: Path) -> None:
    """Create the run folder, or say in one line why it cannot be used, before any data is loaded."""
    blocker = next((p for p in (run_dir, *run_dir.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise DnnlabError(f"cannot create run folder {run_dir}: {blocker} is a file; pass --out a folder")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DnnlabError(f"cannot create run folder {run_dir} ({exc.strerror}); pass a writable --out") from None
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise DnnlabError(f"run folder {run_dir} is not writable; pass a writable --out")


def finished_run(run_dir: Path) -> Result | None:
    """The run in `run_dir`, loaded from its files, if it has finished (completed or diverged)."""
    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if metrics.get("status") not in FINISHED:
        return None
    history = read_history(run_dir / HISTORY_FILE)
    history.pop("epoch", None)
    model_path = run_dir / MODEL_FILE
    model = keras.saving.load_model(model_path) if model_path.exists() else None
    remove_checkpoints(run_dir / CHECKPOINT_DIR)  # left by a kill between metrics.json and the cleanup
    return Result(run_dir=run_dir, metrics=metrics, history=history, model=model)


def fit_model(model: keras.Model, config: RunConfig, splits: Splits, callbacks: list[keras.callbacks.Callback],
              verbose: int, initial_epoch: int = 0) -> dict[str, list[float]]:
    """`model.fit` on the training split, validated each epoch; the history as lists of floats.

    Shared by `train` and the search's trials, so both train the same way.
    """
    fit = model.fit(
        splits.x_train,
        splits.y_train,
        batch_size=fit_batch_size(model, config.train.batch_size),
        epochs=config.train.epochs,
        initial_epoch=initial_epoch,
        validation_data=(splits.x_valid, splits.y_valid),
        validation_batch_size=EVAL_BATCH_SIZE,
        callbacks=callbacks,
        verbose=verbose,
    )
    return {key: [float(v) for v in values] for key, values in fit.history.items()}


def train(config: RunConfig, splits: Splits | None = None, verbose: int | None = None) -> Result:
    """Train `config`'s model with Nadam and early stopping; write and return its run folder.

    If the run folder already holds this config's run, a finished one is returned as it is and
    an unfinished one resumes after its last completed epoch. Ctrl-C (or SIGTERM) stops at the
    end of the current batch with status INTERRUPTED; a NaN/inf loss stops with DIVERGED.

    Args:
        config: the resolved run config; it is saved as `config.json`.
        splits: prepared data; loaded from `config.data` when omitted (tests pass synthetic data).
        verbose: Keras's verbosity; defaults to a progress bar on a terminal, a line per epoch otherwise.
            0 also silences the resume/reuse notices.
    """
    started = time.perf_counter()
    run_dir = config.run_dir

    def say(message: str) -> None:
        if verbose != 0:
            print(f"dnnlab: {message}", flush=True)

    prepare_run_dir(run_dir)
    with RunLock(run_dir) as lock:
        if lock.stale_owner is not None:
            say(f"took over the lock of {run_dir} from process {lock.stale_owner}, which no longer runs")
        check_same_config(run_dir / CONFIG_FILE, config.to_dict())
        finished = finished_run(run_dir)
        if finished is not None:
            say(f"{run_dir} already holds a {finished.status} run of this config; reusing it "
                f"(delete the folder to train again)")
            return finished
        checkpoint = latest_checkpoint(run_dir / CHECKPOINT_DIR)
        splits = splits if splits is not None else load_data(config)
        write_json_atomic(run_dir / CONFIG_FILE, config.to_dict())
        search_summary = None
        if checkpoint is not None:
            # A resumed run keeps the LR it started with; its search (if any) is already on disk.
            lr = checkpoint.lr
            say(f"resuming {run_dir} after epoch {checkpoint.epoch}")
            search_summary = saved_search_summary(run_dir)
        elif config.lr == "auto":
            from dnnlab.lr_search import search_lr  # it builds on this module's helpers

            search = search_lr(config, splits, run_dir)
            lr, search_summary = search.chosen_lr, search.summary()
        else:
            lr = config.lr
        return fit_run(config, lr, splits, checkpoint, verbose, started, search_summary)


def saved_search_summary(run_dir: Path) -> dict[str, Any] | None:
    """The LR search recorded in `run_dir` before the run was interrupted, without its curves."""
    from dnnlab.lr_search import SEARCH_FILE, search_summary

    try:
        saved = json.loads((run_dir / SEARCH_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return search_summary(saved)


def fit_run(config: RunConfig, lr: float, splits: Splits, checkpoint: Checkpoint | None, verbose: int | None,
            started: float, search_summary: dict[str, Any] | None = None) -> Result:
    """The training itself, from scratch or from `checkpoint`, into a prepared, locked run folder.

    `search_summary` is the LR search that chose `lr`, recorded in metrics.json as "lr_search".
    """
    run_dir = config.run_dir
    training_started = time.perf_counter()
    keras.utils.set_random_seed(config.train.seed)
    model = build_for(config, splits)
    compile_model(model, config.train, lr, steps_in_fit(config, splits))
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.train.patience, restore_best_weights=True
    )
    stop_on_signal = StopOnSignal()
    recorder = RunRecorder(run_dir / CHECKPOINT_DIR, run_dir / HISTORY_FILE, run_dir / MODEL_FILE,
                           early_stopping, lr, resume_from=checkpoint)
    callbacks = [
        EpochTimer(),  # before RunRecorder, so epoch_time lands in history.csv
        early_stopping,
        StopOnDivergence(),
        stop_on_signal,
        recorder,  # last: it saves the state the callbacks above leave at each epoch's end
    ]
    stop: TrainingStopped | None = None
    try:
        with stop_on_signal:
            fit_model(model, config, splits, callbacks, keras_verbosity() if verbose is None else verbose,
                      initial_epoch=resume_epoch(checkpoint, config.train.epochs))
    except TrainingStopped as exc:
        stop = exc
        # fit stopped mid-epoch, so EarlyStopping's on_train_end never restored the best weights.
        if early_stopping.best_weights is not None:
            model.set_weights(early_stopping.best_weights)
    status = COMPLETED if stop is None else DIVERGED if isinstance(stop, Diverged) else INTERRUPTED
    history = recorder.history
    best_model = model if history else None
    metrics = summarize(config, lr, history, best_model, splits, time.perf_counter() - started, status)
    metrics["resumed_from_epoch"] = checkpoint.epoch if checkpoint is not None else 0
    metrics["stopped_in_epoch"] = stop.epoch if stop is not None else None
    metrics["signal"] = signal.Signals(stop.signal_number).name if isinstance(stop, Interrupted) else None
    if search_summary is not None:
        training_seconds = time.perf_counter() - training_started
        metrics["lr_search"] = {
            **search_summary,
            "training_seconds": training_seconds,  # this session's build, fit and evaluation after the search
            "fraction_of_training": search_summary["seconds"] / training_seconds,
        }
    write_json_atomic(run_dir / METRICS_FILE, metrics)
    if status in FINISHED:
        remove_checkpoints(run_dir / CHECKPOINT_DIR)
    return Result(run_dir=run_dir, metrics=metrics, history=history, model=best_model)


def load_run(run_dir: str | Path) -> tuple[RunConfig, dict[str, Any]]:
    """A finished run's config and metrics."""
    run_dir = Path(run_dir)
    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DnnlabError(f"{run_dir} is not a finished run ({exc}); train it first with dnnlab train") from None
    return RunConfig.from_json(run_dir / CONFIG_FILE), metrics
