"""`dnnlab study`: its flags, the grid of cells, and workers that fill it exactly once.

The multi-process test runs two real workers (`tests/cli_worker.py`, the real CLI on synthetic
data) on one SQLite study, kills one in the middle of a cell, and checks that the other retries
that cell and that every cell finished exactly once. The in-process tests make a cell fail and
check that a rerun trains exactly the missing cells.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import dnnlab.study.run
from dnnlab.cli import main
from dnnlab.config import BUDGET_MAX_EPOCHS, BUDGET_PATIENCE
from dnnlab.errors import DnnlabError
from dnnlab.search.storage import open_storage
from dnnlab.search.worker import SurplusTrial
from dnnlab.study.cells import Cell, all_cells, cell_config, cell_of, claim, grid_space, missing_cells, requeue_missing
from dnnlab.study.config import OptimizerStudyConfig, ScheduleStudyConfig, config_from_settings
from dnnlab.study.run import make_objective, open_grid_study, run_study
from dnnlab.training.run_lock import RunLock
from tests.conftest import synthetic_splits

TESTS = Path(__file__).resolve().parent
WORKER = TESTS / "cli_worker.py"
EPOCH_SLEEP = 0.4  # seconds per epoch in the workers: leaves time to kill a worker mid-cell
# Two optimizers x two seeds of a tiny net, 3 epochs each; the heartbeat settings of the search tests.
FLAGS = ["--optimizers", "sgd,nadam", "--seeds", "2", "--quick", "--depth", "2", "--width", "16"]
FLAGS += ["--quick-finder-steps", "20", "--heartbeat-interval", "1", "--grace-period", "8"]


# A range test's result as the first worker stores it (dnnlab.study.lr), for tests that need no real one.
STORED_RANGE_TEST = {
    "rule": "minimum",
    "lr": 1e-3,
    "turning_point": 1e-2,
    "seconds": 0.0,
    "curve": {"lrs": [1e-4, 1e-3, 1e-2, 1e-1], "smoothed": [2.3, 2.1, 2.0, 2.6]},
}


def tiny(out: Path, **fields) -> OptimizerStudyConfig:
    """The in-process twin of FLAGS."""
    settings = dict(optimizers="sgd,nadam", seeds=2, quick=True, depth=2, width=16, quick_finder_steps=20)
    return OptimizerStudyConfig(**{**settings, "out": str(out), "heartbeat_interval": 1, "grace_period": 8, **fields})


# ---------------------------------------------------------------------------------------------
# Flags and cells


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["optimizers", "--optimizers", "adam,lion"], "--optimizers: unknown lion; choose from sgd, momentum"),
        (["optimizers", "--optimizers", "adam"], "--optimizers needs at least two options"),
        (["schedules", "--schedules", "constant,cosine"], "--schedules: unknown cosine"),
        (["schedules", "--optimizer", "lion"], "--optimizer must be one of sgd, momentum"),
        (["optimizers", "--seeds", "0"], "--seeds must be >= 1"),
        (["optimizers", "--rule", "best"], "--rule must be one of"),
    ],
)
def test_bad_study_flags_are_one_line_errors(tmp_path, capsys, args, fragment):
    assert main(["study", *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]
    assert not (tmp_path / "study").exists()  # refused before any storage was made


def test_quick_is_one_seed_and_three_options_with_the_reference_and_the_budget_is_the_exercises(tmp_path):
    quick = OptimizerStudyConfig(quick=True)
    assert (quick.names, quick.seed_list, quick.study_name) == (("sgd", "adam", "nadam"), (42,), "optimizers-quick")
    full = OptimizerStudyConfig()
    assert len(full.names) == 9 and full.seed_list == (42, 43, 44) and full.max_epochs == BUDGET_MAX_EPOCHS
    run = cell_config(full, Cell("nesterov", 43), 2e-3).train
    assert (run.optimizer, run.momentum, run.schedule, run.lr, run.seed) == ("nesterov", 0.9, "constant", 2e-3, 43)
    assert (run.epochs, run.patience, run.batch_size) == (BUDGET_MAX_EPOCHS, BUDGET_PATIENCE, 32)
    assert cell_config(full, Cell("sgd", 42), 1e-2).train.momentum == 0.0  # plain SGD
    schedules = ScheduleStudyConfig(optimizer="momentum", one_cycle_epochs=30)
    cycle = cell_config(schedules, Cell("1cycle", 42), 0.1)
    assert (cycle.train.optimizer, cycle.train.momentum, cycle.train.schedule) == ("sgd", 0.9, "1cycle")
    assert cycle.train.epochs == cycle.train.patience == 30  # the whole cycle, never cut short
    assert cycle.run_dir == Path("runs/study/schedules/1cycle/seed-42")


def test_the_grid_samplers_first_n_trials_hold_the_n_cells_once_each(tmp_path):
    config = tiny(tmp_path, seeds=3, optimizers="sgd,adam,nadam")
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(grid_space(config)))
    asked = [study.ask() for _ in all_cells(config)]  # all at once, as many workers would
    assert sorted(claim(trial, config) for trial in asked) == sorted(all_cells(config))


def test_a_second_trial_of_a_held_cell_is_not_run_and_a_failed_cell_is_queued_again(tmp_path):
    config = tiny(tmp_path)
    study = open_grid_study(config, open_storage(f"sqlite:///{tmp_path / 'optuna.db'}"))
    first = study.ask()
    cell = claim(first, config)
    study.enqueue_trial({"option": cell.option, "seed": cell.seed})  # e.g. two workers queued it at once
    duplicate = study.ask()
    with pytest.raises(SurplusTrial, match=f"cell {cell} is held by trial {first.number}"):
        claim(duplicate, config)
    study.tell(duplicate, state=TrialState.FAIL)
    study.tell(first, state=TrialState.FAIL)  # its cell failed with an error
    assert cell in missing_cells(study, config)
    assert requeue_missing(study, config) == [cell]
    assert cell not in missing_cells(study, config) and requeue_missing(study, config) == []


def test_a_cell_whose_run_folder_another_live_process_trains_is_a_duplicate(tmp_path):
    config = tiny(tmp_path, optimizers="sgd,nadam", seeds=1)
    study = open_grid_study(config, open_storage(f"sqlite:///{tmp_path / 'optuna.db'}"))
    study.enqueue_trial({"option": "sgd", "seed": 42})
    study.set_user_attr("lr_range_test:sgd", STORED_RANGE_TEST)  # no range test needed here
    objective = make_objective(config, synthetic_splits(n_train=128, n_valid=64, n_test=32), n_cells=2)
    folder = cell_config(config, Cell("sgd", 42), 1.0).run_dir
    folder.mkdir(parents=True)
    with RunLock(folder):  # as a worker that claimed the cell at the same instant would hold it
        study.optimize(objective, n_trials=1, catch=(SurplusTrial,))
    [trial] = study.trials
    assert trial.state == TrialState.FAIL and trial.user_attrs["surplus"]
    assert not (folder / "metrics.json").exists()


def test_a_worker_with_other_settings_cannot_join_but_one_elsewhere_can(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    open_grid_study(tiny(tmp_path), open_storage(url))
    open_grid_study(tiny(tmp_path / "elsewhere", data_dir="/mnt/cifar", heartbeat_interval=5), open_storage(url))
    with pytest.raises(DnnlabError, match=r"grid_seeds: \[42, 43\] -> \[42, 43, 44\]"):
        open_grid_study(tiny(tmp_path, seeds=3), open_storage(url))


# ---------------------------------------------------------------------------------------------
# A failed cell, and the rerun that trains only what is missing


def test_a_rerun_trains_only_the_missing_cells(tmp_path, monkeypatch):
    splits = synthetic_splits(n_train=256, n_valid=128, n_test=64)
    real_train, trained, failed = dnnlab.study.run.train, [], []

    def flaky_train(run, *args, **kwargs):
        cell = (Path(run.out).name, run.train.seed)
        if cell == ("nadam", 43) and not failed:
            failed.append(cell)
            raise DnnlabError("simulated failure of one cell")
        trained.append(cell)
        return real_train(run, *args, **kwargs)

    monkeypatch.setattr(dnnlab.study.run, "train", flaky_train)
    config = tiny(tmp_path)
    study = open_grid_study(config, open_storage(f"sqlite:///{tmp_path / 'study' / 'optuna.db'}"))
    for optimizer in config.names:  # the range tests' results, as a first worker would have stored them
        study.set_user_attr(f"lr_range_test:{optimizer}", STORED_RANGE_TEST)
    with pytest.raises(DnnlabError, match="simulated failure"):
        run_study(config, splits)
    done_before = set(trained)
    assert failed and ("nadam", 43) not in done_before
    trained.clear()
    outcome = run_study(config, splits)
    every = {(c.option, c.seed) for c in all_cells(config)}
    assert sorted(trained) == sorted(every - done_before), "the rerun trains each missing cell once, and only those"
    assert (outcome.cells_done, outcome.cells) == (4, 4) and outcome.report_files["md"].exists()
    complete = [cell_of(t) for t in study.trials if t.state == TrialState.COMPLETE]
    assert sorted(complete) == sorted(all_cells(config))
    # A finished study: a third run trains nothing and needs no data.
    monkeypatch.setattr(dnnlab.study.run, "load_data", lambda config: pytest.fail("a finished study loads no data"))
    trained.clear()
    assert run_study(config).cells_done == 4 and trained == []
    assert len(study.trials) == len(optuna.load_study(study_name=config.study_name, storage=study._storage).trials)


# ---------------------------------------------------------------------------------------------
# Two worker processes on one SQLite study, one killed in the middle of a cell


def start_worker(out: Path, log: Path, cache: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "WORKER_EPOCH_SLEEP": str(EPOCH_SLEEP),
        "PYTHONUNBUFFERED": "1",
        "JAX_COMPILATION_CACHE_DIR": str(cache),  # test speed only: the workers compile one net
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    command = [sys.executable, str(WORKER), "study", "optimizers", *FLAGS, "--out", str(out)]
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


def mid_cell(study_folder: Path, storage, victim: subprocess.Popen) -> int | None:
    """The number of the victim's running trial once its cell has committed an epoch's checkpoint, else None."""
    try:
        trials = storage.get_all_trials(storage.get_study_id_from_name("optimizers-quick"), deepcopy=False)
    except KeyError:
        return None
    for t in trials:
        cell = cell_of(t)
        mine = t.user_attrs.get("worker", "").endswith(f":{victim.pid}")
        if t.state == TrialState.RUNNING and mine and cell is not None:
            if any((study_folder / cell.option / f"seed-{cell.seed}" / "checkpoint").glob("epoch-*")):
                return t.number
    return None


def test_two_workers_fill_every_cell_once_and_retry_the_killed_workers_cell(tmp_path):
    out, cache = tmp_path / "runs", tmp_path / "jax-cache"
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [start_worker(out, log, cache) for log in logs]
    read_logs = lambda: "\n".join(f"--- {p.name}\n{p.read_text()}" for p in logs if p.exists())  # noqa: E731
    url = f"sqlite:///{out / 'study' / 'optuna.db'}"
    folder = out / "study" / "optimizers-quick"
    try:
        deadline = time.monotonic() + 240
        killed = None
        while killed is None:
            assert time.monotonic() < deadline, f"no worker got into a cell\n{read_logs()}"
            assert all(w.poll() is None for w in workers), f"a worker exited before the kill\n{read_logs()}"
            if (out / "study" / "optuna.db").exists():
                killed = mid_cell(folder, open_storage(url), workers[0])
            time.sleep(0.1)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=10)
        assert workers[1].wait(timeout=240) == 0, read_logs()
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    storage = open_storage(url)
    trials = storage.get_all_trials(storage.get_study_id_from_name("optimizers-quick"), deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(cell_of(t) for t in complete) == sorted(all_cells(tiny(out))), read_logs()
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert next(t for t in trials if t.number == killed).state == TrialState.FAIL
    [retry] = [t for t in complete if t.system_attrs.get("failed_trial") == killed]
    assert retry.user_attrs["worker"].endswith(f":{workers[1].pid}")
    # The retry resumed the killed cell's run folder after its last completed epoch.
    cell = cell_of(retry)
    metrics = json.loads((folder / cell.option / f"seed-{cell.seed}" / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] >= 1 and metrics["status"] == "completed"
    others = [t for t in trials if t.state == TrialState.FAIL and t.number != killed]
    assert all(t.user_attrs.get("surplus") for t in others), "any other failed trial held no cell"
    assert (folder / "report.html").exists() and (folder / "results.csv").exists()


def test_a_study_config_is_rebuilt_from_its_stored_settings_on_another_machine():
    config = ScheduleStudyConfig(schedules="1cycle,constant", seeds=2, seed=7, optimizer="adam", one_cycle_epochs=9)
    rebuilt = config_from_settings(json.loads(json.dumps(config.shared_settings())), "schedules", "/elsewhere")
    assert (rebuilt.names, rebuilt.seed_list, rebuilt.optimizer) == (("constant", "1cycle"), (7, 8), "adam")
    assert rebuilt.shared_settings() == config.shared_settings() and rebuilt.folder == Path(
        "/elsewhere/study/schedules"
    )
    # The same grid asked for in other words is the same study.
    assert OptimizerStudyConfig(seeds=3).shared_settings() == OptimizerStudyConfig().shared_settings()
