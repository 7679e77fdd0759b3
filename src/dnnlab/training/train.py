"""`train(config) -> Result`: the configured optimizer and schedule, early stopping with Keras's own
callbacks, one run folder.

Running the same config into the same folder again never trains twice: a finished run
(completed or diverged) is reused as it is; an unfinished one (killed, or interrupted by
Ctrl-C) resumes after its last completed epoch and ends as the uninterrupted run would have.
A folder holding a run of another config is refused, naming the fields that differ. The
folder's files are described in `dnnlab.training.run_dir`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from dnnlab.config import RunConfig
from dnnlab.data import Splits, check_data_dir, load_data
from dnnlab.errors import DnnlabError
from dnnlab.lr.search import SEARCH_FILE, search_lr, search_summary
from dnnlab.models.build import build_for
from dnnlab.models.compile import EVAL_BATCH_SIZE, compile_model, evaluate, steps_per_epoch
from dnnlab.models.fused_steps import use_fused_steps
from dnnlab.provenance import describe_device, device_info, library_versions
from dnnlab.report.document import html_table
from dnnlab.schedules.decay import performance_scheduler
from dnnlab.training.callbacks import EpochTimer
from dnnlab.training.event_files import FAILURE, SUCCESS
from dnnlab.training.history import History, best_epoch_index, seconds_per_epoch
from dnnlab.training.resume import Checkpoint, RunRecorder, latest_checkpoint, resume_epoch
from dnnlab.training.run_dir import COMPLETED, DIVERGED, FINISHED, INTERRUPTED, RunDir
from dnnlab.training.run_lock import RunLock
from dnnlab.training.stops import Diverged, Interrupted, StopOnDivergence, StopOnSignal, TrainingStopped
from dnnlab.training.tensorboard import TensorBoardLogger

log = logging.getLogger(__name__)


@dataclass
class Result:
    """What `train` returns: the run folder, its metrics, its history and the restored best model."""

    run_dir: Path
    metrics: dict[str, Any]
    history: History
    model: keras.Model | None  # None when the run stopped before completing an epoch

    @property
    def status(self) -> str:
        """COMPLETED, INTERRUPTED or DIVERGED."""
        return self.metrics["status"]

    @property
    def diverged(self) -> bool:
        """The loss became NaN or inf (an LR search records such a candidate and goes on)."""
        return self.status == DIVERGED

    def _repr_html_(self) -> str:
        """Jupyter shows the run as a table of its scores (of the restored best model)."""
        m = self.metrics

        def shown(key: str, form: str) -> str:
            return "—" if m.get(key) is None else format(m[key], form)

        rows = [
            ["run folder", f"`{self.run_dir}`"],
            ["status", m["status"]],
            ["variant", m.get("variant")],
            ["learning rate", shown("lr", ".3g")],
            ["best epoch / epochs run", f"{m.get('best_epoch') or '—'} / {m.get('epochs_run')}"],
            ["validation accuracy", shown("valid_accuracy", ".2%")],
            ["validation loss", shown("valid_loss", ".4f")],
            ["test accuracy", shown("test_accuracy", ".2%")],
            ["test loss", shown("test_loss", ".4f")],
            ["seconds per epoch", shown("mean_epoch_seconds", ".2f")],
            ["device", describe_device(m.get("device"))],
        ]
        return html_table(["run", ""], rows)


def keras_verbosity() -> int:
    """The per-step progress bar on a terminal; one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2


