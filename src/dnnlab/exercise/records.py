"""The exercise's runs as read back from their folders (`RunRecord`), and their figures over seeds.

Everything in the report is a function of `RunRecord`s (a run folder's metrics, history and MC
Dropout scores), so tests feed scripted results and check that tables and sentences follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dnnlab.config import TrainConfig
from dnnlab.exercise.config import EXERCISE_PARTS
from dnnlab.training.history import cap_limited, training_seconds
from dnnlab.training.run_dir import COMPLETED
from dnnlab.uncertainty.report import DETERMINISTIC

LR_SEARCH_SECONDS = "lr_search_seconds"  # metrics.json's lr_search.seconds, as a table column
MC_KINDS = {"det": DETERMINISTIC, "mc": "mc"}  # flat-name prefix -> mc_dropout.json section


@dataclass(frozen=True)
class RunRecord:
    """One trained run as read back from its folder."""

    part: str  # exercise part key: a, c, d, e, f
    seed: int
    run_dir: Path
    metrics: dict[str, Any]  # metrics.json
    history: dict[str, list[float]]  # history.csv columns
    mc: dict[str, Any] | None = None  # mc_dropout.json (part e; see dnnlab.uncertainty.report)
    train: TrainConfig | None = None  # how the run was trained (its budget); None: unknown

    def value(self, key: str) -> float | None:
        """A figure of this run by flat name: a metrics.json key, `lr_search_seconds`, or
        `<det|mc>_<valid|test>_<metric>` from mc_dropout.json."""
        if key == LR_SEARCH_SECONDS:
            source, key = self.metrics.get("lr_search"), "seconds"
        elif key.startswith(("mc_", "det_")):
            kind, split, key = key.split("_", 2)
            source = None if self.mc is None else self.mc[split][MC_KINDS[kind]]
        else:
            source = self.metrics
        value = None if source is None else source.get(key)
        return None if value is None else float(value)

    @property
    def completed(self) -> bool:
        return self.metrics.get("status") == COMPLETED

    def best_valid_loss(self) -> float:
        return float(np.nanmin(self.history["val_loss"]))

    @property
    def cap_limited(self) -> bool:
        """The epoch cap, not early stopping, may have ended the run (a 1cycle's length is its
        schedule, not a stopping rule, so a 1cycle run never is)."""
        if self.train is None or self.train.schedule == "1cycle" or self.metrics.get("best_epoch") is None:
            return False
        return cap_limited(
            self.metrics["best_epoch"], self.metrics["epochs_run"], self.train.epochs, self.train.patience
        )

    def cpu_seconds_to(self, epochs: int) -> float | None:
        """Training CPU seconds of the first `epochs` epochs, compiling excluded (`training_seconds`)."""
        return training_seconds(self.history.get("train_cpu_time"), epochs)


@dataclass(frozen=True)
class Stat:
    """Values of one figure over seeds; `std` is the sample std (None for one seed)."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float | None:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else None


@dataclass(frozen=True)
class Column:
    key: str  # metrics.json (or mc_dropout.json for mc_*) key
    header: str
    kind: str  # how to format: percent, loss, lr, count, seconds


COLUMNS = (
    Column("lr", "chosen LR", "lr"),
    Column("epochs_run", "epochs run", "count"),
    Column("best_epoch", "best epoch", "count"),
    Column("valid_accuracy", "valid acc %", "percent"),
    Column("valid_loss", "valid loss", "loss"),
    Column("test_accuracy", "test acc %", "percent"),
    Column("test_loss", "test loss", "loss"),
    Column("train_seconds_per_epoch", "s/epoch", "seconds"),
    Column("train_cpu_seconds_per_epoch", "CPU s/epoch", "seconds"),
    Column("time_to_best_seconds", "s to best epoch", "seconds"),
    Column(LR_SEARCH_SECONDS, "s LR search", "seconds"),
    Column("wall_seconds", "s total", "seconds"),
    Column("mc_valid_accuracy", "MC valid acc %", "percent"),
    Column("mc_test_accuracy", "MC test acc %", "percent"),
)


def stat(records: Sequence[RunRecord], key: str) -> Stat | None:
    values = [record.value(key) for record in records]
    present = tuple(v for v in values if v is not None)
    return Stat(present) if present else None


def by_part(records: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
    """Completed runs grouped by part, in exercise order, each sorted by seed.

    A diverged (or otherwise unfinished) run has no trustworthy scores: it is listed apart
    (see `unfinished_note`), never averaged in.
    """
    grouped = {
        key: sorted((r for r in records if r.part == key and r.completed), key=lambda r: r.seed)
        for key in EXERCISE_PARTS
    }
    return {key: runs for key, runs in grouped.items() if runs}


def _number(value: float, kind: str, like: float | None = None) -> str:
    """`value` formatted for its kind; a std takes the decimals of its mean (`like`)."""
    like = value if like is None else like
    if kind == "percent":
        return f"{100 * value:.1f}"
    if kind == "loss":
        return f"{value:.3f}"
    if kind == "lr":
        return f"{value:.2g}"
    if kind == "count":
        return f"{value:.0f}" if float(like).is_integer() and float(value).is_integer() else f"{value:.1f}"
    return f"{value:.1f}" if like < 10 else f"{value:.0f}"


def format_stat(value: Stat | None, kind: str) -> str:
    """`mean ± std` (just the value for one seed); an em dash when there is nothing."""
    if value is None:
        return "—"
    text = _number(value.mean, kind)
    return text if value.std is None else f"{text} ± {_number(value.std, kind, like=value.mean)}"
