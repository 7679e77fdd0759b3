"""One search trial: its hyperparameters, trained as `dnnlab train` trains, reported epoch by epoch.

Each trial also logs its curves and, as an HParams session, its hyperparameters and result to
`<out>/search/<study>/tensorboard/trial-<number>/` (unless `--no-tensorboard`), so that
`tensorboard --logdir <out>/search/<study>/tensorboard` compares the trials in its HParams tab.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import optuna

from dnnlab.config import RunConfig
from dnnlab.data import Splits
from dnnlab.errors import DnnlabError
from dnnlab.models.build import build_for
from dnnlab.models.compile import compile_model, steps_per_epoch
from dnnlab.schedules.decay import performance_scheduler
from dnnlab.search.space import SearchSpace, suggest_params, trial_config
from dnnlab.search.storage import SEARCH_DIR
from dnnlab.search.study import BASELINE_ATTR
from dnnlab.search.trial_pruning import OptunaPruning
from dnnlab.search.worker import check_slot, worker_id
from dnnlab.training.callbacks import EpochTimer
from dnnlab.training.event_files import FAILURE, SUCCESS
from dnnlab.training.history import best_epoch_index
from dnnlab.training.tensorboard import TensorBoardLogger
from dnnlab.training.train import fit_model

log = logging.getLogger(__name__)

TENSORBOARD_DIR = "tensorboard"  # in the study's folder: one logdir per trial


def trial_logdir(out: str | Path, study_name: str, number: int) -> Path:
    return Path(out) / SEARCH_DIR / study_name / TENSORBOARD_DIR / f"trial-{number}"


def trial_logger(config: RunConfig, study_name: str, number: int, params: dict[str, Any]) -> TensorBoardLogger | None:
    """Trial `number`'s TensorBoard logger, its searched `params` and seed as HParams; None with `--no-tensorboard`."""
    if not config.tensorboard:
        return None
    hparams = {**params, "seed": config.train.seed}
    return TensorBoardLogger(trial_logdir(config.out, study_name, number), hparams=hparams, trial_id=f"trial-{number}")


def fit_trial(
    config: RunConfig,
    splits: Splits,
    trial: optuna.Trial,
    prunable: bool = True,
    tensorboard: TensorBoardLogger | None = None,
) -> dict[str, list[float]]:
    """Train `config` as `dnnlab train` does (same model, optimizer, schedule, early stopping), reporting each
    epoch.

    `prunable=False` (the baseline trial) reports every epoch but is never pruned. `tensorboard`
    logs every epoch, the pruned one included.

    No run folder: a search keeps its trials in the study; `best.json` retrains the winner fully.
    """
    keras.backend.clear_session()  # drop the previous trial's graphs; a worker runs many trials
    keras.utils.set_random_seed(config.train.seed)
    model = build_for(config, splits)
    compile_model(model, config.train, config.lr, steps_per_epoch(config, splits))  # its schedule, if any
    plateau = performance_scheduler(config.train.schedule)
    callbacks = [
        EpochTimer(),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.train.patience),
        *([plateau] if plateau is not None else []),
        *([tensorboard] if tensorboard is not None else []),
        # No TerminateOnNaN: a per-batch check makes Keras wait for every batch's loss
        # (docs/benchmarks/issue-3.md); OptunaPruning prunes a non-finite val_loss at epoch end.
        OptunaPruning(trial, monitor="val_loss", prunable=prunable),
    ]
    return fit_model(model, config, splits, callbacks, verbose=0)


def make_objective(
    base: RunConfig, space: SearchSpace, splits: Splits, study_name: str, n_trials: int
) -> Callable[[optuna.Trial], float]:
    """The objective: the trial's best validation loss; accuracy, epochs and seed go to user attributes."""

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker_id())
        check_slot(trial, n_trials)
        params = suggest_params(trial, space)
        config = trial_config(base, params, trial.number, study_name)
        trial.set_user_attr("seed", config.train.seed)
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
        log.info("trial %d on %s: %s", trial.number, trial.user_attrs["worker"], shown)
        tensorboard = trial_logger(config, study_name, trial.number, params)
        status, scores = FAILURE, None  # a pruned or diverged trial: HParams has no "pruned" status
        try:
            # The baseline runs to its end: "never worse than the default" needs the default's value.
            history = fit_trial(config, splits, trial, BASELINE_ATTR not in trial.user_attrs, tensorboard)
            best = best_epoch_index(history)
            status, scores = (
                SUCCESS,
                {"valid_loss": history["val_loss"][best], "valid_accuracy": history["val_accuracy"][best]},
            )
        except DnnlabError as exc:
            raise optuna.TrialPruned(str(exc)) from None
        finally:
            if tensorboard is not None:
                tensorboard.finish(status, scores)
        trial.set_user_attr("valid_accuracy", history["val_accuracy"][best])
        trial.set_user_attr("best_epoch", best + 1)
        trial.set_user_attr("epochs_run", len(history["val_loss"]))
        return history["val_loss"][best]

    return objective
