"""Resumable runs: after every epoch, a crash-safe record of everything a resume needs.

Keras's `BackupAndRestore` saves the weights, the optimizer state and the epoch counter. Read
against Keras 3.15 (and measured, see docs/benchmarks/issue-8.md), a run it resumes does not
behave like an uninterrupted one:
- `EarlyStopping` resets its best value, patience counter and best weights in `on_train_begin`,
  so a resumed run trains past its stopping point and may "restore" a worse epoch;
- `ModelCheckpoint` starts again from `best=None` and overwrites `best.keras` with the first
  resumed epoch, better or not;
- `CSVLogger(append=True)` keeps rows written after the last backup, so they appear twice;
- the NumPy RNG that shuffles the batches and the dropout layers' seed states are not saved, so
  the resumed epochs see other batches and other masks;
- it writes the weights and the epoch counter as two files, in place: a kill between the two
  pairs new weights with the old counter, and a kill during the first leaves a torn file.

`RunRecorder` saves all of that as one directory per epoch (`checkpoint/epoch-NNNN/`), staged
under a temporary name and renamed into place, so a checkpoint is either complete or absent.
Through the `RunDir` it also rewrites `history.csv` each epoch (whole and atomically: every epoch
exactly once) and saves the best model atomically whenever the epoch is the best so far.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from dnnlab.errors import DnnlabError, writing
from dnnlab.files import fsync_path, read_json, temp_path_beside, write_json_atomic
from dnnlab.training.run_dir import RunDir

STATE_FILE = "state.json"
VARIABLES_FILE = "variables.npz"
BEST_WEIGHTS_FILE = "best_weights.npz"
EPOCH_PREFIX = "epoch-"
STAGING_NAME = "staging"  # a checkpoint is written as a hidden temp folder of this name, then renamed


def _save_arrays(path: Path, arrays: list[np.ndarray]) -> None:
    np.savez(path, *arrays)
    fsync_path(path)


def _load_arrays(path: Path) -> list[np.ndarray]:
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def _numpy_rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "name": name,
        "keys": keys.tolist(),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def _set_numpy_rng_state(state: dict[str, Any]) -> None:
    np.random.set_state(
        (
            state["name"],
            np.asarray(state["keys"], dtype=np.uint32),
            state["pos"],
            state["has_gauss"],
            state["cached_gaussian"],
        )
    )


@dataclass(frozen=True)
class Checkpoint:
    """A committed end-of-epoch state (see `RunRecorder`)."""

    path: Path
    epoch: int  # epochs completed
    lr: float  # the learning rate in use, so resuming a `--lr auto` run needs no new search
    stopped: bool  # EarlyStopping ended the run at this epoch
    early_stopping: dict[str, Any]  # EarlyStopping's best, wait, best_epoch, stopped_epoch
    numpy_rng: dict[str, Any]  # NumPy's global RNG, which Keras uses to shuffle the batches
    history: dict[str, list[float]]  # the per-epoch logs so far
    plateau: dict[str, Any] | None = None  # ReduceLROnPlateau's best, wait, cooldown_counter (performance schedule)

    @classmethod
    def read(cls, path: Path) -> Checkpoint:
        state = read_json(path / STATE_FILE)
        try:
            return cls(path=path, **state)
        except TypeError:  # missing, not JSON, or not a checkpoint's fields
            raise DnnlabError(f"checkpoint {path} is unreadable; delete it to restart the run") from None

    def variables(self) -> list[np.ndarray]:
        return _load_arrays(self.path / VARIABLES_FILE)

    def best_weights(self) -> list[np.ndarray] | None:
        path = self.path / BEST_WEIGHTS_FILE
        return _load_arrays(path) if path.exists() else None


def latest_checkpoint(directory: Path) -> Checkpoint | None:
    """The newest committed checkpoint in `directory`, or None."""
    committed = sorted(directory.glob(f"{EPOCH_PREFIX}*")) if directory.is_dir() else []
    return Checkpoint.read(committed[-1]) if committed else None


def _training_variables(model: keras.Model) -> list:
    # Model variables include BatchNorm statistics and dropout seed states, which
    # `save_weights` leaves out; the optimizer's include its step counter and moments.
    return [*model.variables, *model.optimizer.variables]


class RunRecorder(keras.callbacks.Callback):
    """Records a run after every epoch so that a crash loses at most the epoch in progress.

    At each epoch's end, in this order: `history.csv` (atomically rewritten), the best model
    `best.keras` (atomically, when this epoch is EarlyStopping's best so far), then a checkpoint holding
    every model and optimizer variable, EarlyStopping's progress and best weights, the NumPy
    RNG state and the history. Resuming from it reproduces the uninterrupted run.

    Place it last in the callback list, after `early_stopping` (and after any callback that
    adds to the epoch logs): it records the state the others leave at the end of the epoch.

    Args:
        run: the run folder; checkpoints go to its `checkpoint/`, and only the latest is kept.
        early_stopping: the run's `keras.callbacks.EarlyStopping` (restore_best_weights=True).
        lr: the learning rate, recorded for resuming.
        plateau: the run's `keras.callbacks.ReduceLROnPlateau` (performance scheduling), whose
            progress is saved and restored like EarlyStopping's; the LR it set is an optimizer variable.
        resume_from: a `Checkpoint` restored in `on_train_begin` (after Keras has built the
            optimizer and EarlyStopping has reset itself); None for a fresh run. Pass
            `initial_epoch=resume_epoch(resume_from, epochs)` to `fit` with it.
    """

    def __init__(
        self,
        run: RunDir,
        early_stopping: keras.callbacks.EarlyStopping,
        lr: float,
        resume_from: Checkpoint | None = None,
        plateau: keras.callbacks.ReduceLROnPlateau | None = None,
    ):
        super().__init__()
        if not early_stopping.restore_best_weights:
            raise ValueError("RunRecorder needs EarlyStopping(restore_best_weights=True) to save the best weights")
        self.run = run
        self.directory = run.checkpoint_dir
        self.early_stopping = early_stopping
        self.lr = lr
        self.resume_from = resume_from
        self.plateau = plateau
        self.history: dict[str, list[float]] = {}

    def on_train_begin(self, logs=None):
        self.history = {}
        if self.resume_from is not None:
            self._restore(self.resume_from)
        # Rows a killed run wrote after its last checkpoint are dropped here; they are redone.
        self.run.write_history(self.history)

    def _restore(self, checkpoint: Checkpoint) -> None:
        variables, values = _training_variables(self.model), checkpoint.variables()
        if [tuple(v.shape) for v in variables] != [value.shape for value in values]:
            raise DnnlabError(f"checkpoint {checkpoint.path} does not match this model; delete it to restart the run")
        for variable, value in zip(variables, values):
            variable.assign(value)
        for name, value in checkpoint.early_stopping.items():
            setattr(self.early_stopping, name, value)
        self.early_stopping.best_weights = checkpoint.best_weights()
        if self.plateau is not None and checkpoint.plateau is not None:
            for name, value in checkpoint.plateau.items():
                setattr(self.plateau, name, value)
        _set_numpy_rng_state(checkpoint.numpy_rng)
        self.history = {key: list(values) for key, values in checkpoint.history.items()}

    def on_epoch_end(self, epoch, logs=None):
        done = len(next(iter(self.history.values()), []))
        for key, value in (logs or {}).items():
            # A column new in this epoch (a run resumed by a later dnnlab) is NaN before it.
            self.history.setdefault(key, [math.nan] * done).append(float(value))
        self.run.write_history(self.history)
        if self.early_stopping.best_epoch == epoch and self.early_stopping.best_weights is not None:
            self.run.save_model(self.model)
        self._commit(epoch + 1)

    def _commit(self, epochs_done: int) -> None:
        staging = temp_path_beside(self.directory / STAGING_NAME)
        try:
            with writing(self.directory):
                self.directory.mkdir(parents=True, exist_ok=True)
                staging.mkdir()
                final = self._write_checkpoint(staging, epochs_done)
        except BaseException:
            # A full disk, say: the previous checkpoint stays the latest, and the space goes back.
            shutil.rmtree(staging, ignore_errors=True)
            raise
        for leftover in self.directory.iterdir():  # older checkpoints, staging dirs of killed commits
            if leftover != final:
                shutil.rmtree(leftover, ignore_errors=True)

    def _write_checkpoint(self, staging: Path, epochs_done: int) -> Path:
        """Write the checkpoint into the `staging` folder and rename it into place; the final folder."""
        _save_arrays(staging / VARIABLES_FILE, [v.numpy() for v in _training_variables(self.model)])
        best = self.early_stopping.best_weights
        if best is not None:
            _save_arrays(staging / BEST_WEIGHTS_FILE, best)
        es = self.early_stopping
        write_json_atomic(
            staging / STATE_FILE,
            {
                "epoch": epochs_done,
                "lr": self.lr,
                "stopped": bool(self.model.stop_training),
                "early_stopping": {
                    "best": None if es.best is None else float(es.best),
                    "wait": int(es.wait),
                    "best_epoch": int(es.best_epoch),
                    "stopped_epoch": int(es.stopped_epoch),
                },
                "numpy_rng": _numpy_rng_state(),
                "history": self.history,
                "plateau": None if self.plateau is None else _plateau_state(self.plateau),
            },
        )
        final = self.directory / f"{EPOCH_PREFIX}{epochs_done:04d}"
        os.rename(staging, final)  # the commit point
        fsync_path(self.directory)
        return final


def _plateau_state(plateau: keras.callbacks.ReduceLROnPlateau) -> dict[str, Any]:
    return {
        "best": None if plateau.best is None else float(plateau.best),
        "wait": int(plateau.wait),
        "cooldown_counter": int(plateau.cooldown_counter),
    }


def resume_epoch(checkpoint: Checkpoint | None, epochs: int) -> int:
    """`fit`'s `initial_epoch`: after the checkpoint, or past the end if early stopping had ended it."""
    if checkpoint is None:
        return 0
    return epochs if checkpoint.stopped else checkpoint.epoch
