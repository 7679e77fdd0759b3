"""`dnnlab search`: many short trials of one variant in an Optuna study that any number of workers share.

Workers coordinate only through the study's storage, as Optuna is designed to; dnnlab runs no
scheduler. Start `dnnlab search` with the same `--study` and `--storage` on as many machines (or
terminals) as you like and they fill one study together.

Storage. The default is SQLite under `<out>/search/`, not Optuna's JournalFileBackend, because a
killed worker's trial must not stay RUNNING forever: Optuna detects dead workers by storage
heartbeats, and only its RDB storage implements them (JournalStorage has no heartbeat). SQLite
serializes writers, which is fine for a few local processes whose writes are a handful per epoch;
a busy timeout makes them wait instead of failing. Across machines pass a server URL
(`--storage postgresql://user@host/db`).

Exactly `--trials` finished trials. Optuna's MaxTrialsCallback stops a worker only after its
trial ends, so with the default states m workers overshoot by up to m - 1 trials, and a rerun of
a full study still adds one trial per worker (optuna/optuna#3518). Hence:
  * the callback counts claimed slots (complete, pruned, running and waiting trials);
  * a worker checks the study before it starts, and waits instead of starting a trial when all
    slots are claimed by live trials, so that it can take over a dead worker's retried trial;
  * a trial that still finds all slots taken by trials numbered before it (two workers asked at
    the same instant) is not run: it is marked FAIL with user attribute `surplus` in
    milliseconds. Trial numbers are assigned under a lock on the study row, so the check is exact.

Baseline. A new study's first trial trains the base config, as `dnnlab train` would without a
search: with `--lr` its LR, else the LR `--lr auto` picks (range test plus confirming search),
which the workers compute anyway to centre the LR range. Its seed is the base seed, so it is
the same run as `dnnlab train --lr auto`. The study's best is then never worse than the default
on the study's own measurements; search-report marks the baseline trial.

Test hook: trials get their data from `dnnlab.search.load_data(config)`; the CI worker script
(`tests/search_worker.py`) replaces it with synthetic data so that the whole CLI path runs fast.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import socket
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState

from dnnlab.config import BATCH_SIZES, RunConfig, SearchConfig
from dnnlab.data import Splits
from dnnlab.errors import DnnlabError
from dnnlab.lr_finder import lr_find
from dnnlab.lr_search import search_lr
from dnnlab.pruning import OptunaPruning
from dnnlab.train import best_epoch_index, build_for, compile_model, fit_model, load_data, steps_in_fit

SEARCH_DIR = "search"  # under RunConfig.out
SQLITE_FILE = "optuna.db"
SQLITE_BUSY_TIMEOUT = 60  # seconds a writer waits for SQLite's lock before giving up
STORAGE_ATTEMPTS = 4  # tries to open a storage whose tables another worker may be creating right now
BASELINE_ATTR = "baseline"  # trial user attribute: how the baseline trial's values were chosen
SETTINGS_ATTR = "dnnlab_settings"  # study user attribute: the base config and space every worker must share
# Fields that may differ between machines of one study: where the data and outputs live.
MACHINE_LOCAL = {"top": ("name", "out"), "data": ("data_dir", "download")}
DONE = (TrialState.COMPLETE, TrialState.PRUNED)  # "finished trials" in the sense of --trials
CLAIMED = (*DONE, TrialState.RUNNING, TrialState.WAITING)  # trials that hold one of the --trials slots


class SurplusTrial(Exception):
    """Raised by the objective for a trial created after every slot was claimed; it is not run."""


@dataclass(frozen=True)
class SearchSpace:
    """What a trial may vary; None: that hyperparameter is fixed to the base config's value."""

    lr: tuple[float, float] | None  # log-uniform bounds
    dropout_rate: tuple[float, float] | None  # uniform bounds
    batch_sizes: tuple[int, ...] | None  # categorical choices

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))  # tuples as lists, as stored in the study


def centres_on_range_test(config: RunConfig, search: SearchConfig) -> bool:
    """Whether the LR range is centred on the LR range test's suggestion.

    It is when the LR is searched, no `--lr` number gives a centre, and not both bounds are
    given: the range test measures where this model trains on this data, where a textbook LR
    only fits the book's setup.
    """
    bounded = search.lr_low is not None and search.lr_high is not None
    return "lr" in searched_names(config, search) and not bounded and not isinstance(config.train.lr, float | int)