def summarize(
    config: RunConfig,
    lr: float,
    history: History,
    model: keras.Model | None,
    splits: Splits,
    wall_seconds: float,
    status: str = COMPLETED,
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
        "mean_epoch_seconds": float(np.mean(epoch_times)) if epoch_times else None,  # whole epochs, the first too
        # Training only (no validation), without the first, compiling epoch: the speed figures.
        "train_seconds_per_epoch": seconds_per_epoch(history.get("train_time")),
        "train_cpu_seconds_per_epoch": seconds_per_epoch(history.get("train_cpu_time")),
        "time_to_best_seconds": None,
        "wall_seconds": wall_seconds,
        "train_size": int(len(splits.x_train)),
        "versions": library_versions(),
        "device": device_info(),
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


def finished_result(run: RunDir) -> Result | None:
    """The run in `run`, loaded from its files, if it has finished (completed or diverged)."""
    metrics = run.metrics()
    if metrics is None or metrics.get("status") not in FINISHED:
        return None
    history = run.history()
    history.pop("epoch", None)
    model = run.load_model()
    run.remove_checkpoints()  # left by a kill between metrics.json and the cleanup
    return Result(run_dir=run.path, metrics=metrics, history=history, model=model)


def fit_model(
    model: keras.Model,
    config: RunConfig,
    splits: Splits,
    callbacks: list[keras.callbacks.Callback],
    verbose: int,
    initial_epoch: int = 0,
) -> History:
    """`model.fit` on the training split, validated each epoch; the history as lists of floats.

    Shared by `train` and the search's trials, so both train the same way.
    """
    fit = model.fit(
        splits.x_train,
        splits.y_train,
        batch_size=use_fused_steps(model, config.train.batch_size),
        epochs=config.train.epochs,
        initial_epoch=initial_epoch,
        validation_data=(splits.x_valid, splits.y_valid),
        validation_batch_size=EVAL_BATCH_SIZE,
        callbacks=callbacks,
        verbose=verbose,
    )
    return {key: [float(v) for v in values] for key, values in fit.history.items()}


def train(config: RunConfig, splits: Splits | None = None, verbose: int | None = None) -> Result:
    """Train `config`'s model (its optimizer and schedule) with early stopping; write and return its run folder.

    If the run folder already holds this config's run, a finished one is returned as it is and
    an unfinished one resumes after its last completed epoch. Ctrl-C (or SIGTERM) stops at the
    end of the current batch with status INTERRUPTED; a NaN/inf loss stops with DIVERGED.
    Progress notices go to the `dnnlab` logger.

    Args:
        config: the resolved run config; it is saved as `config.json`.
        splits: prepared data; loaded from `config.data` when omitted (tests pass synthetic data).
        verbose: Keras's verbosity; defaults to a progress bar on a terminal, a line per epoch otherwise.
    """
    started = time.perf_counter()
    if splits is None:
        check_data_dir(config.data.data_dir)
    run = RunDir(config.run_dir)
    run.prepare()
    try:
        with RunLock(run.path) as lock:
            if lock.stale_owner is not None:
                log.info("took over the lock of %s from process %s, which no longer runs", run.path, lock.stale_owner)
            return _train_locked(config, run, splits, verbose, started)
    except BaseException:
        run.remove_if_unused()
        raise


def _train_locked(config: RunConfig, run: RunDir, splits: Splits | None, verbose: int | None, started: float) -> Result:
    """`train` once the run folder is prepared and locked."""
    run.check_config(config)
    finished = finished_result(run)
    if finished is not None:
        log.info(
            "%s already holds a %s run of this config; reusing it (delete the folder to train again)",
            run.path,
            finished.status,
        )
        return finished
    checkpoint = latest_checkpoint(run.checkpoint_dir)
    splits = splits if splits is not None else load_data(config.data)
    run.write_config(config)
    searched = None
    if checkpoint is not None:
        # A resumed run keeps the LR it started with; its search (if any) is already on disk.
        lr = checkpoint.lr
        log.info("resuming %s after epoch %d", run.path, checkpoint.epoch)
        searched = saved_search_summary(run)
    elif config.lr == "auto":
        search = search_lr(config, splits, run.path)
        lr, searched = search.chosen_lr, search.summary()
    else:
        lr = config.lr
    return fit_run(config, lr, splits, checkpoint, verbose, started, searched)


def saved_search_summary(run: RunDir) -> dict[str, Any] | None:
    """The LR search recorded in `run` before the run was interrupted, without its curves."""
    saved = run.read_json(SEARCH_FILE)
    return None if saved is None else search_summary(saved)


def run_logger(config: RunConfig, run: RunDir, lr: float, checkpoint: Checkpoint | None) -> TensorBoardLogger | None:
    """The run's TensorBoard logger (None with `--no-tensorboard`); its HParams are what tells the runs apart."""
    if not config.tensorboard:
        return None
    hparams = {
        "variant": config.variant,
        "lr": lr,
        "batch_size": config.train.batch_size,
        "optimizer": config.train.optimizer,
        "schedule": config.train.schedule,
        "seed": config.train.seed,
    }
    history = checkpoint.history if checkpoint is not None else None
    return TensorBoardLogger(run.tensorboard_dir, history, hparams, trial_id=str(config.run_dir))


def fit_run(
    config: RunConfig,
    lr: float,
    splits: Splits,
    checkpoint: Checkpoint | None,
    verbose: int | None,
    started: float,
    searched: dict[str, Any] | None = None,
) -> Result:
    """The training itself, from scratch or from `checkpoint`, into a prepared, locked run folder.

    `searched` is the summary of the LR search that chose `lr`, recorded in metrics.json as "lr_search".
    """
    run = RunDir(config.run_dir)
    training_started = time.perf_counter()
    keras.utils.set_random_seed(config.train.seed)
    model = build_for(config, splits)
    compile_model(model, config.train, lr, steps_per_epoch(config, splits))
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.train.patience, restore_best_weights=True
    )
    stop_on_signal = StopOnSignal()
    plateau = performance_scheduler(config.train.schedule)  # None unless --schedule performance
    recorder = RunRecorder(run, early_stopping, lr, resume_from=checkpoint, plateau=plateau)
    tensorboard = run_logger(config, run, lr, checkpoint)
    callbacks = [
        EpochTimer(),  # before RunRecorder, so epoch_time lands in history.csv
        early_stopping,
        *([plateau] if plateau is not None else []),  # before RunRecorder too: it logs learning_rate
        StopOnDivergence(),
        stop_on_signal,
        *([tensorboard] if tensorboard is not None else []),  # logs the epochs RunRecorder records
        recorder,  # last: it saves the state the callbacks above leave at each epoch's end
    ]
    stop: TrainingStopped | None = None
    try:
        with stop_on_signal:
            fit_model(
                model,
                config,
                splits,
                callbacks,
                keras_verbosity() if verbose is None else verbose,
                initial_epoch=resume_epoch(checkpoint, config.train.epochs),
            )
    except TrainingStopped as exc:
        stop = exc
        # fit stopped mid-epoch, so EarlyStopping's on_train_end never restored the best weights.
        if early_stopping.best_weights is not None:
            model.set_weights(early_stopping.best_weights)
    except BaseException:
        if tensorboard is not None:  # Keras skips on_train_end when fit raises
            with contextlib.suppress(OSError, DnnlabError):  # a full disk fails both: report the first
                tensorboard.close()
        raise
    if tensorboard is not None:
        tensorboard.close()
    status = COMPLETED if stop is None else DIVERGED if isinstance(stop, Diverged) else INTERRUPTED
    history = recorder.history
    best_model = model if history else None
    metrics = summarize(config, lr, history, best_model, splits, time.perf_counter() - started, status)
    metrics["resumed_from_epoch"] = checkpoint.epoch if checkpoint is not None else 0
    metrics["stopped_in_epoch"] = stop.epoch if stop is not None else None
    metrics["signal"] = signal.Signals(stop.signal_number).name if isinstance(stop, Interrupted) else None
    if searched is not None:
        training_seconds = time.perf_counter() - training_started
        metrics["lr_search"] = {
            **searched,
            "training_seconds": training_seconds,  # this session's build, fit and evaluation after the search
            "fraction_of_training": searched["seconds"] / training_seconds,
        }
    run.write_metrics(metrics)
    if tensorboard is not None and status in FINISHED:
        scores = {"valid_loss": metrics["valid_loss"], "valid_accuracy": metrics["valid_accuracy"]}
        tensorboard.finish(SUCCESS if status == COMPLETED else FAILURE, scores if history else None)
    if status in FINISHED:
        run.remove_checkpoints()
    return Result(run_dir=run.path, metrics=metrics, history=history, model=best_model)
