"""Creating or joining a study, and the settings every worker of a study must share."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from dnnlab.config import RunConfig, differences, without_bookkeeping
from dnnlab.data import Splits
from dnnlab.errors import DnnlabError
from dnnlab.lr.finder import lr_find
from dnnlab.lr.search import search_lr
from dnnlab.search.config import SearchConfig
from dnnlab.search.space import SearchSpace

log = logging.getLogger(__name__)

SETTINGS_WAIT_SECONDS = 30  # how long a joining worker waits for the study's creator to write its settings
BASELINE_ATTR = "baseline"  # trial user attribute: how the baseline trial's values were chosen
SETTINGS_ATTR = "dnnlab_settings"  # study user attribute: the base config and space every worker must share


@dataclass(frozen=True)
class LRAuto:
    """The LR range test's suggestion for the base config and, when asked for, the LR `--lr auto` chose."""

    suggestion: float  # the LR range's centre
    chosen: float | None  # the baseline trial's LR


def lr_auto(config: RunConfig, splits: Splits, folder: Path, for_baseline: bool) -> LRAuto:
    """Run the LR range test on the base config (its model and batch size), and `--lr auto`'s
    confirming search after it when `for_baseline`; keep their files in `folder`."""
    also = ", then --lr auto's confirming search for the baseline trial" if for_baseline else ""
    log.info(
        "centring the LR range on an LR range test (%s rule)%s; other workers of this study reuse the result",
        config.lr_search.rule,
        also,
    )
    if not for_baseline:
        return LRAuto(suggestion=lr_find(config, splits, folder).suggestion, chosen=None)
    found = search_lr(config, splits, folder)
    return LRAuto(suggestion=found.suggestion, chosen=found.chosen_lr)


def shared_settings(config: RunConfig, space: SearchSpace, suggestion: float | None = None) -> dict[str, Any]:
    """What every worker of a study must agree on: the base config minus machine-local paths and
    switches (`BOOKKEEPING_FIELDS`), the space, and the range test's suggestion when it centred the LR range."""
    return {"config": without_bookkeeping(config.to_dict()), "space": space.to_dict(), "lr_suggestion": suggestion}


def stored_settings(storage: optuna.storages.BaseStorage, name: str) -> dict[str, Any] | None:
    """The shared settings of study `name`, or None when there is no such study yet."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id).get(SETTINGS_ATTR)


def base_config_of(study: optuna.Study) -> RunConfig:
    """The base config stored with the study (machine-local fields at their defaults)."""
    settings = study.user_attrs.get(SETTINGS_ATTR)
    if settings is None:
        raise DnnlabError(f"study {study.study_name!r} was not created by dnnlab search")
    return RunConfig.from_dict(settings["config"])


def open_study(
    config: RunConfig,
    search: SearchConfig,
    space: SearchSpace,
    storage: optuna.storages.BaseStorage,
    suggestion: float | None = None,
    baseline: tuple[dict[str, Any] | None, str] | None = None,
) -> tuple[optuna.Study, SearchSpace]:
    """Create the study or join it; refuse to join one made with a different config or space.

    A new study gets `baseline` (`baseline_params`'s answer) queued as its first trial.

    Returns the study and the space to sample: `space`, or, when both this worker and the
    study's creator centred the LR range on a range test (`suggestion`), the creator's range,
    so that workers started together, whose range tests may differ in the last digits on
    different machines, all sample one range.
    """
    name = study_name(config, search)
    study, created = _create_or_load(name, search, storage)
    mine = shared_settings(config, space, suggestion)
    theirs = None if created else _settings_once_written(study)
    if theirs is None:
        if baseline is not None:
            params, how = baseline
            if params is None:
                log.info("no baseline trial: %s", how)
            else:
                # Queued before the settings are written, so no worker that joins runs a trial before it.
                study.enqueue_trial(params, user_attrs={BASELINE_ATTR: how}, skip_if_exists=True)
        study.set_user_attr(SETTINGS_ATTR, mine)
        return study, space
    if suggestion is not None and theirs.get("lr_suggestion") is not None:
        space = dataclasses.replace(space, lr=tuple(theirs["space"]["lr"]))
        mine = shared_settings(config, space, theirs["lr_suggestion"])
    if theirs != mine:
        raise DnnlabError(
            f"study {name!r} was started with other settings ({'; '.join(differences(theirs, mine))}); "
            "pass the same flags as its other workers, or a new --study"
        )
    return study, space


def _create_or_load(name: str, search: SearchConfig, storage: optuna.storages.BaseStorage) -> tuple[optuna.Study, bool]:
    """The study, and whether this worker created it: the database's unique study name makes exactly
    one of the workers started together the creator, the one that queues the baseline trial."""
    options: dict[str, Any] = {
        # constant_liar: a running trial counts as a bad result, so parallel workers spread out.
        "sampler": optuna.samplers.TPESampler(constant_liar=True),
        "pruner": optuna.pruners.PercentilePruner(  # at 50, exactly Optuna's MedianPruner
            search.prune_percentile,
            n_startup_trials=search.prune_startup_trials,
            n_warmup_steps=search.prune_warmup_epochs,
        ),
    }
    try:
        return optuna.create_study(study_name=name, storage=storage, direction="minimize", **options), True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(study_name=name, storage=storage, **options), False


def _settings_once_written(study: optuna.Study) -> dict[str, Any] | None:
    """A joined study's settings, waiting briefly for a creator that started at the same instant.

    None when they never come: a study made outside dnnlab, which this worker then adopts.
    """
    deadline = time.monotonic() + SETTINGS_WAIT_SECONDS
    while True:
        settings = study.user_attrs.get(SETTINGS_ATTR)
        if settings is not None or study.get_trials(deepcopy=False) or time.monotonic() > deadline:
            return settings
        time.sleep(0.2)


def study_name(config: RunConfig, search: SearchConfig) -> str:
    return search.study or config.variant
