"""`dnnlab search` / `search-report`: the search space, the pruning callback, and real multi-process
studies on the embedded SQLite default (2 workers) and on a PostgreSQL server (3 workers), each
with one worker killed in the middle of a trial.

The worker processes run the real CLI through `tests/cli_worker.py` on synthetic data.
PostgreSQL: `$DNNLAB_TEST_POSTGRES_URL` (set by .ci/run), else a throwaway server started with
`tests/postgres_server.sh`; skipped only when no PostgreSQL binary is installed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import dnnlab.search.run
from dnnlab.cli import main
from dnnlab.cli.flags import config_from_args
from dnnlab.cli.main import build_parser
from dnnlab.config import LRSearchConfig, ModelConfig, RunConfig, TrainConfig, for_variant
from dnnlab.errors import DnnlabError
from dnnlab.search.config import SearchConfig
from dnnlab.search.report import search_report
from dnnlab.search.run import run_search
from dnnlab.search.space import baseline_params, centres_on_range_test, resolve_space, trial_config
from dnnlab.search.storage import open_storage
from dnnlab.search.study import open_study, shared_settings
from dnnlab.search.trial_pruning import OptunaPruning
from dnnlab.search.trials import fit_trial, make_objective
from dnnlab.search.worker import DONE, SurplusTrial, run_worker
from dnnlab.training.train import train

TESTS = Path(__file__).resolve().parent
WORKER = TESTS / "cli_worker.py"
EPOCH_SLEEP = 0.4  # seconds per epoch in the workers: leaves >= 1 s to kill a worker mid-trial
# A tiny model and a fixed shape (only the LR varies), so every trial reuses one compiled step.
# No --lr: the workers centre the LR range on a range test (60 batches; one synthetic epoch is only 8).
WORKER_FLAGS = [
    "--variant",
    "elu",
    "--depth",
    "2",
    "--width",
    "16",
    "--epochs",
    "4",
    "--patience",
    "4",
    "--space",
    "lr",
    "--finder-steps",
    "60",
    "--heartbeat-interval",
    "1",
    "--grace-period",
    "8",
]
# 8 s, not 3: on a busy 2-core machine a live worker's heartbeat thread can stall for seconds.


# ---------------------------------------------------------------------------------------------
# Pure parts: space, trial config, pruning callback, config validation


def test_space_is_lr_around_its_centre_and_batch_and_dropout_only_with_a_dropout_layer():
    bn = resolve_space(for_variant("bn"), SearchConfig(), suggestion=5e-4)
    assert bn.lr == pytest.approx((5e-5, 5e-3))  # the range test's suggestion, within x10
    assert bn.batch_sizes == (32, 64, 128, 256, 512) and bn.dropout_rate is None
    given = resolve_space(for_variant("bn", lr=1e-3), SearchConfig(lr_span=4), suggestion=5e-4)
    assert given.lr == pytest.approx((2.5e-4, 4e-3))  # an --lr number is the centre, not the suggestion
    alpha = resolve_space(
        for_variant("alpha-dropout"), SearchConfig(dropout_low=0.02, dropout_high=0.2), suggestion=1e-3
    )
    assert alpha.dropout_rate == (0.02, 0.2)
    bounded = resolve_space(for_variant("bn", lr="auto"), SearchConfig(lr_low=1e-4, lr_high=2e-3, space="lr"))
    assert bounded.lr == (1e-4, 2e-3) and bounded.batch_sizes is None
    with pytest.raises(DnnlabError, match="has no dropout layer"):
        resolve_space(for_variant("bn"), SearchConfig(space="lr,dropout"), suggestion=1e-3)
    with pytest.raises(DnnlabError, match="needs a centre"):
        resolve_space(for_variant("bn", lr="auto"), SearchConfig())
    with pytest.raises(DnnlabError, match="--lr auto needs lr in --space"):
        resolve_space(for_variant("bn", lr="auto"), SearchConfig(space="batch"))


@pytest.mark.parametrize(
    "lr, search, expected",
    [
        (None, SearchConfig(), True),  # no --lr: the range test centres the range
        ("auto", SearchConfig(), True),
        ("auto", SearchConfig(lr_low=1e-4), True),  # one bound: the other comes from the centre
        (1e-3, SearchConfig(), False),  # an --lr number is the centre
        ("auto", SearchConfig(lr_low=1e-4, lr_high=1e-2), False),  # both bounds: no centre needed
        (None, SearchConfig(space="batch"), False),  # lr not searched
    ],
)
def test_the_lr_range_is_centred_on_a_range_test_only_when_nothing_else_fixes_it(lr, search, expected):
    assert centres_on_range_test(for_variant("bn", lr=lr), search) is expected


def test_trial_config_sets_the_params_and_seed_base_plus_number():
    base = for_variant("alpha-dropout", lr=1e-3, seed=100)
    config = trial_config(base, {"lr": 3e-4, "batch_size": 256, "dropout_rate": 0.2}, 7, "s")
    assert (config.train.lr, config.train.batch_size, config.model.dropout_rate) == (3e-4, 256, 0.2)
    assert config.train.seed == 107 and config.name == "s-trial7"
    assert config.model.dropout == "alpha" and config.train.epochs == base.train.epochs
    assert trial_config(base, {}, 0, "s").train.lr == 1e-3  # unsearched fields keep the base value


def test_the_baseline_is_the_base_config_with_lr_autos_choice_unless_it_has_no_lr_or_lies_outside():
    space = resolve_space(for_variant("alpha-dropout"), SearchConfig(), suggestion=1e-3)
    params, how = baseline_params(for_variant("alpha-dropout"), space, auto_lr=4e-4)
    assert params == {"lr": 4e-4, "batch_size": 32, "dropout_rate": 0.1} and "--lr auto" in how
    numeric = for_variant("bn", lr=2e-3)
    params, how = baseline_params(numeric, resolve_space(numeric, SearchConfig()), auto_lr=None)
    assert params == {"lr": 2e-3, "batch_size": 32} and how == "the base config"
    textbook = for_variant("bn")
    assert baseline_params(textbook, resolve_space(textbook, SearchConfig(space="batch")), None)[0] == {
        "batch_size": 32
    }
    bounded_auto = for_variant("bn", lr="auto")
    bounds = SearchConfig(lr_low=1e-4, lr_high=1e-2)
    params, why = baseline_params(bounded_auto, resolve_space(bounded_auto, bounds), auto_lr=None)
    assert params is None and "no LR" in why
    odd_batch = for_variant("bn", lr=2e-3, batch_size=48)
    params, why = baseline_params(odd_batch, resolve_space(odd_batch, SearchConfig()), auto_lr=None)
    assert params is None and "batch_size 48 lies outside" in why
    params, why = baseline_params(numeric, resolve_space(numeric, SearchConfig(lr_low=1e-4, lr_high=1e-3)), None)
    assert params is None and "lr 0.002 lies outside" in why


def test_a_new_study_queues_the_baseline_as_trial_0_and_a_joining_worker_adds_none(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    search = SearchConfig(study="s", storage=url)
    config = for_variant("bn", lr=2e-3)
    space = resolve_space(config, search)
    baseline = ({"lr": 2e-3, "batch_size": 32}, "the base config")
    study, _ = open_study(config, search, space, open_storage(url), baseline=baseline)
    open_study(config, search, space, open_storage(url), baseline=baseline)
    [queued] = study.get_trials()
    assert (queued.number, queued.state, queued.system_attrs["fixed_params"]) == (0, TrialState.WAITING, baseline[0])
    assert queued.user_attrs == {"baseline": "the base config"}
    # The first trial a worker asks for is the queued one, with the base seed.
    trial = study.ask()
    config_0 = trial_config(config, {"lr": trial.suggest_float("lr", *space.lr, log=True)}, trial.number, "s")
    assert (trial.number, config_0.train.lr, config_0.train.seed) == (0, 2e-3, config.train.seed)
    no_lr = for_variant("bn", lr="auto")
    bounds = SearchConfig(study="t", storage=url, lr_low=1e-4, lr_high=1e-2)
    bounded_space = resolve_space(no_lr, bounds)
    study, _ = open_study(
        no_lr, bounds, bounded_space, open_storage(url), baseline=baseline_params(no_lr, bounded_space, None)
    )
    assert study.get_trials() == [] and "no baseline trial: the base config has no LR" in capsys.readouterr().out


def test_a_worker_that_joins_while_the_creator_is_still_setting_up_queues_no_second_baseline(tmp_path):
    """Two workers started together: the one whose create_study lost waits for the creator's settings."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    search = SearchConfig(study="s", storage=url)
    config = for_variant("bn", lr=2e-3)
    space = resolve_space(config, search)
    baseline = ({"lr": 2e-3, "batch_size": 32}, "the base config")
    creator = optuna.create_study(study_name="s", storage=open_storage(url))  # created, nothing queued yet
    joined = {}
    joiner = threading.Thread(
        target=lambda: joined.update(study=open_study(config, search, space, open_storage(url), baseline=baseline))
    )
    joiner.start()
    time.sleep(1.0)  # the joiner is in open_study by now; the creator queues its baseline as it would
    creator.enqueue_trial(baseline[0], user_attrs={"baseline": baseline[1]})
    creator.set_user_attr("dnnlab_settings", shared_settings(config, space, None))
    joiner.join(timeout=60)
    assert "study" in joined, "the joining worker never returned"
    assert [t.user_attrs for t in creator.get_trials()] == [{"baseline": "the base config"}]


