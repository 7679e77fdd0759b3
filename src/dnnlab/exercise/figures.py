"""The exercise report's figures, each a function of the runs grouped by part."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dnnlab.exercise.config import EXERCISE_PARTS
from dnnlab.exercise.records import RunRecord, stat
from dnnlab.lr.finder import CSV_FILE as LR_FINDER_CSV
from dnnlab.lr.finder import read_curve
from dnnlab.report.figures import grid_figure, new_figure


def _color(key: str) -> str:
    return f"C{list(EXERCISE_PARTS).index(key)}"


def curves_figure(by: dict[str, list[RunRecord]], against: str = "epoch"):
    """Validation loss and accuracy of every run, per epoch or against cumulative training CPU seconds
    (compiling excluded: `RunRecord.cpu_seconds_to`)."""
    fig, (loss_ax, acc_ax) = new_figure(12, 4.2, 2)
    for key, runs in by.items():
        for i, run in enumerate(runs):
            n = len(run.history["val_loss"])
            if against == "epoch":
                x = np.arange(1, n + 1)
            else:
                x = np.array([run.cpu_seconds_to(k) or math.nan for k in range(1, n + 1)])
            label = f"{key}: {EXERCISE_PARTS[key].name}" if i == 0 else None
            loss_ax.plot(x, run.history["val_loss"], color=_color(key), alpha=0.85, label=label)
            acc_ax.plot(x, 100 * np.asarray(run.history["val_accuracy"]), color=_color(key), alpha=0.85)
    xlabel = "epoch" if against == "epoch" else "training CPU time (s)"
    loss_ax.set(xlabel=xlabel, ylabel="validation loss", title="Validation loss")
    acc_ax.set(xlabel=xlabel, ylabel="validation accuracy (%)", title="Validation accuracy")
    loss_ax.legend(fontsize=8)
    for ax in (loss_ax, acc_ax):
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
    return fig


def lr_finder_figure(by: dict[str, list[RunRecord]]):
    """Each part's LR range test (first seed) with the LR the search chose; None if none was run."""
    tested = [(key, runs[0]) for key, runs in by.items() if (runs[0].run_dir / LR_FINDER_CSV).exists()]
    if not tested:
        return None
    fig, axes = grid_figure(len(tested), 4.0, 3.2)
    for ax, (key, run) in zip(axes, tested):
        lrs, _, smoothed = read_curve(run.run_dir / LR_FINDER_CSV)
        lrs, losses = np.asarray(lrs), np.asarray(smoothed)
        ax.plot(lrs, losses, color=_color(key))
        search = run.metrics.get("lr_search") or {}
        if search.get("suggestion") is not None:
            ax.axvline(
                search["suggestion"],
                color="grey",
                linestyle=":",
                label=f"range test ({search.get('rule')}) {search['suggestion']:.2g}",
            )
        ax.axvline(run.metrics["lr"], color="k", linestyle="--", label=f"chosen {run.metrics['lr']:.2g}")
        ax.set(
            xscale="log",
            xlabel="learning rate",
            ylabel="smoothed loss",
            title=f"{key}: {EXERCISE_PARTS[key].name} (seed {run.seed})",
        )
        finite = losses[np.isfinite(losses)]
        if finite.size:  # the exploding tail would flatten the interesting part
            ax.set_ylim(finite.min() * 0.95, min(finite.max(), 2 * finite[0]) * 1.05)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return fig


def accuracy_figure(by: dict[str, list[RunRecord]]):
    """Validation and test accuracy per part (mean, std error bars) and the book's validation figure."""
    fig, (ax,) = new_figure(max(5.0, 1.6 * len(by)), 4)
    x = np.arange(len(by))
    for offset, key, label in ((-0.2, "valid_accuracy", "validation"), (0.2, "test_accuracy", "test")):
        stats = [stat(runs, key) for runs in by.values()]
        ax.bar(
            x + offset,
            [100 * s.mean for s in stats],
            width=0.38,
            label=f"ours: {label}",
            yerr=[100 * (s.std or 0.0) for s in stats],
            capsize=4,
            alpha=0.85 if label == "test" else 0.5,
        )
    ax.scatter(
        x - 0.2,
        [100 * EXERCISE_PARTS[key].textbook_valid_accuracy for key in by],
        marker="_",
        s=600,
        color="k",
        zorder=3,
        label="book: validation (one seed)",
    )
    ax.set_xticks(x, [f"{key}: {EXERCISE_PARTS[key].name}" for key in by], fontsize=8)
    ax.set(ylabel="accuracy (%)", title="Accuracy per part (error bars: std over seeds)")
    low = min(100 * stat(runs, "test_accuracy").mean for runs in by.values())
    ax.set_ylim(max(0.0, low - 15), None)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    return fig


def mc_figure(runs: Sequence[RunRecord]):
    """Part e: deterministic vs MC Dropout accuracy and NLL (mean ± std over seeds), valid and test.

    Points, not bars: the differences are fractions of a point and bars would need a cut axis.
    """
    runs = [r for r in runs if r.mc is not None]
    metrics = [
        (key, label, scale)
        for key, label, scale in (("accuracy", "accuracy (%)", 100.0), ("nll", "NLL", 1.0))
        if stat(runs, f"det_valid_{key}") is not None
    ]
    fig, axes = new_figure(5 * len(metrics), 3.6, len(metrics))
    x = np.arange(2)
    for ax, (metric, label, scale) in zip(axes, metrics):
        mc_name = f"MC Dropout ({runs[0].mc['samples']} samples)"
        for offset, kind, name in ((-0.1, "det", "deterministic"), (0.1, "mc", mc_name)):
            stats = [stat(runs, f"{kind}_{split}_{metric}") for split in ("valid", "test")]
            ax.errorbar(
                x + offset,
                [scale * s.mean for s in stats],
                yerr=[scale * (s.std or 0.0) for s in stats],
                fmt="o",
                capsize=4,
                label=name,
            )
        ax.set_xticks(x, ["validation", "test"])
        ax.set_xlim(-0.5, 1.5)
        ax.set(ylabel=label, title=f"8e: {label}")
        if metric == "accuracy":
            _widen(ax, MC_ACCURACY_MIN_SPAN)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    return fig


# Matplotlib fits the y-axis to the points, so accuracies 0.02 points apart filled the plot as if
# they differed a lot; 2 points of axis keep gaps under the 0.5-point "same" rule looking small.
MC_ACCURACY_MIN_SPAN = 2.0


def _widen(ax, span: float) -> None:
    """Make `ax`'s y-axis at least `span` tall, around its current centre."""
    low, high = ax.get_ylim()
    if high - low < span:
        centre = (low + high) / 2
        ax.set_ylim(centre - span / 2, centre + span / 2)