def searched_names(config: RunConfig, search: SearchConfig) -> tuple[str, ...]:
    """`--space`, or lr and batch plus dropout when the model has it; a clear error for a space that cannot work."""
    has_dropout = config.model.dropout != "none"
    names = search.space_names or ("lr", "batch", *(("dropout",) if has_dropout else ()))
    if "dropout" in names and not has_dropout:
        raise DnnlabError(
            f"--space dropout: the {config.variant} model has no dropout layer; "
            "use --variant alpha-dropout or pass --dropout alpha"
        )
    if "lr" not in names and not isinstance(config.train.lr, float | int | None):
        raise DnnlabError("--lr auto needs lr in --space (or pass an LR number to keep it fixed)")
    return names


def resolve_space(config: RunConfig, search: SearchConfig, suggestion: float | None = None) -> SearchSpace:
    """The search space for `config`'s variant: the bounds of each of `searched_names`.

    Args:
        suggestion: the LR range test's suggestion, the LR range's centre when
            `centres_on_range_test` (otherwise the centre is `--lr`, or both bounds are given).
    """
    names = searched_names(config, search)
    lr = None
    if search.lr_low is not None and search.lr_high is not None:
        lr = (search.lr_low, search.lr_high)
    elif "lr" in names:
        center = config.train.lr if isinstance(config.train.lr, float | int) else suggestion
        if center is None:
            raise DnnlabError("the LR range needs a centre: pass --lr, or --lr-low and --lr-high")
        low = search.lr_low if search.lr_low is not None else center / search.lr_span
        high = search.lr_high if search.lr_high is not None else center * search.lr_span
        if not low < high:
            raise DnnlabError(f"the LR range [{low:g}, {high:g}] is empty; pass both --lr-low and --lr-high")
        lr = (float(low), float(high))
    return SearchSpace(
        lr=lr,
        dropout_rate=(search.dropout_low, search.dropout_high) if "dropout" in names else None,
        batch_sizes=BATCH_SIZES if "batch" in names else None,
    )


@dataclass(frozen=True)
class LRAuto:
    """The LR range test's suggestion for the base config and, when asked for, the LR `--lr auto` chose."""

    suggestion: float  # the LR range's centre
    chosen: float | None  # the baseline trial's LR


def lr_auto(config: RunConfig, splits: Splits, folder: Path, for_baseline: bool) -> LRAuto:
    """Run the LR range test on the base config (its model and batch size), and `--lr auto`'s
    confirming search after it when `for_baseline`; keep their files in `folder`."""
    also = ", then --lr auto's confirming search for the baseline trial" if for_baseline else ""
    print(f"dnnlab: centring the LR range on an LR range test ({config.lr_search.rule} rule){also}; "
          "other workers of this study reuse the result", flush=True)
    if not for_baseline:
        return LRAuto(suggestion=lr_find(config, splits, folder).suggestion, chosen=None)
    found = search_lr(config, splits, folder)
    return LRAuto(suggestion=found.suggestion, chosen=found.chosen_lr)


def baseline_params(config: RunConfig, space: SearchSpace, auto_lr: float | None) -> tuple[dict[str, Any] | None, str]:
    """The searched hyperparameters of the base config, and how they were chosen.

    Returns None and the reason when the base config has no value for a searched hyperparameter
    (the LR is neither a number nor picked by `--lr auto`) or its value lies outside the space.
    """
    numeric = isinstance(config.train.lr, float | int)
    lr = config.train.lr if numeric else auto_lr
    params: dict[str, Any] = {}
    if space.lr is not None:
        if lr is None:
            return None, "the base config has no LR (pass --lr, or leave a bound out to centre on a range test)"
        params["lr"] = float(lr)
    if space.batch_sizes is not None:
        params["batch_size"] = config.train.batch_size
    if space.dropout_rate is not None:
        params["dropout_rate"] = config.model.dropout_rate
    outside = [f"{name} {value:g}" for name, value in params.items() if not _inside(space, name, value)]
    if outside:
        return None, f"the base config's {', '.join(outside)} lies outside the search space"
    return params, "the base config" if numeric or "lr" not in params else "the base config with --lr auto's LR"


def _inside(space: SearchSpace, name: str, value: float) -> bool:
    if name == "batch_size":
        return value in space.batch_sizes
    low, high = space.lr if name == "lr" else space.dropout_rate
    return low <= value <= high


