"""Time-to-accuracy and early-stopping waste from finished `dnnlab train` run folders.

For each run: the epoch and wall time at which validation accuracy first reached each
threshold, the best epoch (lowest validation loss, as `dnnlab train` restores it), and, for
each candidate patience, where Keras's EarlyStopping would have stopped, how many epochs it
spent after the best one, and what that cost. Runs should be trained with `--patience` equal
to `--epochs` so the whole curve is there to replay.

    .venv/bin/python benchmarks/time_to_accuracy.py runs/bn_b32 runs/bn_b512 --patience 3,5,10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dnnlab.training.history import read_history_csv
from dnnlab.training.run_dir import HISTORY_FILE


def early_stop_epochs(val_losses: list[float], patience: int) -> tuple[int, int]:
    """(epochs run, best epoch), 1-based, for EarlyStopping(monitor="val_loss", patience) replayed.

    Keras counts an epoch as an improvement only when the loss is strictly lower than the best
    so far, and stops once `patience` epochs in a row did not improve.
    """
    best, best_epoch, wait = float("inf"), 0, 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best:
            best, best_epoch, wait = loss, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch, best_epoch
    return len(val_losses), best_epoch


def first_epoch_reaching(values: list[float], threshold: float) -> int | None:
    """The 1-based first epoch whose value is >= threshold, or None."""
    hits = np.flatnonzero(np.asarray(values) >= threshold)
    return int(hits[0]) + 1 if hits.size else None


def analyse(history: dict[str, list[float]], patiences: list[int], thresholds: list[float]) -> dict:
    """Thresholds reached and replayed early stopping for one run's history."""
    seconds = np.cumsum(history["epoch_time"])
    accuracy = history["val_accuracy"]
    reached = {}
    for threshold in thresholds:
        epoch = first_epoch_reaching(accuracy, threshold)
        reached[threshold] = None if epoch is None else {"epoch": epoch, "seconds": float(seconds[epoch - 1])}
    stops = {}
    for patience in patiences:
        run, best = early_stop_epochs(history["val_loss"], patience)
        stops[patience] = {
            "epochs_run": run,
            "best_epoch": best,
            "epochs_after_best": run - best,
            "val_accuracy_at_best": accuracy[best - 1],
            "seconds": float(seconds[run - 1]),
            "seconds_to_best": float(seconds[best - 1]),
        }
    return {
        "epochs": len(accuracy),
        "median_epoch_seconds": float(np.median(history["epoch_time"])),
        "max_val_accuracy": max(accuracy),
        "reached": reached,
        "early_stopping": stops,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders holding history.csv")
    parser.add_argument("--patience", default="3,5,10,20", help="comma-separated patiences to replay")
    parser.add_argument("--thresholds", default="0.45,0.48,0.50", help="comma-separated val accuracies")
    args = parser.parse_args()
    patiences = [int(v) for v in args.patience.split(",")]
    thresholds = [float(v) for v in args.thresholds.split(",")]
    report = {str(run): analyse(read_history_csv(run / HISTORY_FILE), patiences, thresholds) for run in args.runs}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
