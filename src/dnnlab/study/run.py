"""`run_study`: what `dnnlab study optimizers|schedules` does in one worker.

The study is an Optuna study with a grid sampler over (option, seed) cells, shared through a
storage as `dnnlab search` shares its studies, and worked by the search's workers
(`dnnlab.search.worker.run_worker`): start the same command in several processes or on several
machines against one `--storage` and they fill the grid together; a dead worker's cell is
retried; a rerun trains only the missing cells. Each cell is a `dnnlab train` run
(`dnnlab.training.train.train`) in its own run folder. When the grid is complete, the worker
that sees it writes the report.

Test hook: cells get their data from `dnnlab.study.run.load_data(data_config)`; the CI worker
script (`tests/cli_worker.py`) replaces it with synthetic data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import optuna

from dnnlab.config import differences
from dnnlab.data import Splits, check_data_dir, load_data
from dnnlab.errors import DnnlabError
from dnnlab.search.report import load_study
from dnnlab.search.storage import default_storage_url, display_url, open_storage, storage_writes
from dnnlab.search.worker import DONE, check_slot, fail_dead_trials, run_worker, state_counts, worker_id
from dnnlab.study.cells import (
    all_cells,
    cell_config,
    claim,
    data_config,
    duplicate,
    grid_space,
    requeue_missing,
    still_owner,
)
from dnnlab.study.config import STUDY_DIR, StudyConfig, config_from_settings
from dnnlab.study.lr import option_lr
from dnnlab.study.report import write_report
from dnnlab.study.results import cell_attrs
from dnnlab.training.run_dir import INTERRUPTED
from dnnlab.training.run_lock import RunLockedError
from dnnlab.training.train import train

log = logging.getLogger(__name__)

SETTINGS_ATTR = "dnnlab_study"  # study user attribute: the settings every worker must share


@dataclass
class StudyOutcome:
    """What one worker's `run_study` returns: the study's state when this worker stopped."""

    study_name: str
    storage: str  # printable URL (password masked)
    cells_done: int
    cells: int
    counts: dict[str, int]  # trial state name -> count (failed ones include retried and duplicate trials)
    report_files: dict[str, Path]  # empty until every cell has finished
    wall_seconds: float


def storage_url(config: StudyConfig) -> str:
    return config.storage or default_storage_url(config.out, STUDY_DIR)


def open_grid_study(config: StudyConfig, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """Create the study or join it; refuse to join one started with settings that change what a cell computes."""
    study = optuna.create_study(
        study_name=config.study_name,
        storage=storage,
        direction="minimize",
        load_if_exists=True,
        sampler=optuna.samplers.GridSampler(grid_space(config)),
    )
    mine, theirs = config.shared_settings(), study.user_attrs.get(SETTINGS_ATTR)
    if theirs is None:
        if study.get_trials(deepcopy=False):
            raise DnnlabError(f"study {config.study_name!r} was not made by dnnlab study; pass another --study")
        study.set_user_attr(SETTINGS_ATTR, mine)
    elif theirs != mine:
        raise DnnlabError(
            f"study {config.study_name!r} was started with other settings ({'; '.join(differences(theirs, mine))}); "
            "pass the same flags as its other workers, or a new --study"
        )
    return study


def make_objective(config: StudyConfig, splits: Splits, n_cells: int) -> Callable[[optuna.Trial], float]:
    """Train the trial's cell; its best validation loss is the value, its figures go to user attributes."""

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker_id())
        check_slot(trial, n_cells)
        cell = claim(trial, config)
        lr = option_lr(trial.study, config, cell.option, splits)
        run = cell_config(config, cell, lr)
        log.info("cell %s (trial %d on %s): lr %.3g, into %s", cell, trial.number, worker_id(), lr, run.run_dir)
        keras.backend.clear_session()  # drop the previous cell's graphs: a worker trains many cells
        try:
            result = train(run, splits, verbose=0)
        except RunLockedError as exc:  # a trial that claimed the cell at the same instant trains it here
            duplicate(trial, cell, f"another process of this machine ({exc})", config)
        if result.status == INTERRUPTED:
            raise KeyboardInterrupt  # the trial fails; the same command again resumes the cell's run folder
        still_owner(trial, cell, config)
        metrics = result.metrics
        for key, value in cell_attrs(cell, metrics, result.history, config.max_epochs).items():
            trial.set_user_attr(key, value)
        accuracy = metrics.get("valid_accuracy")
        log.info(
            "cell %s: %s, best epoch %s/%s, valid acc %s",
            cell,
            metrics["status"],
            metrics.get("best_epoch"),
            metrics.get("epochs_run"),
            "-" if accuracy is None else f"{accuracy:.2%}",
        )
        loss = metrics.get("valid_loss")
        return float("inf") if loss is None else float(loss)

    return objective


def run_study(config: StudyConfig, splits: Splits | None = None) -> StudyOutcome:
    """Join (or create) the study and train cells until every cell has finished; then write the report.

    Args:
        config: the options, seeds, net and worker settings.
        splits: prepared data; loaded with `load_data` when some cell needs it (tests inject synthetic data).
    """
    started = time.perf_counter()
    if splits is None:
        check_data_dir(config.data_dir)  # before the storage is made
    url = storage_url(config)
    with storage_writes(url):
        study = open_grid_study(config, open_storage(url, config))
        n_cells = len(all_cells(config))
        fail_dead_trials(study)
        requeue_missing(study, config)
        done = sum(state_counts(study)[s] for s in DONE)
        if done < n_cells:
            log.info(
                "worker %s joins study %r in %s: %d of %d cells finished",
                worker_id(),
                study.study_name,
                display_url(url),
                done,
                n_cells,
            )
            splits = splits if splits is not None else load_data(data_config(config))
            # Poll every few seconds at most, so an idle worker notices the study is done promptly.
            poll = min(config.heartbeat_interval, 5)
            run_worker(study, make_objective(config, splits, n_cells), n_cells, config.timeout, poll_seconds=poll)
        counts = state_counts(study)
        done = sum(counts[s] for s in DONE)
        files = write_report(study, config) if done >= n_cells else {}
        return StudyOutcome(
            study_name=study.study_name,
            storage=display_url(url),
            cells_done=done,
            cells=n_cells,
            counts={state.name: n for state, n in counts.items()},
            report_files=files,
            wall_seconds=time.perf_counter() - started,
        )


def study_report(name: str, url: str, out: str) -> dict[str, Path]:
    """`dnnlab study-report`: (re)write the report of study `name` from its storage, finished or not."""
    study = load_study(name, url)
    settings = study.user_attrs.get(SETTINGS_ATTR)
    if settings is None:
        raise DnnlabError(f"study {name!r} in {display_url(url)} was not made by dnnlab study")
    return write_report(study, config_from_settings(settings, name, out))
