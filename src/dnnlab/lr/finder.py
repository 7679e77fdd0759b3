"""The LR range test as a command: `lr_find` runs it for a run config and saves its curve.

The range test trains the freshly initialized model for about one epoch while the LR grows
exponentially (`LRRangeTest`), then puts the model back as it was. A rule of
`dnnlab.lr.rules` turns the smoothed curve into a suggestion. The curve goes to
`lr_finder.csv` and a log-x plot with the suggestion to `lr_finder.png`.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from dnnlab.config import RunConfig
from dnnlab.data import Splits
from dnnlab.files import write_text_atomic
from dnnlab.lr.range_test import LRRangeTest
from dnnlab.lr.rules import suggest
from dnnlab.models.build import build_for
from dnnlab.models.compile import compile_model
from dnnlab.models.fused_steps import use_fused_steps
from dnnlab.report.figures import new_figure, save_figure

log = logging.getLogger(__name__)

CSV_FILE = "lr_finder.csv"
PLOT_FILE = "lr_finder.png"
MAX_STEPS = 1000  # the default sweep is one epoch, capped so a large training set stays cheap


@dataclass(frozen=True)
class RangeTestCurve:
    lrs: list[float]
    losses: list[float]  # each batch's raw loss
    smoothed: list[float]  # exponentially smoothed, bias-corrected
    stopped_early: bool  # the stop rule fired before the last step
    seconds: float


@dataclass(frozen=True)
class LRFinderResult:
    curve: RangeTestCurve
    rule: str
    suggestion: float


def finder_steps(config: RunConfig, train_size: int) -> int:
    """The configured step count, or one epoch at the configured batch size, capped at `MAX_STEPS`."""
    if config.lr_search.finder_steps is not None:
        return config.lr_search.finder_steps
    return max(2, min(math.ceil(train_size / config.train.batch_size), MAX_STEPS))


def run_range_test(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    steps: int,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
) -> RangeTestCurve:
    """Sweep a compiled model over `steps` batches of shuffled `(x, y)`; the model is restored after."""
    test = LRRangeTest(steps, start_lr=start_lr, end_lr=end_lr)
    started = time.perf_counter()
    epochs = math.ceil(steps / math.ceil(len(x) / batch_size))  # the callback stops at `steps`
    # The test's callback sets the LR and reads the loss at every step: no fused steps.
    model.fit(
        x,
        y,
        batch_size=use_fused_steps(model, batch_size, fused_samples=0),
        epochs=epochs,
        shuffle=True,
        callbacks=[test],
        verbose=0,
    )
    return RangeTestCurve(
        list(test.lrs), list(test.losses), list(test.smoothed), test.stopped_early, time.perf_counter() - started
    )


def lr_find(
    config: RunConfig,
    splits: Splits,
    run_dir: str | Path,
    model: keras.Model | None = None,
) -> LRFinderResult:
    """Run the range test for `config` on the training split; save the curve and plot in `run_dir`.

    Args:
        model: a compiled model to test (it is restored afterwards); when omitted, the config's
            model is built and compiled with the run's seed.
    """
    search = config.lr_search
    if model is None:
        keras.utils.set_random_seed(config.train.seed)
        model = build_for(config, splits)
        compile_model(model, config.train, search.finder_start_lr)
    steps = finder_steps(config, len(splits.x_train))
    rule = search.rule
    log.info("LR range test, %d steps from %g to %g", steps, search.finder_start_lr, search.finder_end_lr)
    curve = run_range_test(
        model,
        splits.x_train,
        splits.y_train,
        config.train.batch_size,
        steps,
        search.finder_start_lr,
        search.finder_end_lr,
    )
    run_dir = Path(run_dir)
    save_curve(curve, run_dir / CSV_FILE)  # kept even when too few points remain for a suggestion
    suggestion = suggest(rule, curve.lrs, curve.smoothed)
    save_plot(curve, run_dir / PLOT_FILE, {f"suggestion ({rule})": suggestion})
    stop = "stopped by the divergence rule" if curve.stopped_early else "ran every step"
    log.info(
        "range test: %d points (%s) in %.1f s; %s suggests lr=%.3g",
        len(curve.lrs),
        stop,
        curve.seconds,
        rule,
        suggestion,
    )
    return LRFinderResult(curve=curve, rule=rule, suggestion=suggestion)


def save_curve(curve: RangeTestCurve, path: str | Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["step", "lr", "loss", "smoothed_loss"])
    for step, row in enumerate(zip(curve.lrs, curve.losses, curve.smoothed)):
        writer.writerow([step, *(repr(float(v)) for v in row)])
    write_text_atomic(path, buffer.getvalue())


def read_curve(path: str | Path) -> tuple[list[float], list[float], list[float]]:
    """`lr_finder.csv` as (lrs, raw losses, smoothed losses)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return ([float(r["lr"]) for r in rows], [float(r["loss"]) for r in rows], [float(r["smoothed_loss"]) for r in rows])


def save_plot(curve: RangeTestCurve, path: str | Path, marks: dict[str, float]) -> None:
    """Loss against LR on a log axis, with a labelled vertical line for each of `marks`."""
    figure, (axes,) = new_figure(7, 4.5)
    axes.plot(curve.lrs, curve.losses, color="0.75", linewidth=0.8, label="batch loss")
    axes.plot(curve.lrs, curve.smoothed, color="C0", linewidth=1.8, label="smoothed loss")
    colors = iter(["C3", "C2", "C1", "C4"])
    for label, lr in marks.items():
        axes.axvline(lr, color=next(colors, "k"), linestyle="--", label=f"{label}: {lr:.2g}")
    smoothed = np.asarray(curve.smoothed, dtype=float)
    finite = smoothed[np.isfinite(smoothed)]
    if finite.size:
        # The blow-up at the end would flatten the interesting part: cap the y axis just above
        # the highest smoothed loss seen before the minimum (usually the starting loss).
        top = float(np.max(finite[: int(np.argmin(finite)) + 1]))
        bottom = float(np.min(finite))
        margin = 0.1 * max(top - bottom, 1e-3)
        axes.set_ylim(bottom - margin, top + 3 * margin)
    axes.set_xscale("log")
    axes.set_xlabel("learning rate (log scale)")
    axes.set_ylabel("training loss")
    axes.set_title("LR range test")
    axes.legend(loc="upper left", fontsize="small")
    save_figure(figure, path)
