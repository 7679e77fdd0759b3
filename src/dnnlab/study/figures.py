"""The study report's figures: learning curves per option (against epochs and training time), the
LR range tests that chose the LRs, and, for the schedule study, each schedule's LR per epoch."""

from __future__ import annotations

import math

import keras
import numpy as np

from dnnlab.report.figures import grid_figure, new_figure
from dnnlab.schedules.decay import DECAYS, decay_schedule
from dnnlab.schedules.one_cycle import one_cycle_schedules
from dnnlab.study.options import SCHEDULES, title
from dnnlab.study.results import CellResult, OptionResults


def _color(index: int) -> str:
    return f"C{index % 10}"


def curves_figure(kind: str, options: dict[str, OptionResults], target: float | None, against: str = "epoch"):
    """Validation loss and accuracy of every cell, one colour per option, against epochs or training seconds."""
    fig, (loss_ax, acc_ax) = new_figure(12, 4.6, 2)
    for index, option in enumerate(options.values()):
        label = title(kind, option.name)
        for cell in option.cells:
            losses = cell.history["val_loss"]
            n = len(losses)
            x = np.arange(1, n + 1) if against == "epoch" else [cell.cpu_seconds_to(k) for k in range(1, n + 1)]
            if None in x:  # a run recorded before dnnlab timed its training part
                continue
            loss_ax.plot(x, losses, color=_color(index), alpha=0.8, linewidth=1.2, label=label)
            label = None  # one legend entry per option
            acc_ax.plot(
                x, 100 * np.asarray(cell.history["val_accuracy"]), color=_color(index), alpha=0.8, linewidth=1.2
            )
    if target is not None:
        loss_ax.axhline(target, color="k", linestyle=":", linewidth=1, label=f"common target {target:.3f}")
    xlabel = "epoch" if against == "epoch" else "training CPU seconds (compiling excluded)"
    loss_ax.set(xlabel=xlabel, ylabel="validation loss", title="Validation loss (one line per seed)")
    acc_ax.set(xlabel=xlabel, ylabel="validation accuracy (%)", title="Validation accuracy")
    finite = [v for o in options.values() for c in o.cells for v in c.history["val_loss"] if math.isfinite(v)]
    if finite:  # a diverging start would flatten everything else
        loss_ax.set_ylim(min(finite) * 0.97, min(max(finite), 1.6 * float(np.median(finite))))
    loss_ax.legend(fontsize=8, ncol=2)
    for ax in (loss_ax, acc_ax):
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
    return fig


def range_tests_figure(range_tests: dict[str, dict], one_cycle: bool):
    """Each optimizer's LR range test (smoothed loss against LR) and the LR it gave; None if none ran."""
    if not range_tests:
        return None
    fig, axes = grid_figure(len(range_tests), 4.2, 3.2)
    for ax, (optimizer, test) in zip(axes, sorted(range_tests.items())):
        lrs = np.asarray(test["curve"]["lrs"], dtype=float)
        losses = np.asarray([math.nan if v is None else v for v in test["curve"]["smoothed"]], dtype=float)
        ax.plot(lrs, losses, color="C0")
        ax.axvline(test["lr"], color="k", linestyle="--", label=f"{test['rule']}: {test['lr']:.2g}")
        if one_cycle:
            ax.axvline(
                test["turning_point"], color="C3", linestyle=":", label=f"1cycle peak: {test['turning_point']:.2g}"
            )
        finite = losses[np.isfinite(losses)]
        if finite.size:  # the blow-up at the end would flatten the descent
            ax.set_ylim(finite.min() * 0.95, min(finite.max(), 1.5 * finite[0]) * 1.05)
        ax.set(
            xscale="log", xlabel="learning rate", ylabel="smoothed loss", title=f"{optimizer} ({test['seconds']:.0f} s)"
        )
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return fig


POINTS_PER_EPOCH = 20  # where the per-batch schedules are drawn: enough for 1cycle's corners and piecewise steps


def schedule_lrs(cell: CellResult, schedule: str, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(epochs into training, LR) of `cell`'s run, as its optimizer computed the LR."""
    if schedule == "performance":  # ReduceLROnPlateau logged the LR each epoch ran at
        lrs = np.asarray(cell.history.get("learning_rate", [cell.lr] * cell.epochs_run))
        return np.repeat(np.arange(len(lrs) + 1), 2)[1:-1], np.repeat(lrs, 2)
    steps = math.ceil((cell.train_size or 1) / batch_size)
    if schedule in DECAYS:
        rate = decay_schedule(schedule, cell.lr, steps)
    elif schedule == "1cycle":
        rate = one_cycle_schedules(cell.lr, cell.epochs_run * steps).lr
    else:
        return np.array([0.0, cell.epochs_run]), np.array([cell.lr, cell.lr])
    at = np.unique(np.linspace(0, cell.epochs_run * steps - 1, POINTS_PER_EPOCH * cell.epochs_run + 1).round())
    return at / steps, np.asarray([float(keras.ops.convert_to_numpy(rate(int(step)))) for step in at])


def schedules_figure(options: dict[str, OptionResults], batch_size: int):
    """Each schedule's LR per epoch (first seed), log scale; None before any cell finished."""
    shown = [(i, o) for i, o in enumerate(options.values()) if o.cells]
    if not shown:
        return None
    fig, (ax,) = new_figure(7, 4)
    for index, option in shown:
        x, lrs = schedule_lrs(option.cells[0], SCHEDULES[option.name].schedule, batch_size)
        ax.plot(x, lrs, color=_color(index), label=title("schedules", option.name))
    ax.set(yscale="log", xlabel="epochs of training", ylabel="learning rate", title="The schedules as run (first seed)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