def suggest_params(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """Ask `trial` for each searched hyperparameter; the names are the config fields they set."""
    params: dict[str, Any] = {}
    if space.lr is not None:
        params["lr"] = trial.suggest_float("lr", *space.lr, log=True)
    if space.batch_sizes is not None:
        params["batch_size"] = trial.suggest_categorical("batch_size", list(space.batch_sizes))
    if space.dropout_rate is not None:
        params["dropout_rate"] = trial.suggest_float("dropout_rate", *space.dropout_rate)
    return params


def trial_config(base: RunConfig, params: dict[str, Any], number: int, study_name: str) -> RunConfig:
    """The run config of trial `number`: `base` with the trial's hyperparameters and seed base + number."""
    train = dataclasses.replace(
        base.train,
        lr=params.get("lr", base.train.lr),
        batch_size=params.get("batch_size", base.train.batch_size),
        seed=base.train.seed + number,
    )
    model = dataclasses.replace(base.model, dropout_rate=params.get("dropout_rate", base.model.dropout_rate))
    return dataclasses.replace(base, name=f"{study_name}-trial{number}", train=train, model=model)


def shared_settings(config: RunConfig, space: SearchSpace, suggestion: float | None = None) -> dict[str, Any]:
    """What every worker of a study must agree on: the base config minus machine-local paths, the
    space, and the range test's suggestion when it centred the LR range."""
    raw = config.to_dict()
    for key in MACHINE_LOCAL["top"]:
        raw.pop(key)
    for key in MACHINE_LOCAL["data"]:
        raw["data"].pop(key)
    return {"config": raw, "space": space.to_dict(), "lr_suggestion": suggestion}


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


def default_storage_url(out: str | Path) -> str:
    return f"sqlite:///{(Path(out) / SEARCH_DIR / SQLITE_FILE).resolve()}"


def display_url(url: str) -> str:
    """`url` with any password masked, for printing."""
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def _with_driver(url: str) -> str:
    # A bare postgresql:// picks psycopg2 or psycopg 3 depending on the SQLAlchemy version;
    # dnnlab's `postgres` extra installs psycopg 3, so name it.
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url[len(bare):]
    return url


def open_storage(url: str, search: SearchConfig | None = None) -> optuna.storages.RDBStorage:
    """An RDB storage at `url`; with `search`, heartbeats on and dead workers' trials retried."""
    import sqlalchemy

    given, url = url, _with_driver(url)
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError as exc:
        raise _storage_error(given, exc) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine_kwargs: dict[str, Any] = (
        {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats are experimental in Optuna 5
        heartbeat: dict[str, Any] = {} if search is None else {
            "heartbeat_interval": search.heartbeat_interval,
            "grace_period": search.grace_period,
            "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=search.max_retry
            ),
        }
        for attempt in range(1, STORAGE_ATTEMPTS + 1):
            try:
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)
            except sqlalchemy.exc.SQLAlchemyError as exc:
                if attempt == STORAGE_ATTEMPTS or not _lost_table_creation_race(exc):
                    raise _storage_error(given, exc) from None
                time.sleep(random.uniform(0.5, 1.5) * attempt)
            except (ImportError, ValueError, optuna.exceptions.StorageInternalError) as exc:
                raise _storage_error(given, exc) from None
    raise AssertionError("unreachable")


def _lost_table_creation_race(exc: Exception) -> bool:
    """Workers starting together on an empty database race to create Optuna's tables (CREATE TABLE
    and CREATE TYPE are check-then-create); the loser finds them on a second try."""
    import sqlalchemy

    if isinstance(exc, sqlalchemy.exc.IntegrityError | sqlalchemy.exc.ProgrammingError):
        return True
    message = str(exc).lower()
    return isinstance(exc, sqlalchemy.exc.OperationalError) and ("already exists" in message or "locked" in message)


def _storage_error(url: str, exc: Exception) -> DnnlabError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hint = ("; install the database driver for this URL (PostgreSQL: pip install 'dnnlab[postgres]')"
            if isinstance(exc, ImportError) else "")
    return DnnlabError(f"cannot open storage {display_url(url)}: {reason}{hint}")


def open_study(config: RunConfig, search: SearchConfig, space: SearchSpace,
               storage: optuna.storages.BaseStorage, suggestion: float | None = None,
               baseline: tuple[dict[str, Any] | None, str] | None = None) -> tuple[optuna.Study, SearchSpace]:
    """Create the study or join it; refuse to join one made with a different config or space.

    A new study gets `baseline` (`baseline_params`'s answer) queued as its first trial.

    Returns the study and the space to sample: `space`, or, when both this worker and the
    study's creator centred the LR range on a range test (`suggestion`), the creator's range,
    so that workers started together, whose range tests may differ in the last digits on
    different machines, all sample one range.
    """
    name = study_name(config, search)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction="minimize",
        load_if_exists=True,
        # constant_liar: a running trial counts as a bad result, so parallel workers spread out.
        sampler=optuna.samplers.TPESampler(constant_liar=True),
        pruner=optuna.pruners.PercentilePruner(  # at 50, exactly Optuna's MedianPruner
            search.prune_percentile, n_startup_trials=search.prune_startup_trials,
            n_warmup_steps=search.prune_warmup_epochs,
        ),
    )
    mine = shared_settings(config, space, suggestion)
    theirs = study.user_attrs.get(SETTINGS_ATTR)
    if theirs is None:
        if baseline is not None:
            params, how = baseline
            if params is None:
                print(f"dnnlab: no baseline trial: {how}", flush=True)
            else:
                # Queued before the settings are written, so no worker that joins runs a trial before it.
                # skip_if_exists: a worker that started at the same instant may have queued it already.
                study.enqueue_trial(params, user_attrs={BASELINE_ATTR: how}, skip_if_exists=True)
        study.set_user_attr(SETTINGS_ATTR, mine)
        return study, space
    if suggestion is not None and theirs.get("lr_suggestion") is not None:
        space = dataclasses.replace(space, lr=tuple(theirs["space"]["lr"]))
        mine = shared_settings(config, space, theirs["lr_suggestion"])
    if theirs != mine:
        differ = sorted(_differences(theirs, mine))
        raise DnnlabError(
            f"study {name!r} was started with other settings ({', '.join(differ)}); "
            "pass the same flags as its other workers, or a new --study"
        )
    return study, space


