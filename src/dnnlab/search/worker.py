"""Workers that fill one study together: `run_worker` runs trials until the study has exactly `n` finished ones.

Exactly `--trials` finished trials. Optuna's MaxTrialsCallback stops a worker only after its
trial ends, so with the default states m workers overshoot by up to m - 1 trials, and a rerun of
a full study still adds one trial per worker (optuna/optuna#3518). Hence:
  * the callback counts claimed slots (complete, pruned, running and waiting trials);
  * a worker checks the study before it starts, and waits instead of starting a trial when all
    slots are claimed by live trials, so that it can take over a dead worker's retried trial;
  * a trial that still finds all slots taken by trials numbered before it (two workers asked at
    the same instant) is not run: `check_slot` marks it with user attribute `surplus` and raises
    `SurplusTrial`, which the worker records as a failed trial. Trial numbers are assigned under
    a lock on the study row, so the check is exact.

Nothing here knows what a trial trains: the objective is the caller's.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import warnings
from collections import Counter
from collections.abc import Callable

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

log = logging.getLogger(__name__)

DONE = (TrialState.COMPLETE, TrialState.PRUNED)  # "finished trials" in the sense of --trials
CLAIMED = (*DONE, TrialState.RUNNING, TrialState.WAITING)  # trials that hold one of the --trials slots


class SurplusTrial(Exception):
    """Raised by the objective for a trial created after every slot was claimed; it is not run."""


def check_slot(trial: optuna.Trial, n_trials: int) -> None:
    """Raise `SurplusTrial` (and stop this worker's `optimize`) when `trial` holds none of the
    `n_trials` slots: the objective's first call, before it trains anything."""
    if claimed_before(trial.study, trial.number) >= n_trials:
        trial.set_user_attr("surplus", True)
        trial.study.stop()
        raise SurplusTrial(f"all {n_trials} trials were already claimed by other workers; not run")


def state_counts(study: optuna.Study) -> Counter:
    return Counter(t.state for t in study.get_trials(deepcopy=False))


def claimed_before(study: optuna.Study, number: int) -> int:
    """How many trials numbered below `number` hold a slot."""
    return sum(t.number < number for t in study.get_trials(deepcopy=False, states=CLAIMED))


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_dead_trials(study: optuna.Study) -> None:
    """Fail trials whose worker stopped heart-beating; the storage's callback queues their retries."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def run_worker(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    timeout: float | None = None,
    poll_seconds: float = 1.0,
) -> None:
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
                log.info(
                    "all %d trials are claimed; waiting for the last ones, to rerun them if their worker dies", n_trials
                )
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
            log.info(
                "trial %d was declared dead by another worker (no heartbeat within the grace period) and "
                "queued again; dropping this worker's result. If this machine is overloaded, raise --grace-period.",
                started[-1],
            )


def trial_state(study: optuna.Study, number: int) -> TrialState:
    return next(t.state for t in study.get_trials(deepcopy=False) if t.number == number)