def test_a_trial_trains_as_dnnlab_train_does_1cycle_included(tmp_path, toy_splits):
    config = RunConfig(
        name="one",
        out=str(tmp_path),
        model=ModelConfig(depth=2, width=16),
        train=TrainConfig(lr=0.01, schedule="1cycle", epochs=3, batch_size=64, patience=3),
    )
    trained = train(config, toy_splits, verbose=0).history
    searched = fit_trial(config, toy_splits, ScriptedTrial())
    assert searched["val_loss"] == trained["val_loss"] and searched["loss"] == trained["loss"]
    constant = fit_trial(
        dataclasses.replace(config, train=dataclasses.replace(config.train, schedule="constant")),
        toy_splits,
        ScriptedTrial(),
    )
    assert constant["loss"] != searched["loss"]  # so the comparison above can tell whether the cycle ran


class ScriptedTrial:
    """Stands in for optuna.Trial: records reports; prunes from a given epoch on."""

    def __init__(self, prune_from: int | None = None):
        self.reports: list[tuple[int, float]] = []
        self.prune_from = prune_from

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return self.prune_from is not None and self.reports[-1][0] >= self.prune_from


def test_pruning_callback_reports_every_epoch_and_raises_when_told():
    trial = ScriptedTrial(prune_from=2)
    callback = OptunaPruning(trial)
    callback.on_epoch_end(0, {"val_loss": 2.0})
    callback.on_epoch_end(1, {"val_loss": 1.5})
    with pytest.raises(optuna.TrialPruned, match="epoch 3"):
        callback.on_epoch_end(2, {"val_loss": 1.7})
    assert trial.reports == [(0, 2.0), (1, 1.5), (2, 1.7)]


