"""A run's per-epoch history: `history.csv` in Keras's CSVLogger layout, and what is read off it."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dnnlab.errors import DnnlabError
from dnnlab.files import write_text_atomic

History = dict[str, list[float]]  # column -> one value per epoch


def read_history_csv(path: str | Path) -> History:
    """`history.csv` as columns of floats (the 0-based `epoch` column included)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(row[key]) for row in rows] for key in (rows[0] if rows else {})}


def write_history_csv(path: Path, history: History) -> None:
    """`history.csv` in `keras.callbacks.CSVLogger`'s layout: 0-based `epoch`, then sorted keys."""
    keys = sorted(history)
    epochs = len(history[keys[0]]) if keys else 0
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for epoch in range(epochs):
        writer.writerow([epoch, *(repr(history[key][epoch]) for key in keys)])
    write_text_atomic(path, buffer.getvalue())


def best_epoch_index(history: History) -> int:
    """0-based index of the lowest validation loss; the first one on ties, as EarlyStopping does."""
    losses = np.asarray(history["val_loss"], dtype=float)
    if not np.isfinite(losses).any():
        raise DnnlabError("no finite validation loss was recorded; try a lower learning rate")
    return int(np.nanargmin(np.where(np.isfinite(losses), losses, np.nan)))


def first_epoch_at_or_below(losses: Sequence[float], target: float) -> int | None:
    """The 1-based epoch at which validation loss first reaches `target`, or None."""
    return next((i + 1 for i, loss in enumerate(losses) if loss <= target), None)


def cap_limited(best_epoch: int, epochs_run: int, max_epochs: int, patience: int) -> bool:
    """Whether the epoch cap, not early stopping, may have ended a run: its best epoch (1-based)
    lies within `patience` of the cap and it ran to the cap, so later epochs might have been better."""
    return epochs_run >= max_epochs and best_epoch > max_epochs - patience


def seconds_per_epoch(times: Sequence[float] | None) -> float | None:
    """The mean of an epoch-time column (`train_time`, `train_cpu_time`) without the first epoch,
    which also compiles the step; None with fewer than two timed epochs (nothing steady to measure)."""
    steady = [t for t in (times or [])[1:] if math.isfinite(t)]
    return float(np.mean(steady)) if steady else None


def training_seconds(times: Sequence[float] | None, epochs: int) -> float | None:
    """Training seconds of a run's first `epochs` epochs, its first (compiling) epoch counted at the
    run's steady rate (`seconds_per_epoch`), so that compile time does not decide a comparison."""
    steady = seconds_per_epoch(times)
    if steady is None:
        return None
    later = [t for t in times[1:epochs] if math.isfinite(t)]
    return steady * (1 + (epochs - 1 - len(later))) + float(np.sum(later))
