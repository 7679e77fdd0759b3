"""LR range test (`lr_find`) and the rules that turn its curve into a suggested LR.

The range test trains the freshly initialized model for about one epoch while the LR grows
exponentially (`LRRangeTest`), then puts the model back as it was. A suggestion rule is a
pure function `(lrs, losses) -> lr` of the smoothed curve, chosen by name (`RULES`). The curve
goes to `lr_finder.csv` and a log-x plot with the suggestion to `lr_finder.png`.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import keras

from dnnlab.atomic import write_bytes_atomic, write_text_atomic
from dnnlab.config import RunConfig
from dnnlab.data import Splits
from dnnlab.errors import DnnlabError
from dnnlab.fused_steps import fit_batch_size
from dnnlab.lr_range_test import LRRangeTest
from dnnlab.train import build_for, compile_model

CSV_FILE = "lr_finder.csv"
PLOT_FILE = "lr_finder.png"
MAX_STEPS = 1000  # the default sweep is one epoch, capped so a large training set stays cheap
MIN_POINTS = 5  # fewer usable points than this cannot show a trend
SKIP_FRACTION = 0.10  # `steepest` ignores the first 10%: tiny LRs, where the loss is flat and noisy
SLOPE_SPAN = 0.5  # `steepest` measures each slope across half a decade of LR


# --- suggestion rules: pure functions of the curve -------------------------------------------------

def usable_curve(lrs: Sequence[float], losses: Sequence[float], rule: str) -> tuple[np.ndarray, np.ndarray]:
    """The curve up to its first non-finite loss, checked to have `MIN_POINTS` points."""
    lrs = np.asarray(lrs, dtype=float)
    losses = np.asarray(losses, dtype=float)
    if lrs.shape != losses.shape or lrs.ndim != 1:
        raise ValueError(f"lrs and losses must be 1-D and equally long, got {lrs.shape} and {losses.shape}")
    bad = np.flatnonzero(~np.isfinite(losses))
    end = int(bad[0]) if bad.size else len(losses)
    lrs, losses = lrs[:end], losses[:end]
    if np.any(lrs <= 0) or np.any(np.diff(lrs) <= 0):
        raise ValueError("lrs must be positive and increasing")
    if end < MIN_POINTS:
        raise DnnlabError(
            f"the LR range test has only {end} usable points (need >= {MIN_POINTS}) for the "
            f"{rule!r} rule: the loss diverged at once or the test was too short; lower --finder-start-lr "
            "or raise --finder-steps"
        )
    return lrs, losses


def steepest(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """The LR where the loss falls fastest per unit of **log** LR, after the first 10% of points.

    The slope is taken against log(LR) because the sweep is exponential: against the LR
    itself, the tiny steps at small LRs would inflate their slopes and win. Each slope spans
    `SLOPE_SPAN` decades rather than two neighbours: a real sweep has ~130 points per decade,
    and the smoothed loss still wiggles between them (measured on CIFAR-10 `elu`: neighbour
    slopes picked 3.6e-7, far before the descent, where this picks 1.1e-5).
    """
    lrs, losses = usable_curve(lrs, losses, "steepest")
    skip = int(len(lrs) * SKIP_FRACTION)
    if len(lrs) - skip < MIN_POINTS:
        raise DnnlabError(
            f"the LR range test has only {len(lrs) - skip} usable points after skipping the first "
            f"{skip} (need >= {MIN_POINTS}); raise --finder-steps"
        )
    lrs, losses = lrs[skip:], losses[skip:]
    decades = np.log10(lrs)
    low = np.searchsorted(decades, decades - SLOPE_SPAN / 2)  # first point in the span
    high = np.searchsorted(decades, decades + SLOPE_SPAN / 2, side="right") - 1  # last point in it
    # Where points are sparser than the span, the span shrinks to the neighbours (np.gradient's slopes).
    low = np.minimum(low, np.maximum(np.arange(len(lrs)) - 1, 0))
    high = np.maximum(high, np.minimum(np.arange(len(lrs)) + 1, len(lrs) - 1))
    slopes = (losses[high] - losses[low]) / (decades[high] - decades[low])
    return float(lrs[int(np.argmin(slopes))])


def minimum(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """A tenth of the LR at the lowest loss: just below where the loss turns back up."""
    return turning_point(lrs, losses) / 10


def turning_point(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """The LR at the lowest loss, where the loss turns back up.

    The peak of a 1cycle schedule: the cycle starts a tenth below it and passes through it only
    briefly (Smith 2018). Measured on CIFAR-10 8f (SGD, batch 128): `minimum` gave a 6.2e-3 peak
    and 50.0% validation accuracy; the textbook's hand-picked peak, 0.05, sits next to this point.
    """
    lrs, losses = usable_curve(lrs, losses, "turning-point")
    return float(lrs[int(np.argmin(losses))])


def valley(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """fastai's `valley`: the middle of the longest stretch over which the loss keeps falling.

    The stretch is the longest decreasing subsequence of the loss; fastai picks the point
    half-way along it (https://github.com/fastai/fastai, `fastai/callback/schedule.py`).
    """
    lrs, losses = usable_curve(lrs, losses, "valley")
    n = len(losses)
    run = np.ones(n, dtype=int)  # run[i]: length of the longest decreasing subsequence ending at i
    for i in range(1, n):
        higher = run[:i][losses[:i] > losses[i]]
        if higher.size:
            run[i] = higher.max() + 1
    end = int(np.argmax(run))  # the first longest one, as fastai's strict comparison picks
    start = end - int(run[end])
    sections = (end - start) / 3
    index = start + int(sections) + int(sections / 2)
    return float(lrs[min(max(index, 0), n - 1)])


# Keep in step with `config.RULE_NAMES`, which validates --rule without importing Keras.
RULES: dict[str, Callable[[Sequence[float], Sequence[float]], float]] = {
    "steepest": steepest,
    "minimum": minimum,
    "valley": valley,
    "turning-point": turning_point,
}


def suggest(rule: str, lrs: Sequence[float], losses: Sequence[float]) -> float:
    if rule not in RULES:
        raise DnnlabError(f"unknown LR rule {rule!r}; choose one of: {', '.join(RULES)}")
    return RULES[rule](lrs, losses)


# --- running the test -----------------------------------------------------------------------------

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


def run_range_test(model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int, steps: int,
                   start_lr: float = 1e-7, end_lr: float = 10.0) -> RangeTestCurve:
    """Sweep a compiled model over `steps` batches of shuffled `(x, y)`; the model is restored after."""
    test = LRRangeTest(steps, start_lr=start_lr, end_lr=end_lr)
    started = time.perf_counter()
    epochs = math.ceil(steps / math.ceil(len(x) / batch_size))  # the callback stops at `steps`
    # The test's callback sets the LR and reads the loss at every step: no fused steps.
    model.fit(x, y, batch_size=fit_batch_size(model, batch_size, fused_samples=0), epochs=epochs,
              shuffle=True, callbacks=[test], verbose=0)
    return RangeTestCurve(list(test.lrs), list(test.losses), list(test.smoothed), test.stopped_early,
                          time.perf_counter() - started)


def lr_find(config: RunConfig, splits: Splits, run_dir: str | Path, model: keras.Model | None = None,
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
    print(f"dnnlab: LR range test, {steps} steps from {search.finder_start_lr:g} to {search.finder_end_lr:g}",
          flush=True)
    curve = run_range_test(model, splits.x_train, splits.y_train, config.train.batch_size, steps,
                           search.finder_start_lr, search.finder_end_lr)
    run_dir = Path(run_dir)
    save_curve(curve, run_dir / CSV_FILE)  # kept even when too few points remain for a suggestion
    suggestion = suggest(rule, curve.lrs, curve.smoothed)
    save_plot(curve, run_dir / PLOT_FILE, {f"suggestion ({rule})": suggestion})
    stop = "stopped by the divergence rule" if curve.stopped_early else "ran every step"
    print(f"dnnlab: range test: {len(curve.lrs)} points ({stop}) in {curve.seconds:.1f} s; "
          f"{rule} suggests lr={suggestion:.3g}", flush=True)
    return LRFinderResult(curve=curve, rule=rule, suggestion=suggestion)


# --- files ----------------------------------------------------------------------------------------

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
    return ([float(r["lr"]) for r in rows], [float(r["loss"]) for r in rows],
            [float(r["smoothed_loss"]) for r in rows])


def save_plot(curve: RangeTestCurve, path: str | Path, marks: dict[str, float]) -> None:
    """Loss against LR on a log axis, with a labelled vertical line for each of `marks`."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, safe in threads and CI

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.subplots()
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
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    write_bytes_atomic(path, buffer.getvalue())
