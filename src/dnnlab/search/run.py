"""`run_search`: what `dnnlab search` does in one worker.

Test hook: trials get their data from `dnnlab.search.run.load_data(data_config)`; the CI worker
script (`tests/cli_worker.py`) replaces it with synthetic data so that the whole CLI path runs fast.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from optuna.trial import FrozenTrial, TrialState

from dnnlab.config import RunConfig, check_seeds
from dnnlab.data import Splits, check_data_dir, load_data
from dnnlab.search.config import SearchConfig
from dnnlab.search.space import baseline_params, centres_on_range_test, resolve_space, searched_names
from dnnlab.search.storage import SEARCH_DIR, default_storage_url, display_url, open_storage, storage_writes
from dnnlab.search.study import lr_auto, open_study, stored_settings, study_name
from dnnlab.search.trials import make_objective
from dnnlab.search.worker import DONE, fail_dead_trials, run_worker, state_counts, worker_id

log = logging.getLogger(__name__)


@dataclass
class SearchOutcome:
    """What one worker's `run_search` returns: the study's state when this worker stopped."""

    study_name: str
    storage: str  # printable URL (password masked)
    counts: dict[str, int]  # trial state name -> count over the whole study
    best: FrozenTrial | None
    wall_seconds: float


def run_search(config: RunConfig, search: SearchConfig, splits: Splits | None = None) -> SearchOutcome:
    """Join (or create) the study and work on it until it has `search.trials` finished trials.

    Args:
        config: the base run config (variant, epochs, subset, seed, ...); each trial varies the
            searched fields and uses seed `config.train.seed + trial number`.
        search: study name, storage, trial budget, space and heartbeat settings.
        splits: prepared data; loaded with `load_data(config.data)` when omitted and needed.
    """
    started = time.perf_counter()
    # Refused before any storage is made: a space that cannot work, trial seeds past the last, no data.
    searched_names(config, search)
    check_seeds(config.train.seed, search.trials)  # trial k uses seed --seed + k
    if splits is None:
        check_data_dir(config.data.data_dir)
    url = search.storage or default_storage_url(config.out)
    with storage_writes(url):
        storage = open_storage(url, search)
        suggestion = auto_lr = None
        if centres_on_range_test(config, search):
            theirs = stored_settings(storage, study_name(config, search))
            suggestion = theirs.get("lr_suggestion") if theirs else None
            if suggestion is None:
                splits = splits if splits is not None else load_data(config.data)
                folder = Path(config.out) / SEARCH_DIR / study_name(config, search)
                found = lr_auto(config, splits, folder, for_baseline=search.baseline_trial)
                suggestion, auto_lr = found.suggestion, found.chosen
        space = resolve_space(config, search, suggestion)
        baseline = baseline_params(config, space, auto_lr) if search.baseline_trial else None
        study, space = open_study(config, search, space, storage, suggestion, baseline)
        if space.lr is not None:
            log.info("LR range %.3g .. %.3g", *space.lr)
        fail_dead_trials(study)
        counts = state_counts(study)
        done = sum(counts[s] for s in DONE)
        if done < search.trials:
            log.info(
                "worker %s joins study %r in %s: %d of %d trials finished",
                worker_id(),
                study.study_name,
                display_url(url),
                done,
                search.trials,
            )
            splits = splits if splits is not None else load_data(config.data)
            objective = make_objective(config, space, splits, study.study_name, search.trials)
            # Poll every few seconds at most, so an idle worker notices the study is done promptly.
            poll = min(search.heartbeat_interval, 5)
            run_worker(study, objective, search.trials, search.timeout, poll_seconds=poll)
        counts = state_counts(study)
        completed = counts[TrialState.COMPLETE] > 0
        return SearchOutcome(
            study_name=study.study_name,
            storage=display_url(url),
            counts={state.name: n for state, n in counts.items()},
            best=study.best_trial if completed else None,
            wall_seconds=time.perf_counter() - started,
        )