def study_name(config: RunConfig, search: SearchConfig) -> str:
    return search.study or config.variant


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    keys = set(a) | set(b)
    found = []
    for key in keys:
        left, right = a.get(key), b.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            found += _differences(left, right, f"{prefix}{key}.")
        elif left != right:
            found.append(f"{prefix}{key}: {left} vs {right}")
    return found


def state_counts(study: optuna.Study) -> Counter:
    return Counter(t.state for t in study.get_trials(deepcopy=False))


def claimed_before(study: optuna.Study, number: int) -> int:
    """How many trials numbered below `number` hold a slot."""
    return sum(t.number < number for t in study.get_trials(deepcopy=False, states=CLAIMED))


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fit_trial(config: RunConfig, splits: Splits, trial: optuna.Trial, prunable: bool = True) -> dict[str, list[float]]:
    """Train `config` as `dnnlab train` does (same model, optimizer, early stopping), reporting each epoch.

    `prunable=False` (the baseline trial) reports every epoch but is never pruned.

    No run folder: a search keeps its trials in the study; `best.json` retrains the winner fully.
    """
    keras.backend.clear_session()  # drop the previous trial's graphs; a worker runs many trials
    keras.utils.set_random_seed(config.train.seed)
    model = build_for(config, splits)
    compile_model(model, config.train, config.lr, steps_in_fit(config, splits))  # the 1cycle, when scheduled
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.train.patience),
        # No TerminateOnNaN: a per-batch check makes Keras wait for every batch's loss
        # (docs/benchmarks/issue-3.md); OptunaPruning prunes a non-finite val_loss at epoch end.
        OptunaPruning(trial, monitor="val_loss", prunable=prunable),
    ]
    return fit_model(model, config, splits, callbacks, verbose=0)


def make_objective(base: RunConfig, space: SearchSpace, splits: Splits, study_name: str,
                   n_trials: int) -> Callable[[optuna.Trial], float]:
    """The objective: the trial's best validation loss; accuracy, epochs and seed go to user attributes."""

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker_id())
        if claimed_before(trial.study, trial.number) >= n_trials:
            trial.set_user_attr("surplus", True)
            trial.study.stop()
            raise SurplusTrial(f"all {n_trials} trials were already claimed by other workers; not run")
        params = suggest_params(trial, space)
        config = trial_config(base, params, trial.number, study_name)
        trial.set_user_attr("seed", config.train.seed)
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
        print(f"dnnlab: trial {trial.number} on {trial.user_attrs['worker']}: {shown}", flush=True)
        # The baseline runs to its end: "never worse than the default" needs the default's value.
        history = fit_trial(config, splits, trial, prunable=BASELINE_ATTR not in trial.user_attrs)
        try:
            best = best_epoch_index(history)
        except DnnlabError as exc:
            raise optuna.TrialPruned(str(exc)) from None
        trial.set_user_attr("valid_accuracy", history["val_accuracy"][best])
        trial.set_user_attr("best_epoch", best + 1)
        trial.set_user_attr("epochs_run", len(history["val_loss"]))
        return history["val_loss"][best]

    return objective