def test_an_unprunable_trial_reports_every_epoch_but_only_a_diverged_run_stops_it():
    trial = ScriptedTrial(prune_from=0)
    callback = OptunaPruning(trial, prunable=False)
    callback.on_epoch_end(0, {"val_loss": 2.0})
    callback.on_epoch_end(1, {"val_loss": 1.5})
    assert trial.reports == [(0, 2.0), (1, 1.5)]
    with pytest.raises(optuna.TrialPruned, match="diverged"):
        callback.on_epoch_end(2, {"val_loss": float("inf")})


def test_pruning_callback_prunes_a_diverged_run_and_rejects_missing_validation():
    trial = ScriptedTrial()
    with pytest.raises(optuna.TrialPruned, match="diverged"):
        OptunaPruning(trial).on_epoch_end(0, {"val_loss": float("nan")})
    assert trial.reports == []  # a NaN never reaches the pruner's median
    with pytest.raises(ValueError, match="validation_data"):
        OptunaPruning(trial).on_epoch_end(0, {"loss": 1.0})


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--trials", "0"], "--trials must be >= 1"),
        (["--space", "lr,momentum"], "--space must be a comma list"),
        (["--lr-low", "1e-2", "--lr-high", "1e-3"], "must be below --lr-high"),
        (["--heartbeat-interval", "30", "--grace-period", "10"], "must exceed --heartbeat-interval"),
        (["--variant", "bn", "--space", "dropout"], "has no dropout layer"),
    ],
)
def test_bad_search_flags_are_one_line_errors(tmp_path, capsys, args, fragment):
    assert main(["search", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]
    assert not (tmp_path / "search").exists()  # refused before any storage was made


def test_a_worker_with_other_settings_cannot_join(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    search = SearchConfig(study="s", storage=url)
    first = for_variant("bn", epochs=5, lr=5e-4)
    open_study(first, search, resolve_space(first, search), open_storage(url))
    # Paths may differ between machines; the model and training settings may not.
    moved = RunConfig.from_dict({**first.to_dict(), "out": "/elsewhere", "data": {"data_dir": "/mnt/cifar"}})
    open_study(moved, search, resolve_space(moved, search), open_storage(url))
    other = for_variant("bn", epochs=6, lr=5e-4)
    with pytest.raises(DnnlabError, match=r"train\.epochs: 5 -> 6"):
        open_study(other, search, resolve_space(other, search), open_storage(url))


def test_workers_centred_on_range_tests_all_sample_the_first_workers_range(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    search = SearchConfig(study="s", storage=url)
    config = for_variant("bn")
    _, first = open_study(config, search, resolve_space(config, search, 1e-3), open_storage(url), 1e-3)
    # A worker that started at the same time ran its own range test, on a machine that rounds differently.
    study, second = open_study(config, search, resolve_space(config, search, 1.1e-3), open_storage(url), 1.1e-3)
    assert first.lr == second.lr == pytest.approx((1e-4, 1e-2))
    assert study.user_attrs["dnnlab_settings"]["lr_suggestion"] == 1e-3
    # A centre given with --lr is another setting, not a rounding difference.
    fixed = for_variant("bn", lr=1e-3)
    with pytest.raises(DnnlabError, match=r"train\.lr: None -> 0\.001"):
        open_study(fixed, search, resolve_space(fixed, search), open_storage(url))


@pytest.mark.parametrize("percentile, pruned", [(50.0, True), (75.0, False)])
def test_the_pruner_stops_trials_worse_than_the_chosen_percentile(tmp_path, percentile, pruned):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    search = SearchConfig(study="s", storage=url, prune_percentile=percentile, prune_warmup_epochs=0)
    config = for_variant("bn", lr=5e-4)
    study, _ = open_study(config, search, resolve_space(config, search), open_storage(url))
    for loss in (1.0, 2.0, 3.0, 4.0):  # finished trials' validation loss at epoch 0
        study.add_trial(optuna.trial.create_trial(value=loss, intermediate_values={0: loss}))
    trial = study.ask()
    trial.report(3.2, 0)  # worse than the median (2.5), better than the 75th percentile (3.25)
    assert bool(trial.should_prune()) is pruned


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("not a url", "Could not parse"),
        ("postgresql://someone:secret@127.0.0.1:1/db", "Connection refused"),  # nothing listens on port 1
    ],
)
def test_a_bad_storage_is_a_one_line_error_without_the_password(url, fragment):
    started = time.monotonic()
    with pytest.raises(DnnlabError, match="cannot open storage") as caught:
        open_storage(url)
    assert fragment in str(caught.value) and "secret" not in str(caught.value)
    assert time.monotonic() - started < 20, "a refused connection is not retried like a table-creation race"


def test_search_report_on_an_unknown_study_names_the_known_ones(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    search = SearchConfig(study="known", storage=url)
    known = for_variant("bn", lr=5e-4)
    open_study(known, search, resolve_space(known, search), open_storage(url))
    with pytest.raises(DnnlabError, match=r"no study 'typo'.*studies there: known"):
        search_report("typo", url, tmp_path)


def test_a_trial_created_after_all_slots_are_claimed_is_not_run(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'optuna.db'}"))
    for value in (1.0, 2.0):  # two finished trials, e.g. from workers that asked a moment earlier
        study.add_trial(optuna.trial.create_trial(value=value))
    config = for_variant("bn", lr=5e-4)
    objective = make_objective(config, resolve_space(config, SearchConfig()), None, "s", n_trials=2)
    study.optimize(objective, n_trials=5, catch=(SurplusTrial,))
    surplus = study.trials[-1]
    assert len(study.trials) == 3, "the surplus trial stops this worker's loop"
    assert surplus.state == TrialState.FAIL and surplus.user_attrs["surplus"]
    assert surplus.params == {}  # nothing was sampled, let alone trained


def test_without_the_baseline_trial_a_worker_runs_only_the_range_test_and_samples_trial_0(tmp_path, toy_splits):
    config = RunConfig(
        out=str(tmp_path),
        model=ModelConfig(depth=2, width=16),
        train=TrainConfig(epochs=1),
        lr_search=LRSearchConfig(finder_steps=20),
    )
    search = SearchConfig(study="s", trials=1, space="lr", baseline_trial=False)
    outcome = run_search(config, search, toy_splits)
    folder = tmp_path / "search" / "s"
    assert (folder / "lr_finder.csv").exists() and not (folder / "lr_search.json").exists()
    assert "baseline" not in outcome.best.user_attrs and outcome.best.number == 0


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_the_baseline_trial_runs_to_its_end_where_a_sampled_one_is_pruned(tmp_path, toy_splits):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'optuna.db'}"), pruner=AlwaysPrune())
    config = RunConfig(model=ModelConfig(depth=2, width=16), train=TrainConfig(lr=1e-3, epochs=3, patience=3))
    search = SearchConfig(space="lr")
    study.enqueue_trial({"lr": 1e-3}, user_attrs={"baseline": "the base config"})
    study.optimize(make_objective(config, resolve_space(config, search), toy_splits, "s", n_trials=2), n_trials=2)
    baseline, sampled = study.trials
    assert baseline.state == TrialState.COMPLETE and len(baseline.intermediate_values) == 3
    assert sampled.state == TrialState.PRUNED and len(sampled.intermediate_values) == 1


@pytest.mark.parametrize("ends_by", ["returning", "pruning"])  # Optuna fails differently in each case
def test_a_worker_survives_its_trial_being_declared_dead(tmp_path, capsys, ends_by):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(
        study_name="s", storage=open_storage(url, SearchConfig(heartbeat_interval=1, grace_period=2))
    )
    other_worker = open_storage(url)

    def objective(trial):
        if trial.number == 0:  # what another worker's heartbeat check does when this one stalls
            trial_id = other_worker.get_trial_id_from_study_id_trial_number(
                other_worker.get_study_id_from_name("s"), trial.number
            )
            other_worker.set_trial_state_values(trial_id, state=TrialState.FAIL)
            if ends_by == "pruning":
                raise optuna.TrialPruned()
        return float(trial.number)

    run_worker(study, objective, n_trials=2, poll_seconds=0.1)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert "trial 0 was declared dead" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Real studies: several worker processes, one killed mid-trial


@dataclass
class StudyRun:
    url: str
    study: str
    out: Path
    n_trials: int
    killed_trial: int
    logs: str


def start_worker(url: str, study: str, out: Path, n_trials: int, log: Path, cache: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "WORKER_EPOCH_SLEEP": str(EPOCH_SLEEP),
        "PYTHONUNBUFFERED": "1",
        # JAX's on-disk compilation cache lets workers reuse one compiled train step (test speed only).
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    command = [
        sys.executable,
        str(WORKER),
        "search",
        *WORKER_FLAGS,
        "--study",
        study,
        "--storage",
        url,
        "--out",
        str(out),
        "--trials",
        str(n_trials),
    ]
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


@functools.cache
def storage_at(url: str) -> optuna.storages.RDBStorage:
    return open_storage(url)


def raw_trials(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    """Every trial row, read past Optuna's cache (which keys trials by number and would hide duplicates)."""
    storage = storage_at(url)
    return storage.get_all_trials(storage.get_study_id_from_name(study), deepcopy=False)


def wait_until(condition, timeout: float, what: str, logs=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found is not None:
            return found
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{logs()}")


def run_study_with_a_killed_worker(url: str, out: Path, n_workers: int, n_trials: int, cache: Path) -> StudyRun:
    study = f"ci-{uuid.uuid4().hex[:8]}"
    logs = [out / f"worker{i}.log" for i in range(n_workers)]
    out.mkdir(parents=True, exist_ok=True)
    workers = [start_worker(url, study, out, n_trials, log, cache) for log in logs]
    read_logs = lambda: "\n".join(f"--- {p.name}\n{p.read_text()}" for p in logs if p.exists())  # noqa: E731
    try:
        victim = workers[0]

        def victim_mid_trial():
            if any(w.poll() is not None for w in workers):
                pytest.fail(f"a worker exited before the kill\n{read_logs()}")
            try:
                trials = raw_trials(url, study)
            except (KeyError, DnnlabError):  # the study is not created yet
                return None
            for t in trials:
                if (
                    t.state == TrialState.RUNNING
                    and t.user_attrs.get("worker", "").endswith(f":{victim.pid}")
                    and t.intermediate_values
                ):
                    return t.number
            return None

        killed = wait_until(victim_mid_trial, 240, "the first worker to report an epoch", read_logs)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        state = {t.number: t.state for t in raw_trials(url, study)}[killed]
        assert state == TrialState.RUNNING, "precondition: the worker died in the middle of its trial"
        for worker in workers[1:]:
            try:
                worker.wait(timeout=180)
            except subprocess.TimeoutExpired:
                pytest.fail(f"worker {worker.pid} did not finish\n{read_logs()}")
            assert worker.returncode == 0, read_logs()
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    return StudyRun(url, study, out, n_trials, killed, read_logs())


def assert_exactly_n_and_killed_trial_retried(run: StudyRun) -> None:
    trials = raw_trials(run.url, run.study)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)), f"duplicate trial numbers: {sorted(numbers)}"
    states = {t.number: t.state for t in trials}
    done = [n for n, s in states.items() if s in DONE]
    assert len(done) == run.n_trials, f"{states}\n{run.logs}"
    assert not [n for n, s in states.items() if s in (TrialState.RUNNING, TrialState.WAITING)], states
    assert states[run.killed_trial] == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == run.killed_trial]
    assert len(retries) == 1 and retries[0].state in DONE, f"no finished retry of trial {run.killed_trial}"
    killed = next(t for t in trials if t.number == run.killed_trial)
    assert retries[0].params == killed.params  # the same hyperparameters, run again
    assert retries[0].user_attrs["worker"] != killed.user_attrs["worker"]
    # Any other failed trial must be a surplus one (two workers asked at once), never lost work.
    others = [t for t in trials if t.state == TrialState.FAIL and t.number != run.killed_trial]
    assert all(t.user_attrs.get("surplus") and not t.intermediate_values for t in others)


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory) -> Path:
    """A JAX compilation cache holding the workers' train step, compiled once by a one-trial search.

    Without it every worker compiles the same step at the same time, which on a busy 2-core
    machine costs more than all the trials together.
    """
    cache = tmp_path_factory.mktemp("jax-cache")
    out = tmp_path_factory.mktemp("warm-up")
    log = out / "warm-up.log"
    worker = start_worker(f"sqlite:///{out / 'warm.db'}", "warm-up", out, 1, log, cache)
    assert worker.wait(timeout=300) == 0, log.read_text()
    return cache


