"""`SearchConfig`: how `dnnlab search` runs a study (the reasons behind the defaults: docs/design-notes.md).

`WorkerOptions` are the flags of any worker that shares an Optuna study through a storage: the
search's, and the optimizer and schedule studies' (`dnnlab.study`), which reuse its workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dnnlab.config import nonempty, option, require

SEARCH_PARAMS = ("lr", "dropout", "batch")
BATCH_SIZES = (32, 64, 128, 256, 512)  # the batch sizes a search may pick


@dataclass(frozen=True)
class WorkerOptions:
    """How one worker joins a study that many share: where it is stored, and how dead workers are found."""

    storage: str | None = option(
        None, "SQLAlchemy URL such as postgresql://user@host/db; None: SQLite under <out>/search/ (study: <out>/study/)"
    )
    timeout: float | None = option(None, "seconds after which this worker starts no new trial; None: no limit")
    heartbeat_interval: int = option(20, "seconds between a running trial's heartbeats in the storage")
    grace_period: int = option(60, "a trial without a heartbeat for this long is failed (its worker died) and retried")
    max_retry: int = option(2, "how many times a dead worker's trial is re-run before it stays failed")

    def __post_init__(self) -> None:
        nonempty(self.storage, "--storage")
        require(self.timeout is None or self.timeout > 0, f"--timeout must be positive, got {self.timeout}")
        require(self.heartbeat_interval >= 1, f"--heartbeat-interval must be >= 1, got {self.heartbeat_interval}")
        require(
            self.grace_period > self.heartbeat_interval,
            f"--grace-period ({self.grace_period}) must exceed --heartbeat-interval ({self.heartbeat_interval}), "
            "or live trials would be declared dead",
        )
        require(self.max_retry >= 0, f"--max-retry must be >= 0, got {self.max_retry}")


@dataclass(frozen=True)
class SearchConfig(WorkerOptions):
    study: str | None = option(None, "study name shared by every worker; None: the variant's name")
    trials: int = option(20, "finished trials the study should reach, counting every worker and earlier runs")
    space: str | None = option(
        None, "comma list of lr, dropout, batch; None: lr,batch plus dropout if the model has one"
    )
    lr_low: float | None = option(None, "lowest LR to try; None: the centre / --lr-span")
    lr_high: float | None = option(None, "highest LR to try; None: the centre * --lr-span")
    lr_span: float = option(
        10.0,
        "without both bounds, LRs are log-uniform within this factor of a centre: --lr, else the LR range test's "
        "suggestion",
    )
    dropout_low: float = option(0.05, "lowest dropout rate to try")
    dropout_high: float = option(0.3, "highest dropout rate to try (the textbook uses 0.1)")
    baseline_trial: bool = option(True, "trial 0 trains the base config (LR: --lr, else what --lr auto picks)")
    prune_percentile: float = option(
        75.0, "stop a trial worse than this percentile of the finished ones at the same epoch (50: median rule)"
    )
    prune_warmup_epochs: int = option(9, "epochs no trial is judged in (early losses rank trials poorly)")
    prune_startup_trials: int = option(3, "nor before this many trials have finished (nothing to compare with)")

    def __post_init__(self) -> None:
        super().__post_init__()
        nonempty(self.study, "--study")
        require(self.trials >= 1, f"--trials must be >= 1, got {self.trials}")
        unknown = set(self.space_names) - set(SEARCH_PARAMS)
        require(
            self.space is None or (self.space_names and not unknown),
            f"--space must be a comma list of {', '.join(SEARCH_PARAMS)}, got {self.space!r}",
        )
        for name in ("lr_low", "lr_high"):
            value = getattr(self, name)
            flag = "--" + name.replace("_", "-")
            require(value is None or (math.isfinite(value) and value > 0), f"{flag} must be positive, got {value}")
        require(
            self.lr_low is None or self.lr_high is None or self.lr_low < self.lr_high,
            f"--lr-low ({self.lr_low}) must be below --lr-high ({self.lr_high})",
        )
        require(1 < self.lr_span < math.inf, f"--lr-span must be a number > 1, got {self.lr_span}")
        require(
            0.0 <= self.dropout_low < self.dropout_high < 1.0,
            f"need 0 <= --dropout-low < --dropout-high < 1, got {self.dropout_low} and {self.dropout_high}",
        )
        require(0 < self.prune_percentile < 100, f"--prune-percentile must be in (0, 100), got {self.prune_percentile}")
        require(self.prune_warmup_epochs >= 0, f"--prune-warmup-epochs must be >= 0, got {self.prune_warmup_epochs}")
        require(self.prune_startup_trials >= 0, f"--prune-startup-trials must be >= 0, got {self.prune_startup_trials}")

    @property
    def space_names(self) -> tuple[str, ...]:
        """The `--space` names as given (empty when `space` is None)."""
        if self.space is None:
            return ()
        return tuple(name.strip() for name in self.space.split(",") if name.strip())