def fail_dead_trials(study: optuna.Study) -> None:
    """Fail trials whose worker stopped heart-beating; the storage's callback queues their retries."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def run_worker(study: optuna.Study, objective: Callable[[optuna.Trial], float], n_trials: int,
               timeout: float | None = None, poll_seconds: float = 1.0) -> None:
    """Run trials until the study has `n_trials` finished ones (or `timeout` seconds passed).

    When every slot is held by a running trial, the worker waits rather than exits, so that a
    dead worker's trial, failed by heartbeat and queued again, still gets run.
    """
    cap = optuna.study.MaxTrialsCallback(n_trials, states=CLAIMED)
    deadline = None if timeout is None else time.monotonic() + timeout
    started: list[int] = []
    waiting = False

    def tracked(trial: optuna.Trial) -> float:
        started.append(trial.number)
        return objective(trial)

    while True:
        fail_dead_trials(study)
        counts = state_counts(study)
        done = sum(counts[s] for s in DONE)
        if done >= n_trials:
            return
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        if not (counts[TrialState.WAITING] or done + counts[TrialState.RUNNING] < n_trials):
            if not waiting:
                print(f"dnnlab: all {n_trials} trials are claimed; waiting for the last ones, to rerun them "
                      "if their worker dies", flush=True)
            waiting = True
            time.sleep(poll_seconds)
            continue
        waiting = False
        try:
            study.optimize(tracked, timeout=remaining, callbacks=[cap], catch=(SurplusTrial,), gc_after_trial=True)
        except (ValueError, AssertionError):
            # Optuna cannot record a result for a trial that another worker already failed because
            # its heartbeat stopped (this process stalled longer than the grace period): it raises
            # ValueError, or AssertionError when the objective had returned normally (Optuna 5.0).
            # That trial was queued again; this worker drops its result and carries on.
            if not started or trial_state(study, started[-1]) != TrialState.FAIL:
                raise
            print(f"dnnlab: trial {started[-1]} was declared dead by another worker (no heartbeat within the "
                  "grace period) and queued again; dropping this worker's result. If this machine is "
                  "overloaded, raise --grace-period.", flush=True)


def trial_state(study: optuna.Study, number: int) -> TrialState:
    return next(t.state for t in study.get_trials(deepcopy=False) if t.number == number)


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
        splits: prepared data; loaded with `load_data(config)` when omitted and needed.
    """
    started = time.perf_counter()
    searched_names(config, search)  # a space that cannot work is refused before any storage is made
    url = search.storage or default_storage_url(config.out)
    storage = open_storage(url, search)
    suggestion = auto_lr = None
    if centres_on_range_test(config, search):
        theirs = stored_settings(storage, study_name(config, search))
        suggestion = theirs.get("lr_suggestion") if theirs else None
        if suggestion is None:
            splits = splits if splits is not None else load_data(config)
            folder = Path(config.out) / SEARCH_DIR / study_name(config, search)
            found = lr_auto(config, splits, folder, for_baseline=search.baseline_trial)
            suggestion, auto_lr = found.suggestion, found.chosen
    space = resolve_space(config, search, suggestion)
    baseline = baseline_params(config, space, auto_lr) if search.baseline_trial else None
    study, space = open_study(config, search, space, storage, suggestion, baseline)
    if space.lr is not None:
        print(f"dnnlab: LR range {space.lr[0]:.3g} .. {space.lr[1]:.3g}", flush=True)
    fail_dead_trials(study)
    counts = state_counts(study)
    done = sum(counts[s] for s in DONE)
    if done < search.trials:
        print(f"dnnlab: worker {worker_id()} joins study {study.study_name!r} in {display_url(url)}: "
              f"{done} of {search.trials} trials finished", flush=True)
        splits = splits if splits is not None else load_data(config)
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