@pytest.fixture(scope="module")
def sqlite_run(tmp_path_factory, jax_cache) -> StudyRun:
    out = tmp_path_factory.mktemp("sqlite") / "runs"
    url = f"sqlite:///{out / 'search' / 'optuna.db'}"  # the default location, given explicitly
    return run_study_with_a_killed_worker(url, out, n_workers=2, n_trials=4, cache=jax_cache)


def test_embedded_default_two_workers_reach_exactly_n_and_retry_the_killed_trial(sqlite_run):
    assert_exactly_n_and_killed_trial_retried(sqlite_run)


def worker_config(out: Path) -> RunConfig:
    """The base config the worker processes used, for in-process runs against the same study."""
    return config_from_args(build_parser().parse_args(["search", *WORKER_FLAGS, "--out", str(out)]))


def test_the_lr_range_is_the_first_range_tests_suggestion_within_the_span(sqlite_run):
    settings = storage_at(sqlite_run.url).get_study_user_attrs(
        storage_at(sqlite_run.url).get_study_id_from_name(sqlite_run.study)
    )["dnnlab_settings"]
    suggestion = settings["lr_suggestion"]
    assert settings["space"]["lr"] == pytest.approx([suggestion / 10, suggestion * 10])
    lrs = [t.params["lr"] for t in raw_trials(sqlite_run.url, sqlite_run.study) if t.params]
    assert lrs and all(suggestion / 10 <= lr <= suggestion * 10 for lr in lrs)
    folder = sqlite_run.out / "search" / sqlite_run.study  # the range test's curve and plot stay with the study
    assert (folder / "lr_finder.csv").exists() and (folder / "lr_finder.png").exists()


