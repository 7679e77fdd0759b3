"""Where learners look (issue 18): a search's trials in TensorBoard's HParams format, and the real
servers, optuna-dashboard and tensorboard, started on 127.0.0.1 over a small study and a small run,
answering through their HTTP APIs with what the files and the study hold."""

from __future__ import annotations

import json
import shlex
import urllib.parse
import uuid
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from dnnlab.cli import main
from dnnlab.config import ModelConfig, RunConfig, TrainConfig
from dnnlab.search.config import SearchConfig
from dnnlab.search.run import run_search
from dnnlab.search.space import resolve_space
from dnnlab.search.storage import dashboard_command, default_storage_url, open_storage
from dnnlab.search.trials import make_objective, trial_logdir
from dnnlab.training.event_files import keras_tag, read_hparams, read_scalars
from dnnlab.training.history import read_history_csv
from dnnlab.training.tensorboard import LEARNING_RATE_TAG
from dnnlab.training.train import train
from tests.servers import free_port, get_json, scalar_tags, server, wait_until

STUDY = "tiny"
TRIALS = 3


@pytest.fixture(scope="module")
def study_out(tmp_path_factory) -> Path:
    """A 3-trial study on synthetic data in the default SQLite storage, and one small training run, under one --out."""
    from tests.conftest import synthetic_splits

    out = tmp_path_factory.mktemp("runs")
    splits = synthetic_splits(n_train=256, n_valid=128, n_test=64)
    config = RunConfig(
        out=str(out), model=ModelConfig(depth=2, width=16), train=TrainConfig(lr=1e-3, epochs=2, patience=2)
    )
    run_search(config, SearchConfig(study=STUDY, trials=TRIALS, space="lr"), splits)
    train(config, splits, verbose=0)
    return out


def study_trials(out: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=STUDY, storage=open_storage(default_storage_url(out))).trials


def f32(value: float) -> float:
    return float(np.float32(value))


def test_each_trial_logs_its_hyperparameters_curves_and_result(study_out):
    trials = study_trials(study_out)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * TRIALS, "precondition: nothing pruned"
    for trial in trials:
        logdir = trial_logdir(study_out, STUDY, trial.number)
        start, end = read_hparams(logdir)
        assert start.session_start_info.group_name == f"trial-{trial.number}"
        assert start.session_start_info.hparams["lr"].number_value == trial.params["lr"]
        assert start.session_start_info.hparams["seed"].number_value == trial.user_attrs["seed"]
        assert end.session_end_info.status == 1  # STATUS_SUCCESS
        scalars = read_scalars(logdir)
        assert scalars[("", "valid_loss")] == [(0, f32(trial.value))]
        assert scalars[("", "valid_accuracy")] == [(0, f32(trial.user_attrs["valid_accuracy"]))]
        assert [step for step, _ in scalars[("validation", "epoch_loss")]] == list(
            range(trial.user_attrs["epochs_run"])
        )
        # The objective is the best epoch's validation loss: the curve holds it at that epoch.
        assert dict(scalars[("validation", "epoch_loss")])[trial.user_attrs["best_epoch"] - 1] == f32(trial.value)


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_a_pruned_trial_ends_its_session_as_a_failure_with_the_epochs_it_ran(tmp_path, toy_splits):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'optuna.db'}"), pruner=AlwaysPrune())
    config = RunConfig(out=str(tmp_path), model=ModelConfig(depth=2, width=16), train=TrainConfig(lr=1e-3, epochs=3))
    study.optimize(make_objective(config, resolve_space(config, SearchConfig(space="lr")), toy_splits, "s", 1), 1)
    assert study.trials[0].state == TrialState.PRUNED, "precondition"
    logdir = trial_logdir(tmp_path, "s", 0)
    assert read_hparams(logdir)[-1].session_end_info.status == 2  # STATUS_FAILURE
    assert [step for step, _ in read_scalars(logdir)[("validation", "epoch_loss")]] == [0]  # pruned after epoch 1
    assert ("", "valid_loss") not in read_scalars(logdir)


def test_no_tensorboard_search_logs_no_trial(tmp_path, toy_splits):
    config = RunConfig(
        out=str(tmp_path), tensorboard=False, model=ModelConfig(depth=2, width=16), train=TrainConfig(lr=1e-3, epochs=1)
    )
    run_search(config, SearchConfig(study="quiet", trials=1, space="lr"), toy_splits)
    assert (tmp_path / "search" / "optuna.db").exists() and not list(tmp_path.rglob("*tfevents*"))


