"""`train(config) -> Result`: Nadam + early stopping with Keras's own callbacks, one run folder.

A run folder (`<out>/<name>/`) holds everything needed to reproduce and report the run:
`config.json` (resolved config), `history.csv` (per-epoch metrics and wall time),
`metrics.json` (best epoch, validation and test scores of the restored best model, timings,
seed, versions) and `best.keras` (the best model).
"""

from __future__ import annotations

import csv
import json
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
from dnnlab.models import build_model
from dnnlab.momentum_sgd import VariableMomentumSGD
from dnnlab.one_cycle import OneCycle
from dnnlab.versions import library_versions

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
MODEL_FILE = "best.keras"
EVAL_BATCH_SIZE = 1000  # inference only: large batches are faster and give the same numbers


@dataclass
class Result:
    """What `train` returns: the run folder, its metrics, its history and the restored best model."""

    run_dir: Path
    metrics: dict[str, Any]
    history: dict[str, list[float]]
    model: keras.Model


def make_optimizer(train_config: TrainConfig, lr: float) -> keras.optimizers.Optimizer:
    if train_config.optimizer == "sgd":
        # 1cycle changes the momentum between batches; Keras's SGD bakes it into the compiled step.
        sgd = VariableMomentumSGD if train_config.schedule == "1cycle" else keras.optimizers.SGD
        return sgd(learning_rate=lr, momentum=train_config.momentum)
    return keras.optimizers.Nadam(learning_rate=lr)


def compile_model(model: keras.Model, train_config: TrainConfig, lr: float) -> None:
    model.compile(
        optimizer=make_optimizer(train_config, lr),
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
    config: RunConfig, lr: float, history: dict[str, list[float]], model: keras.Model, splits: Splits,
    wall_seconds: float,
) -> dict[str, Any]:
    """`metrics.json`: scores of the restored best model plus the run's timings and provenance."""
    best = best_epoch_index(history)
    epoch_times = history.get("epoch_time", [])
    valid_loss, valid_accuracy = evaluate(model, splits.x_valid, splits.y_valid)
    test_loss, test_accuracy = evaluate(model, splits.x_test, splits.y_test)
    return {
        "status": "completed",
        "variant": config.variant,
        "lr": lr,
        "seed": config.train.seed,
        "epochs_run": len(history["val_loss"]),
        "best_epoch": best + 1,
        "valid_loss": valid_loss,
        "valid_accuracy": valid_accuracy,
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
        "mean_epoch_seconds": float(np.mean(epoch_times)) if epoch_times else None,
        "time_to_best_seconds": float(np.sum(epoch_times[: best + 1])) if epoch_times else None,
        "wall_seconds": wall_seconds,
        "train_size": int(len(splits.x_train)),
        "versions": library_versions(),
    }


def train(config: RunConfig, splits: Splits | None = None, verbose: int | None = None) -> Result:
    """Train `config`'s model with Nadam and early stopping; write and return its run folder.

    Args:
        config: the resolved run config; it is saved as `config.json`.
        splits: prepared data; loaded from `config.data` when omitted (tests pass synthetic data).
        verbose: Keras's verbosity; defaults to a progress bar on a terminal, a line per epoch otherwise.
    """
    started = time.perf_counter()
    splits = splits if splits is not None else load_data(config)
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / CONFIG_FILE, config.to_dict())
    lr, search = config.lr, None
    if lr == "auto":
        from dnnlab.lr_search import search_lr  # it builds on this module's helpers

        search = search_lr(config, splits, run_dir)
        lr = search.chosen_lr
    training_started = time.perf_counter()

    keras.utils.set_random_seed(config.train.seed)
    model = build_for(config, splits)
    compile_model(model, config.train, lr)
    callbacks = [
        EpochTimer(),  # before CSVLogger, so epoch_time lands in history.csv
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.train.patience, restore_best_weights=True
        ),
        keras.callbacks.ModelCheckpoint(run_dir / MODEL_FILE, monitor="val_loss", save_best_only=True),
        keras.callbacks.CSVLogger(run_dir / HISTORY_FILE),
        keras.callbacks.TerminateOnNaN(),
    ]
    if config.train.schedule == "1cycle":
        callbacks.append(OneCycle(max_lr=lr, cycle_momentum=config.train.optimizer == "sgd"))
    fit = model.fit(
        splits.x_train,
        splits.y_train,
        batch_size=config.train.batch_size,
        epochs=config.train.epochs,
        validation_data=(splits.x_valid, splits.y_valid),
        validation_batch_size=EVAL_BATCH_SIZE,
        callbacks=callbacks,
        verbose=keras_verbosity() if verbose is None else verbose,
    )
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    metrics = summarize(config, lr, history, model, splits, time.perf_counter() - started)
    if search is not None:
        training_seconds = time.perf_counter() - training_started
        metrics["lr_search"] = {
            **search.summary(),
            "training_seconds": training_seconds,  # this run after the search: build, fit, evaluation
            "fraction_of_training": search.seconds / training_seconds,
        }
    write_json_atomic(run_dir / METRICS_FILE, metrics)
    return Result(run_dir=run_dir, metrics=metrics, history=history, model=model)


def load_run(run_dir: str | Path) -> tuple[RunConfig, dict[str, Any]]:
    """A finished run's config and metrics."""
    run_dir = Path(run_dir)
    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DnnlabError(f"{run_dir} is not a finished run ({exc}); train it first with dnnlab train") from None
    return RunConfig.from_json(run_dir / CONFIG_FILE), metrics
