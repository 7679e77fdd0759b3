"""Cells: one option trained with one seed, as a real run folder, and which trial of the grid holds each.

A cell's run config is the exercise's net trained as `dnnlab train` trains it, with the option's
optimizer or schedule, under the early-stopping budget every comparison uses
(`config.BUDGET_PATIENCE`, `BUDGET_MAX_EPOCHS`; best weights restored). Its folder is
`<out>/study/<study>/<option>/seed-<k>/`, so a killed cell resumes there and a finished one is
reused, like any run.

Which trial holds a cell. Optuna's GridSampler gives trial k < n (n cells) grid point k, so the
first n trials cover the grid once. Later trials are either retries of dead workers' trials
(queued with their cell) or ones the sampler fills with an unfinished or random point, which may
be a cell another trial holds. Rule: a cell belongs to the lowest-numbered trial that holds it
(complete, pruned, running or waiting); any other trial with that cell is a duplicate and is not
run (`claim`), or, if two trials claimed it at the same instant, its result is dropped after
training (`still_owner`). A cell whose trials all failed (an error, retries used up) is queued
again by the next worker (`requeue_missing`), so a rerun finishes exactly the missing cells.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial

from dnnlab.config import BUDGET_PATIENCE, DataConfig, LRSearchConfig, ModelConfig, RunConfig, TrainConfig
from dnnlab.search.worker import CLAIMED, SurplusTrial
from dnnlab.study.config import StudyConfig
from dnnlab.study.options import OPTIMIZERS, SCHEDULES

log = logging.getLogger(__name__)

DUPLICATE_ATTR = "surplus"  # as the search's surplus trials: this trial held no cell and did not count


@dataclass(frozen=True, order=True)
class Cell:
    option: str
    seed: int

    def __str__(self) -> str:
        return f"{self.option}/seed-{self.seed}"


def grid_space(config: StudyConfig) -> dict[str, list]:
    """The GridSampler's search space: every option with every seed."""
    return {"option": list(config.names), "seed": list(config.seed_list)}


def all_cells(config: StudyConfig) -> list[Cell]:
    return [Cell(option, seed) for option in config.names for seed in config.seed_list]


def cell_of(trial: FrozenTrial) -> Cell | None:
    """The cell a trial holds: its parameters, or those it was queued with; None before it has any
    (a trial in its first milliseconds, or the retry of one killed then; `still_owner` covers them)."""
    params = trial.params or trial.system_attrs.get("fixed_params") or {}
    return Cell(params["option"], int(params["seed"])) if {"option", "seed"} <= set(params) else None


def owner(study: optuna.Study, cell: Cell, before: int | None = None) -> int | None:
    """The lowest-numbered claimed trial holding `cell` (numbered below `before`, when given)."""
    numbers = [
        t.number
        for t in study.get_trials(deepcopy=False, states=CLAIMED)
        if cell_of(t) == cell and (before is None or t.number < before)
    ]
    return min(numbers, default=None)


def claim(trial: optuna.Trial, config: StudyConfig) -> Cell:
    """The cell of `trial` (asked from the grid), or `SurplusTrial` when a lower-numbered trial holds it."""
    cell = Cell(
        trial.suggest_categorical("option", list(config.names)),
        int(trial.suggest_categorical("seed", list(config.seed_list))),
    )
    still_owner(trial, cell, config)
    return cell


def still_owner(trial: optuna.Trial, cell: Cell, config: StudyConfig) -> None:
    """`SurplusTrial` if a lower-numbered trial holds `cell` (claimed it first, or meanwhile: checked again
    after training)."""
    held_by = owner(trial.study, cell, before=trial.number)
    if held_by is not None:
        duplicate(trial, cell, f"trial {held_by}", config)


def duplicate(trial: optuna.Trial, cell: Cell, holder: str, config: StudyConfig) -> None:
    """Mark `trial` as holding no cell and end it (`SurplusTrial`): `holder` has `cell`."""
    trial.set_user_attr(DUPLICATE_ATTR, True)
    requeue_missing(trial.study, config)  # the sampler may have run out of free cells: hand this worker one
    raise SurplusTrial(f"cell {cell} is held by {holder}; trial {trial.number} is not counted")


def missing_cells(study: optuna.Study, config: StudyConfig) -> list[Cell]:
    """The cells no trial holds (none complete, running or waiting)."""
    held = {cell_of(t) for t in study.get_trials(deepcopy=False, states=CLAIMED)}
    return [cell for cell in all_cells(config) if cell not in held]


def requeue_missing(study: optuna.Study, config: StudyConfig) -> list[Cell]:
    """Queue a trial for every missing cell whose trials failed; return them.

    While the study has fewer trials than cells, a cell no trial has tried yet is left to the
    sampler (trial k gets grid point k); after that, every missing cell is queued. Two workers
    that queue the same cell at once leave a duplicate, which `claim` skips.
    """
    trials = study.get_trials(deepcopy=False)
    tried = {cell_of(t) for t in trials}
    first_pass_over = len(trials) >= len(all_cells(config))
    queued = [cell for cell in missing_cells(study, config) if cell in tried or first_pass_over]
    for cell in queued:
        study.enqueue_trial({"option": cell.option, "seed": cell.seed})
    if queued:
        log.info("queued again, their earlier trials having failed: %s", ", ".join(map(str, queued)))
    return queued


def train_fields(config: StudyConfig, option: str) -> dict:
    """The `TrainConfig` fields that make `option` (an optimizer, or a schedule of --optimizer)."""
    if config.kind == "optimizers":
        return {**OPTIMIZERS[option].train_fields, "schedule": "constant"}
    fields = {**OPTIMIZERS[config.optimizer].train_fields, "schedule": SCHEDULES[option].schedule}
    if option == "1cycle":
        # The cycle needs its length up front and must run whole: patience = length, best epoch kept.
        length = min(config.one_cycle_epochs, config.max_epochs)
        fields.update(epochs=length, patience=length)
    return fields


def data_config(config: StudyConfig) -> DataConfig:
    return DataConfig(data_dir=config.data_dir, subset=config.quick_subset if config.quick else None)


def cell_config(config: StudyConfig, cell: Cell, lr: float) -> RunConfig:
    """The run config of `cell` at `lr`: the exercise's net, the option, the budget, the cell's seed."""
    budget = {"epochs": config.max_epochs, "patience": BUDGET_PATIENCE}
    train = TrainConfig(
        lr=lr, batch_size=config.batch_size, seed=cell.seed, **{**budget, **train_fields(config, cell.option)}
    )
    return RunConfig(
        variant="elu",
        name=f"seed-{cell.seed}",
        out=str(config.folder / cell.option),
        data=data_config(config),
        model=ModelConfig(depth=config.depth, width=config.width),
        train=train,
        lr_search=LRSearchConfig(rule=config.rule, finder_steps=config.quick_finder_steps if config.quick else None),
    )


def range_test_config(config: StudyConfig, optimizer: str) -> RunConfig:
    """The LR range test's run config for optimizer option `optimizer`: a constant LR, the first seed."""
    base = cell_config(config, Cell(optimizer if config.kind == "optimizers" else "constant", config.seed), 1e-3)
    train = dataclasses.replace(base.train, **OPTIMIZERS[optimizer].train_fields, schedule="constant")
    return dataclasses.replace(base, name=f"lr-range-test-{optimizer}", out=str(config.folder), train=train)
