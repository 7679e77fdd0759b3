"""What TensorBoard logging costs per epoch: the same run with and without event files, interleaved in one process.

    DNNLAB_DATA=/path/to/data .venv/bin/python benchmarks/tensorboard_overhead.py --variant bn --subset 10000 \\
        --epochs 6 --rounds 3

Each round trains the run twice, logging on and off (the order alternates between rounds), each
from scratch into its own folder of a temporary directory, on the same data. Three figures:
- the epoch period: the wall time between the ends of consecutive epochs, as `RunRecorder` (the
  last callback) finishes them, so it includes validation and every callback, the logger too.
  The first epoch (tracing and compiling) is left out. Rounds are paired: on/off ratio per round.
- the same in CPU seconds of this process (all its threads), which other jobs on a shared
  machine disturb less than wall time;
- the logger's own time: `TensorBoardLogger.on_epoch_end` wrapped with a clock (writing the
  epoch's events and the LR, and the flush that puts them on disk).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402

import dnnlab.training.train  # noqa: E402
from dnnlab.config import DataConfig, for_variant, variant  # noqa: E402
from dnnlab.data import load_data  # noqa: E402
from dnnlab.training.resume import RunRecorder  # noqa: E402
from dnnlab.training.tensorboard import TensorBoardLogger  # noqa: E402

epoch_ends: list[tuple[float, float]] = []  # (wall, CPU) seconds when each epoch was done
logger_seconds: list[float] = []


class TimedRecorder(RunRecorder):
    """`RunRecorder` noting when it finished each epoch: the end of everything that epoch did."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        epoch_ends.append((time.perf_counter(), time.process_time()))


def timed_logger_epoch_end(self, epoch, logs=None, _original=TensorBoardLogger.on_epoch_end):
    started = time.perf_counter()
    _original(self, epoch, logs)
    logger_seconds.append(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="bn")
    parser.add_argument("--subset", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    dnnlab.training.train.RunRecorder = TimedRecorder
    TensorBoardLogger.on_epoch_end = timed_logger_epoch_end
    data = DataConfig(subset=args.subset)
    splits = load_data(data)
    base = for_variant(args.variant, lr=variant(args.variant).textbook_lr, epochs=args.epochs, patience=args.epochs)
    periods: dict[bool, list[np.ndarray]] = {True: [], False: []}  # per epoch: (wall, CPU) seconds
    ratios = []
    with tempfile.TemporaryDirectory() as out:
        for round_ in range(args.rounds):
            means = {}
            for logging_on in (True, False) if round_ % 2 == 0 else (False, True):
                name = f"{round_}-{logging_on}"
                config = dataclasses.replace(base, out=out, name=name, tensorboard=logging_on, data=data)
                epoch_ends.clear()
                dnnlab.training.train.train(config, splits, verbose=0)
                period = np.diff(np.asarray(epoch_ends), axis=0)  # epochs 2..E: the first one compiles
                periods[logging_on].append(period)
                means[logging_on] = period.mean(axis=0)
                wall, cpu = means[logging_on]
                print(
                    f"round {round_ + 1} logging {'on ' if logging_on else 'off'}: {wall:.4f} s, {cpu:.4f} CPU s/epoch"
                )
            ratios.append(means[True] / means[False])
    on, off = np.concatenate(periods[True]).mean(axis=0), np.concatenate(periods[False]).mean(axis=0)
    ratio = np.asarray(ratios)
    print(
        f"\n{args.variant}, {args.subset} images, {args.epochs} epochs, {args.rounds} rounds (epochs 2-{args.epochs})"
    )
    for i, kind in enumerate(("wall", "CPU")):
        print(
            f"{kind} s/epoch: on {on[i]:.4f}, off {off[i]:.4f}; on/off per round: "
            f"{', '.join(f'{r:.3f}' for r in ratio[:, i])}; mean {ratio[:, i].mean():.3f}, "
            f"median {np.median(ratio[:, i]):.3f}"
        )
    ms = 1000 * np.asarray(logger_seconds)
    print(
        f"TensorBoardLogger.on_epoch_end: mean {ms.mean():.2f} ms, median {np.median(ms):.2f} ms, "
        f"max {ms.max():.2f} ms over {len(ms)} epochs: {100 * ms.mean() / 1000 / off[0]:.2f}% of a wall epoch "
        "without logging"
    )


if __name__ == "__main__":
    main()