def test_trial_0_is_the_baseline_with_lr_autos_choice_and_the_base_seed(sqlite_run):
    folder = sqlite_run.out / "search" / sqlite_run.study
    chosen = json.loads((folder / "lr_search.json").read_text())["chosen_lr"]
    trials = raw_trials(sqlite_run.url, sqlite_run.study)
    baselines = [t for t in trials if "baseline" in t.user_attrs and "failed_trial" not in t.system_attrs]
    assert [t.number for t in baselines] == [0], "exactly one baseline, queued as the first trial"
    assert baselines[0].params == {"lr": chosen} and baselines[0].user_attrs["seed"] == 42
    assert baselines[0].user_attrs["baseline"] == "the base config with --lr auto's LR"


def test_rerun_counts_toward_the_total_not_n_more(sqlite_run, jax_cache, monkeypatch):
    config = worker_config(sqlite_run.out)
    flags = dict(study=sqlite_run.study, storage=sqlite_run.url, space="lr", heartbeat_interval=1, grace_period=8)
    before = len(raw_trials(sqlite_run.url, sqlite_run.study))

    def no_second_range_test(*args):
        raise AssertionError("a worker joining a study reuses its range test's suggestion")

    monkeypatch.setattr(dnnlab.search.run, "lr_auto", no_second_range_test)
    # Already complete: returns before loading any data (splits=None would load CIFAR-10), adds nothing.
    outcome = run_search(config, SearchConfig(trials=sqlite_run.n_trials, **flags))
    assert len(raw_trials(sqlite_run.url, sqlite_run.study)) == before
    assert outcome.counts["COMPLETE"] + outcome.counts.get("PRUNED", 0) == sqlite_run.n_trials
    # One more in total means exactly one more trial.
    log = sqlite_run.out / "rerun.log"
    worker = start_worker(sqlite_run.url, sqlite_run.study, sqlite_run.out, sqlite_run.n_trials + 1, log, jax_cache)
    assert worker.wait(timeout=180) == 0, log.read_text()
    trials = raw_trials(sqlite_run.url, sqlite_run.study)
    assert len(trials) == before + 1
    assert sum(t.state in DONE for t in trials) == sqlite_run.n_trials + 1
    newest = max(trials, key=lambda t: t.number)
    assert newest.user_attrs["seed"] == config.train.seed + newest.number


