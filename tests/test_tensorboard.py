"""TensorBoard event files (issue 18): the logger driven by scripted logs, then real runs whose
events, read back with TensorBoard's own loader, must equal history.csv value for value, also
after a `kill -9` that lands between logging an epoch and checkpointing it."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from dnnlab.cli.flags import config_from_args
from dnnlab.cli.main import build_parser
from dnnlab.config import ModelConfig, RunConfig, TrainConfig
from dnnlab.models.compile import steps_per_epoch
from dnnlab.schedules.one_cycle import one_cycle_schedules
from dnnlab.training.event_files import (
    FAILURE,
    event_files,
    keras_tag,
    read_events,
    read_hparams,
    read_scalars,
)
from dnnlab.training.history import read_history_csv
from dnnlab.training.resume import latest_checkpoint
from dnnlab.training.run_dir import COMPLETED
from dnnlab.training.tensorboard import LEARNING_RATE_TAG, TensorBoardLogger
from dnnlab.training.train import train
from tests.conftest import write_fake_cifar
from tests.test_reliability import cli_args, finish, scripted_env, start_cli, wait_for

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time")


def f32(value: float) -> float:
    """What an event holds for `value`: float32 (TensorBoard's server drops float64 scalars)."""
    return float(np.float32(value))


def steps_and_values(logdir: Path) -> dict[tuple[str, str], dict[int, float]]:
    """{(sub-run, tag): {step: value}}, failing if any step appears twice."""
    found = {}
    for key, pairs in read_scalars(logdir).items():
        steps = [step for step, _ in pairs]
        assert len(steps) == len(set(steps)), f"{key}: steps {steps} appear twice"
        found[key] = dict(pairs)
    return found


def wall_times(logdir: Path, sub: str = "train", tag: str = "epoch_loss") -> dict[int, float]:
    return {e.step: e.wall_time for where, e in read_events(logdir) if where == sub and e.summary.value[0].tag == tag}


def assert_events_equal_history(logdir: Path, history_csv: Path) -> None:
    history = read_history_csv(history_csv)
    epochs = history.pop("epoch")
    assert epochs, "precondition: the run logged epochs"
    events = steps_and_values(logdir)
    for key, values in history.items():
        logged = events[keras_tag(key)]
        assert sorted(logged) == [int(e) for e in epochs], key
        assert [logged[int(e)] for e in epochs] == [f32(v) for v in values], key
    assert sorted(events[("train", LEARNING_RATE_TAG)]) == [int(e) for e in epochs]


class Scripted:
    """Drives a `TensorBoardLogger` as `fit` would, with scripted logs and a scripted learning rate."""

    def __init__(self, logger: TensorBoardLogger, lr: float = 1e-3):
        self.logger = logger
        self.optimizer = SimpleNamespace(learning_rate=lr)
        logger.set_model(SimpleNamespace(optimizer=self.optimizer))

    def fit(self, logs_by_epoch: dict[int, dict[str, float]], lrs: dict[int, float] | None = None) -> None:
        self.logger.on_train_begin()
        for epoch, logs in logs_by_epoch.items():
            self.optimizer.learning_rate = (lrs or {}).get(epoch, self.optimizer.learning_rate)
            self.logger.on_epoch_end(epoch, dict(logs))


def epoch_logs(epoch: int, offset: float = 0.0) -> dict[str, float]:
    """Logs with values no float32 holds exactly, so the round trip is really checked."""
    base = 1.0 / (epoch + 3) + offset
    return {
        "loss": base,
        "accuracy": 0.1 * epoch + 0.01,
        "val_loss": base + 0.123,
        "val_accuracy": 0.3,
        "epoch_time": 1.1,
    }


# --- the logger, with scripted logs ----------------------------------------------------------------


def test_tags_follow_keras_tensorboard():
    assert keras_tag("loss") == ("train", "epoch_loss")
    assert keras_tag("val_accuracy") == ("validation", "epoch_accuracy")
    assert keras_tag("epoch_time") == ("train", "epoch_time")


def test_each_epoch_is_on_disk_when_the_epoch_ends_with_the_learning_rate(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    run = Scripted(logger)
    run.fit({0: epoch_logs(0)}, lrs={0: 3e-4})
    # Not closed: a live TensorBoard (or a kill -9 now) sees the epoch already.
    events = steps_and_values(tmp_path)
    assert events[("train", "epoch_loss")] == {0: f32(epoch_logs(0)["loss"])}
    assert events[("validation", "epoch_loss")] == {0: f32(epoch_logs(0)["val_loss"])}
    assert events[("train", LEARNING_RATE_TAG)] == {0: f32(3e-4)}
    assert {path.parent.name for path in event_files(tmp_path)} == {"train", "validation"}
    logger.close()


def test_nothing_is_written_before_the_first_epoch(tmp_path):
    Scripted(TensorBoardLogger(tmp_path / "logs")).fit({})
    assert event_files(tmp_path) == []


def killed_session(logdir: Path, epochs: int) -> dict[int, dict[str, float]]:
    """A session that logged `epochs` epochs and an HParams start, then died (never finished)."""
    logs = {e: epoch_logs(e) for e in range(epochs)}
    logger = TensorBoardLogger(logdir, hparams={"lr": 1e-3}, trial_id="run")
    Scripted(logger).fit(logs, lrs={e: 1e-3 * (e + 1) for e in range(epochs)})
    logger.close()
    return logs


def test_resume_keeps_the_checkpointed_epochs_and_drops_the_later_ones(tmp_path):
    logs = killed_session(tmp_path, epochs=5)  # killed after logging epoch 5, checkpointed after 3
    before = wall_times(tmp_path)
    history = {key: [logs[e][key] for e in range(3)] for key in HISTORY_KEYS}

    resumed = TensorBoardLogger(tmp_path, history=history, hparams={"lr": 1e-3}, trial_id="run")
    Scripted(resumed, lr=0.5).fit({e: epoch_logs(e, offset=10.0) for e in range(3, 6)})
    resumed.close()

    events = steps_and_values(tmp_path)
    assert events[("train", "epoch_loss")] == {
        **{e: f32(logs[e]["loss"]) for e in range(3)},
        **{e: f32(epoch_logs(e, offset=10.0)["loss"]) for e in range(3, 6)},  # this session's, not the dead one's
    }
    # The LR is not in the history: the checkpointed epochs' values are carried over from the old files.
    assert events[("train", LEARNING_RATE_TAG)] == {0: f32(1e-3), 1: f32(2e-3), 2: f32(3e-3), 3: 0.5, 4: 0.5, 5: 0.5}
    after = wall_times(tmp_path)
    assert [after[step] for step in range(3)] == [before[step] for step in range(3)]
    # One file per sub-run, and the HParams session once.
    assert sorted(path.parent.name for path in event_files(tmp_path)) == [tmp_path.name, "train", "validation"]
    assert [h.WhichOneof("data") for h in read_hparams(tmp_path)] == ["session_start_info"]


def test_a_resume_killed_before_deleting_the_old_files_leaves_each_step_once(tmp_path):
    logs = killed_session(tmp_path, epochs=2)
    for path in event_files(tmp_path):  # the rewrite's copy, left beside the old file
        shutil.copy(path, path.with_name(path.name + ".copy"))
    assert len(read_scalars(tmp_path)[("train", "epoch_loss")]) == 4, "precondition: duplicates on disk"
    history = {key: [logs[e][key] for e in range(2)] for key in HISTORY_KEYS}
    Scripted(TensorBoardLogger(tmp_path, history=history)).fit({2: epoch_logs(2)})
    assert sorted(steps_and_values(tmp_path)[("train", "epoch_loss")]) == [0, 1, 2]


def test_epochs_trained_without_logs_are_written_from_the_history(tmp_path):
    history = {key: [epoch_logs(e)[key] for e in range(2)] for key in HISTORY_KEYS}  # e.g. --no-tensorboard before
    Scripted(TensorBoardLogger(tmp_path, history=history)).fit({2: epoch_logs(2)})
    events = steps_and_values(tmp_path)
    assert events[("validation", "epoch_loss")] == {e: f32(epoch_logs(e)["val_loss"]) for e in range(3)}
    assert events[("train", LEARNING_RATE_TAG)] == {2: f32(1e-3)}  # unknown for the unlogged epochs


def test_finish_records_the_session_end_and_scores(tmp_path):
    logger = TensorBoardLogger(tmp_path, hparams={"lr": 1e-3, "optimizer": "sgd"}, trial_id="trial-3")
    Scripted(logger).fit({0: epoch_logs(0)})
    logger.finish(FAILURE, {"valid_loss": 0.7})
    start, end = read_hparams(tmp_path)
    assert start.session_start_info.group_name == "trial-3"
    assert start.session_start_info.hparams["optimizer"].string_value == "sgd"
    assert end.session_end_info.status == 2  # STATUS_FAILURE
    assert steps_and_values(tmp_path)[("", "valid_loss")] == {0: f32(0.7)}


def test_hparams_need_a_session_name():
    with pytest.raises(ValueError, match="trial_id"):
        TensorBoardLogger("logs", hparams={"lr": 1e-3})


# --- real runs -------------------------------------------------------------------------------------


def one_cycle_config(out: Path, **fields) -> RunConfig:
    return RunConfig(
        out=str(out),
        model=ModelConfig(depth=2, width=16),
        train=TrainConfig(lr=1e-2, epochs=3, batch_size=64, optimizer="sgd", schedule="1cycle"),
        **fields,
    )


def test_a_runs_events_equal_its_history_and_the_1cycle_lr(tmp_path, toy_splits):
    config = one_cycle_config(tmp_path)
    result = train(config, toy_splits, verbose=0)
    logdir = result.run_dir / "tensorboard"
    assert_events_equal_history(logdir, result.run_dir / "history.csv")
    # The LR after each epoch: the 1cycle schedule at the optimizer's step count then.
    total = config.train.epochs * steps_per_epoch(config, toy_splits)
    schedule, per_epoch = one_cycle_schedules(1e-2, total).lr, total // config.train.epochs
    expected = [f32(keras.ops.convert_to_numpy(schedule((e + 1) * per_epoch))) for e in range(3)]
    assert list(steps_and_values(logdir)[("train", LEARNING_RATE_TAG)].values()) == expected
    assert expected[0] > expected[-1] * 100, "precondition: the LR moved along the cycle"
    start, end = read_hparams(logdir)
    assert start.session_start_info.hparams["schedule"].string_value == "1cycle"
    assert end.session_end_info.status == 1  # STATUS_SUCCESS
    scores = steps_and_values(logdir)
    assert scores[("", "valid_accuracy")] == {0: f32(result.metrics["valid_accuracy"])}


def test_no_tensorboard_writes_no_event_files_and_the_run_is_reused_either_way(tmp_path, toy_splits):
    args = build_parser().parse_args(["train", "--no-tensorboard", "--out", str(tmp_path)])
    assert config_from_args(args).tensorboard is False
    off = train(one_cycle_config(tmp_path, tensorboard=False), toy_splits, verbose=0)
    assert off.status == COMPLETED
    assert not (off.run_dir / "tensorboard").exists() and not list(tmp_path.rglob("*tfevents*"))
    # What is logged does not change what is computed: with logs on, the finished run is reused.
    on = train(one_cycle_config(tmp_path, tensorboard=True), toy_splits, verbose=0)
    assert on.metrics == off.metrics and not list(tmp_path.rglob("*tfevents*"))


# --- a real kill -9 between logging an epoch and checkpointing it ---------------------------------


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    folder, checksums = write_fake_cifar(root, per_batch=200)
    (root / "checksums.json").write_text(json.dumps(checksums))
    return SimpleNamespace(root=root, checksum_file=root / "checksums.json")


@pytest.mark.slow
def test_kill_9_after_logging_an_epoch_then_resume_logs_each_epoch_once(fake_data, tmp_path):
    marker = tmp_path / "held"
    first = start_cli(cli_args(fake_data, tmp_path), scripted_env(fake_data, hold_record=f"3:{marker}"))
    wait_for(marker, first)
    killed_at = time.time()
    first.send_signal(signal.SIGKILL)
    finish(first)
    run_dir = tmp_path / "bn"
    logdir = run_dir / "tensorboard"
    assert latest_checkpoint(run_dir / "checkpoint").epoch == 2
    stale = steps_and_values(logdir)[("train", "epoch_loss")]
    assert sorted(stale) == [0, 1, 2], "precondition: epoch 3 was logged, not checkpointed"
    walls = wall_times(logdir)

    done = finish(start_cli(cli_args(fake_data, tmp_path), scripted_env(fake_data)))

    assert done.returncode == 0, done.stderr
    assert "after epoch 2" in done.stdout and f"watch it live: tensorboard --logdir {run_dir}\n" in done.stdout
    assert_events_equal_history(logdir, run_dir / "history.csv")
    after = wall_times(logdir)
    assert after[0] == walls[0] and after[1] == walls[1]  # kept from the killed session
    assert after[2] > killed_at  # epoch 3 was trained again, and logged once
    assert [h.WhichOneof("data") for h in read_hparams(logdir)] == ["session_start_info", "session_end_info"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == COMPLETED and metrics["resumed_from_epoch"] == 2
    assert steps_and_values(logdir)[("", "valid_loss")] == {0: f32(metrics["valid_loss"])}
