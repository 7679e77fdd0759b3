"""`OptimizerStudyConfig` and `ScheduleStudyConfig`: the flags of `dnnlab study optimizers|schedules`.

Both share `StudyConfig` (seeds, net, LR rule, --quick, paths) and the worker flags of
`dnnlab search` (`WorkerOptions`: storage, heartbeats, retries). Why the budget is what it is:
docs/design-notes.md ("The optimizer and schedule studies").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dnnlab.config import BUDGET_MAX_EPOCHS, check_seeds, check_subset, nonempty, one_of, option, require
from dnnlab.lr.rules import RULES
from dnnlab.search.config import WorkerOptions
from dnnlab.study.options import CATALOGUES, OPTIMIZERS, QUICK

DEFAULT_SEEDS = 3
STUDY_DIR = "study"  # under --out: the SQLite file, and one folder per study

# Fields that say where a worker runs or how it waits, not what the study computes: workers on
# other machines may differ in these (every worker option, the study's name and the paths).
LOCAL_FIELDS = frozenset({f.name for f in dataclasses.fields(WorkerOptions)} | {"study", "data_dir", "out"})


def parse_options(kind: str, text: str | None, quick: bool) -> tuple[str, ...]:
    """`"adam,sgd"` -> `("sgd", "adam")` in the catalogue's order; None: all of them (--quick: three)."""
    catalogue = CATALOGUES[kind]
    if text is None:
        return QUICK[kind] if quick else tuple(catalogue)
    chosen = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in catalogue]
    require(not unknown, f"--{kind}: unknown {', '.join(unknown)}; choose from {', '.join(catalogue)}")
    require(len(set(chosen)) >= 2, f"--{kind} needs at least two options to compare, got {text!r}")
    return tuple(name for name in catalogue if name in chosen)


@dataclass(frozen=True)
class StudyConfig(WorkerOptions):
    kind: ClassVar[str]  # "optimizers" or "schedules"

    study: str | None = option(None, "study name shared by every worker; None: optimizers or schedules (+ -quick)")
    seeds: int | None = option(
        None, "train every option with this many seeds (seed, seed+1, ...), one cell each; None: 3 (--quick: 1)"
    )
    seed: int = option(42, "the first seed")
    batch_size: int = option(32, "the exercise's batch size")
    depth: int = option(20, "hidden layers of the exercise's ELU + He-init net (8a)")
    width: int = option(100, "units per hidden layer")
    rule: str = option("minimum", f"the LR range test's rule that picks every option's LR: {' | '.join(RULES)}")
    quick: bool = option(
        False, "one seed and three options unless given, a data subset, few epochs: about a minute (tries, CI)"
    )
    quick_subset: int = option(2000, "--quick: train on this many images")
    quick_epochs: int = option(3, "--quick: at most this many epochs per cell")
    quick_finder_steps: int = option(300, "--quick: LR range-test batches")
    data_dir: str | None = option(
        None, "folder holding cifar-10-batches-py/; None: $DNNLAB_DATA, then ~/.keras/datasets"
    )
    out: str = option("runs", "parent folder: cells and report in <out>/study/<study>/, SQLite in <out>/study/")

    def __post_init__(self) -> None:
        super().__post_init__()
        nonempty(self.study, "--study")
        require(self.seeds is None or self.seeds >= 1, f"--seeds must be >= 1, got {self.seeds}")
        check_seeds(self.seed, len(self.seed_list))
        nonempty(self.data_dir, "--data-dir")
        nonempty(self.out, "--out")
        require(self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}")
        require(
            self.depth >= 1 and self.width >= 1, f"--depth and --width must be >= 1, got {self.depth}, {self.width}"
        )
        one_of(self.rule, list(RULES), "--rule")
        check_subset(self.quick_subset, flag="--quick-subset")
        require(self.quick_epochs >= 1, f"--quick-epochs must be >= 1, got {self.quick_epochs}")
        require(self.quick_finder_steps >= 2, f"--quick-finder-steps must be >= 2, got {self.quick_finder_steps}")
        parse_options(self.kind, self.given_names, self.quick)

    @property
    def given_names(self) -> str | None:
        """The comma list of options the user chose (--optimizers, --schedules), or None for all."""
        raise NotImplementedError

    @property
    def names(self) -> tuple[str, ...]:
        """The options to compare, in the catalogue's order."""
        return parse_options(self.kind, self.given_names, self.quick)

    @property
    def seed_list(self) -> tuple[int, ...]:
        count = self.seeds if self.seeds is not None else 1 if self.quick else DEFAULT_SEEDS
        return tuple(range(self.seed, self.seed + count))

    @property
    def study_name(self) -> str:
        return self.study or (f"{self.kind}-quick" if self.quick else self.kind)

    @property
    def folder(self) -> Path:
        return Path(self.out) / STUDY_DIR / self.study_name

    @property
    def max_epochs(self) -> int:
        """The early-stopping budget's cap (`config.BUDGET_MAX_EPOCHS`), or --quick's epochs."""
        return self.quick_epochs if self.quick else BUDGET_MAX_EPOCHS

    def shared_settings(self) -> dict[str, Any]:
        """What every worker of the study must agree on: the grid, and the fields that change what a cell
        computes. The grid is stored as the options and seeds it holds, so `--seeds 3` and no --seeds agree."""
        spelled = {f"{self.kind}", "seeds", "seed"}  # how the grid was asked for
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k not in LOCAL_FIELDS | spelled}
        return {"kind": self.kind, "grid_options": list(self.names), "grid_seeds": list(self.seed_list), **fields}


@dataclass(frozen=True)
class OptimizerStudyConfig(StudyConfig):
    kind: ClassVar[str] = "optimizers"

    optimizers: str | None = option(
        None, f"comma list of {', '.join(OPTIMIZERS)}; None: all (--quick: {', '.join(QUICK['optimizers'])})"
    )

    @property
    def given_names(self) -> str | None:
        return self.optimizers


@dataclass(frozen=True)
class ScheduleStudyConfig(StudyConfig):
    kind: ClassVar[str] = "schedules"

    schedules: str | None = option(
        None,
        f"comma list of {', '.join(CATALOGUES['schedules'])}; None: all (--quick: {', '.join(QUICK['schedules'])})",
    )
    optimizer: str = option("nadam", f"the optimizer under every schedule: {' | '.join(OPTIMIZERS)}")
    one_cycle_epochs: int = option(
        25, "1cycle's length: it runs whole (early stopping cannot cut a cycle short), as the book's 25 epochs"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of(self.optimizer, list(OPTIMIZERS), "--optimizer")
        require(self.one_cycle_epochs >= 1, f"--one-cycle-epochs must be >= 1, got {self.one_cycle_epochs}")

    @property
    def given_names(self) -> str | None:
        return self.schedules


KINDS: dict[str, type[StudyConfig]] = {"optimizers": OptimizerStudyConfig, "schedules": ScheduleStudyConfig}


def config_from_settings(settings: dict[str, Any], study: str, out: str) -> StudyConfig:
    """The config a study was started with (`StudyConfig.shared_settings`), with this machine's paths."""
    kind, options, seeds = settings["kind"], settings["grid_options"], settings["grid_seeds"]
    fields = {key: value for key, value in settings.items() if key not in ("kind", "grid_options", "grid_seeds")}
    grid = {kind: ",".join(options), "seed": seeds[0], "seeds": len(seeds)}
    return KINDS[kind](**fields, **grid, study=study, out=out)