def test_search_report_prints_best_trials_and_writes_plot_and_loadable_best_json(sqlite_run, capsys):
    assert (
        main(["search-report", "--study", sqlite_run.study, "--storage", sqlite_run.url, "--out", str(sqlite_run.out)])
        == 0
    )
    text = capsys.readouterr().out
    assert "best trials" in text and "parameter importances" in text
    folder = sqlite_run.out / "search" / sqlite_run.study
    assert (folder / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    trials = [t for t in raw_trials(sqlite_run.url, sqlite_run.study) if t.state == TrialState.COMPLETE]
    best = min(trials, key=lambda t: t.value)
    assert f"#{best.number:<4d} val_loss {best.value:.4f}" in text
    # `dnnlab train --config best.json` gets the winner's hyperparameters, model and seed.
    args = build_parser().parse_args(["train", "--config", str(folder / "best.json")])
    retrain = config_from_args(args)
    assert retrain.train.lr == best.params["lr"]
    assert retrain.train.seed == 42 + best.number and retrain.train.epochs == 4
    assert retrain.model == ModelConfig(depth=2, width=16) and retrain.variant == "elu"
    assert json.loads((folder / "best.json").read_text()) == retrain.to_dict()


def test_postgres_three_workers_reach_exactly_n_and_retry_the_killed_trial(postgres_url, tmp_path, jax_cache):
    run = run_study_with_a_killed_worker(postgres_url, tmp_path / "runs", n_workers=3, n_trials=6, cache=jax_cache)
    assert_exactly_n_and_killed_trial_retried(run)
    # The study lives on the server only: nothing was written to the embedded default.
    assert not (tmp_path / "runs" / "search" / "optuna.db").exists()