def test_the_dashboard_command_is_runnable_for_sqlite_and_masks_a_postgres_password(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert dashboard_command("sqlite:///runs/search/optuna.db") == (
        f"optuna-dashboard sqlite:///{tmp_path / 'runs' / 'search' / 'optuna.db'}"
    )
    assert dashboard_command("postgresql://me:secret@db-host:5433/dnnlab") == (
        "optuna-dashboard 'postgresql+psycopg://me:***@db-host:5433/dnnlab'"
    )
    assert (
        dashboard_command("postgresql://me@db-host/dnnlab") == "optuna-dashboard postgresql+psycopg://me@db-host/dnnlab"
    )


def report_lines(out: Path, capsys) -> dict[str, str]:
    """search-report's output lines that give a command, by what they open."""
    assert main(["search-report", "--study", STUDY, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    lines = {}
    for line in text.splitlines():
        for tool in ("optuna-dashboard", "tensorboard"):
            if f": {tool} " in line:
                lines[tool] = line.split(": ", 1)[1]
    return lines


def dashboard_lists(command: str, study: str, stored: list[optuna.trial.FrozenTrial], log: Path) -> None:
    """Start `command` (search-report's) on a free port; its API must list `study` with the `stored` trials."""
    argv = [*shlex.split(command), "--host", "127.0.0.1", "--port", str(free_port())]
    with server(argv, "/api/meta", log) as base:
        summaries = get_json(base + "/api/studies")["study_summaries"]
        (summary,) = [s for s in summaries if s["study_name"] == study]
        detail = get_json(f"{base}/api/studies/{summary['study_id']}?after=0")
        assert [t["number"] for t in detail["trials"]] == [t.number for t in stored]
        assert [t["state"] for t in detail["trials"]] == ["Complete"] * len(stored)
        assert [t["values"] for t in detail["trials"]] == [[t.value] for t in stored]


@pytest.mark.slow
def test_the_dashboard_lists_the_study_and_its_trials(study_out, capsys, tmp_path):
    command = report_lines(study_out, capsys)["optuna-dashboard"]
    assert command == dashboard_command(default_storage_url(study_out))
    dashboard_lists(command, STUDY, study_trials(study_out), tmp_path / "dashboard.log")


@pytest.mark.slow
def test_the_dashboard_command_for_a_postgres_study_opens_it(postgres_url, capsys, tmp_path, toy_splits):
    study = f"pg-{uuid.uuid4().hex[:8]}"
    config = RunConfig(out=str(tmp_path), model=ModelConfig(depth=2, width=16), train=TrainConfig(lr=1e-3, epochs=1))
    run_search(config, SearchConfig(study=study, storage=postgres_url, trials=2, space="lr"), toy_splits)
    assert main(["search-report", "--study", study, "--storage", postgres_url, "--out", str(tmp_path)]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if ": optuna-dashboard " in line]
    command = line.split(": ", 1)[1]
    assert command.startswith("optuna-dashboard postgresql+psycopg://") and "***" not in command
    stored = optuna.load_study(study_name=study, storage=open_storage(postgres_url)).trials
    dashboard_lists(command, study, stored, tmp_path / "dashboard.log")


@pytest.mark.slow
def test_tensorboard_lists_the_runs_scalar_tags_and_the_trials_hparams(study_out, capsys, tmp_path):
    logdir = report_lines(study_out, capsys)["tensorboard"].split("--logdir ", 1)[1]
    assert Path(logdir) == study_out / "search" / STUDY / "tensorboard"
    argv = ["tensorboard", "--logdir", str(study_out), "--host", "127.0.0.1", "--port", str(free_port())]
    argv += ["--reload_interval", "1"]
    run = "elu/tensorboard"
    with server(argv, "/data/runs", tmp_path / "tensorboard.log") as base:
        tags = wait_until(lambda: scalar_tags(base, runs={f"{run}/train", f"{run}/validation"}), 60, "the run's tags")
        history = read_history_csv(study_out / "elu" / "history.csv")  # every column is a tag, and the LR
        expected = {keras_tag(key) for key in history if key != "epoch"} | {("train", LEARNING_RATE_TAG)}
        assert {(sub, tag) for sub in ("train", "validation") for tag in tags[f"{run}/{sub}"]} == expected
        assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate", "epoch_time"} <= set(tags[f"{run}/train"])
        query = urllib.parse.urlencode({"run": f"{run}/validation", "tag": "epoch_loss"})
        served = [value for _, _, value in get_json(f"{base}/data/plugin/scalars/scalars?{query}")]
        metrics = json.loads((study_out / "elu" / "metrics.json").read_text())
        assert len(served) == metrics["epochs_run"]
        assert served == [value for _, value in read_scalars(study_out / run)[("validation", "epoch_loss")]]
        request = {
            "experimentName": "",
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
            "colParams": [],
            "startIndex": 0,
            "sliceSize": 100,
        }
        groups = get_json(base + "/data/plugin/hparams/session_groups", json.dumps(request).encode())
        names = {group["name"] for group in groups["sessionGroups"]}
        assert {f"trial-{n}" for n in range(TRIALS)} <= names
