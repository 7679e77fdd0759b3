"""A study's finished cells as records, read back from the study's storage, and their figures over seeds.

Each cell's trial keeps what the report needs in its user attributes (`cell_attrs`): the run's
scores and its per-epoch history. So the report can be built on any machine that reaches the
storage, whichever machines trained the cells (their run folders stay where they ran).

The common target (`common_target`) is the worst of the options' mean best validation losses:
the loosest level every option reached on average. A cell's epochs and seconds to it count from
the start of its training. The seconds are training CPU seconds (history.csv's `train_cpu_time`,
validation excluded, the first, compiling epoch counted at the run's steady rate:
`training.history.training_seconds`), as the exercise counts them: workers that share the cores
barely change them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from dnnlab.config import BUDGET_PATIENCE
from dnnlab.stats import Interval, mean_interval
from dnnlab.study.cells import DUPLICATE_ATTR, Cell
from dnnlab.training.history import cap_limited, first_epoch_at_or_below, training_seconds
from dnnlab.training.run_dir import COMPLETED

HISTORY_KEYS = ("loss", "val_loss", "val_accuracy", "epoch_time", "train_time", "train_cpu_time", "learning_rate")


def cell_attrs(cell: Cell, metrics: dict[str, Any], history: dict[str, list[float]], max_epochs: int) -> dict:
    """What a finished cell's trial stores: its run's metrics.json figures and history columns."""
    best, run = metrics.get("best_epoch"), metrics.get("epochs_run", 0)
    return {
        "option": cell.option,
        "seed": cell.seed,
        "lr": metrics["lr"],
        "status": metrics["status"],
        "best_epoch": best,
        "epochs_run": run,
        "valid_accuracy": metrics.get("valid_accuracy"),
        "valid_loss": metrics.get("valid_loss"),
        "train_size": metrics.get("train_size"),
        "cap_limited": best is not None and cap_limited(best, run, max_epochs, BUDGET_PATIENCE),
        "history": {key: [float(v) for v in history[key]] for key in HISTORY_KEYS if key in history},
    }


@dataclass(frozen=True)
class CellResult:
    """One finished cell, as its trial recorded it."""

    option: str
    seed: int
    lr: float
    status: str  # the run's: completed or diverged
    best_epoch: int | None  # 1-based
    epochs_run: int
    valid_accuracy: float | None  # of the restored best epoch (lowest validation loss)
    valid_loss: float | None
    cap_limited: bool  # the 100-epoch cap, not early stopping, may have ended it
    history: dict[str, list[float]]
    trial: int = -1
    worker: str = ""
    train_size: int | None = None

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any], trial: int = -1) -> CellResult:
        fields = {name: attrs.get(name) for name in cls.__dataclass_fields__ if name not in ("trial", "worker")}
        return cls(**fields, trial=trial, worker=attrs.get("worker", ""))

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED and self.valid_loss is not None

    def best_loss(self) -> float:
        return float(np.nanmin(self.history["val_loss"]))

    def cpu_seconds_to(self, epochs: int) -> float | None:
        """Training CPU seconds of the first `epochs` epochs, compiling excluded (`training_seconds`)."""
        return training_seconds(self.history.get("train_cpu_time"), epochs)

    def to_target(self, target: float) -> tuple[int, float | None] | None:
        """(1-based epoch, training CPU seconds) when the validation loss first reached `target`, or None."""
        epoch = first_epoch_at_or_below(self.history["val_loss"], target)
        return None if epoch is None else (epoch, self.cpu_seconds_to(epoch))


def identical_options(options: dict[str, OptionResults]) -> list[tuple[str, str, int]]:
    """Pairs of options that trained identically: the same seeds, and in each the same validation-loss
    curve to the last digit; with how many seeds. (AdamW with the book's weight decay is one: at these
    learning rates the decay is below a float32 weight's precision, so it trains as Adam.)"""
    pairs = []
    names = list(options)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            a, b = options[first].cells, options[second].cells
            if a and [c.seed for c in a] == [c.seed for c in b]:
                if all(x.history.get("val_loss") == y.history.get("val_loss") for x, y in zip(a, b, strict=True)):
                    pairs.append((first, second, len(a)))
    return pairs


def cell_results(study: optuna.Study) -> list[CellResult]:
    """The study's finished cells (duplicates and failed trials left out), in trial order."""
    return [
        CellResult.from_attrs(t.user_attrs, t.number)
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "option" in t.user_attrs and not t.user_attrs.get(DUPLICATE_ATTR)
    ]


@dataclass(frozen=True)
class OptionResults:
    """One option's cells: the completed ones, and those that ended otherwise (diverged)."""

    name: str
    cells: list[CellResult] = field(default_factory=list)  # completed, by seed
    failed: list[CellResult] = field(default_factory=list)

    def by_seed(self, key: str) -> dict[int, float]:
        return {cell.seed: float(getattr(cell, key)) for cell in self.cells if getattr(cell, key) is not None}

    def interval(self, key: str) -> Interval | None:
        values = list(self.by_seed(key).values())
        return mean_interval(values) if values else None

    def mean_best_loss(self) -> float | None:
        return float(np.mean([c.best_loss() for c in self.cells])) if self.cells else None

    def to_target(self, target: float | None) -> dict[int, tuple[int, float] | None]:
        """Per seed: (epochs, seconds) to `target`, or None where the cell never reached it."""
        return {cell.seed: None if target is None else cell.to_target(target) for cell in self.cells}

    def epochs_to_target(self, target: float | None) -> dict[int, float | None]:
        return {seed: None if hit is None else float(hit[0]) for seed, hit in self.to_target(target).items()}

    def lrs(self) -> list[float]:
        return sorted({cell.lr for cell in [*self.cells, *self.failed]})


def by_option(cells: Sequence[CellResult], names: Sequence[str]) -> dict[str, OptionResults]:
    """The cells grouped by option, in `names` order, each sorted by seed (one cell per seed)."""
    grouped = {}
    for name in names:
        mine = sorted((c for c in cells if c.option == name), key=lambda c: c.seed)
        grouped[name] = OptionResults(name, [c for c in mine if c.completed], [c for c in mine if not c.completed])
    return grouped


def common_target(options: dict[str, OptionResults]) -> float | None:
    """The worst (highest) of the options' mean best validation losses; None before any cell finished."""
    means = [o.mean_best_loss() for o in options.values() if o.cells]
    return max(means) if means else None
