"""Crash safety (issue 8): kill -9 and resume, Ctrl-C, divergence, bad input, atomic writes, the lock.

The CLI runs in real subprocesses (`tests.scripted_cli`) on a small fake CIFAR-10 folder and is
held, killed or signalled at scripted points; the uninterrupted reference runs in-process on
the same data with the same flags, so "resumed == uninterrupted" is checked number for number.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from dnnlab.cli.flags import config_from_args
from dnnlab.cli.main import build_parser
from dnnlab.config import ModelConfig, RunConfig, TrainConfig, config_differences
from dnnlab.data import OFFICIAL_MD5, TRAIN_FILES, load_splits
from dnnlab.files import save_model_atomic, write_json_atomic
from dnnlab.training.history import read_history_csv
from dnnlab.training.resume import latest_checkpoint
from dnnlab.training.run_dir import COMPLETED, DIVERGED, INTERRUPTED, RunDir
from dnnlab.training.run_lock import LOCK_FILE, RunLock, RunLockedError
from dnnlab.training.stops import Diverged, Interrupted, StopOnDivergence, StopOnSignal
from dnnlab.training.train import train
from tests.conftest import synthetic_splits, write_fake_cifar

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 300  # seconds for one CLI subprocess; generous because the CI machine's 2 cores are shared
# Small but real: BN and dropout (whose statistics and RNG state a resume must restore), random
# labels so validation loss soon rises and early stopping's state decides when the run ends.
FLAGS = [
    "--variant",
    "bn",
    "--dropout",
    "dropout",
    "--depth",
    "3",
    "--width",
    "32",
    "--valid-size",
    "200",
    "--epochs",
    "10",
    "--patience",
    "2",
    "--lr",
    "1e-3",
    "--no-download",
]
SCORES = ("epochs_run", "best_epoch", "valid_loss", "valid_accuracy", "test_loss", "test_accuracy", "status")


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    folder, checksums = write_fake_cifar(root, per_batch=200)
    checksum_file = root / "checksums.json"
    checksum_file.write_text(json.dumps(checksums))
    return SimpleNamespace(root=root, folder=folder, checksums=checksums, checksum_file=checksum_file)


def cli_args(fake_data, out: Path, *extra: str) -> list[str]:
    return ["train", *FLAGS, "--data-dir", str(fake_data.root), "--out", str(out), *extra]


def cli_config(fake_data, out: Path) -> RunConfig:
    return config_from_args(build_parser().parse_args(cli_args(fake_data, out)))


@pytest.fixture
def fake_checksums(fake_data, monkeypatch):
    """Let the in-process loader accept the fake folder, as `scripted_cli` does in subprocesses."""
    for name, md5 in fake_data.checksums.items():
        monkeypatch.setitem(OFFICIAL_MD5, name, md5)


@pytest.fixture(scope="module")
def reference(fake_data, tmp_path_factory):
    """The uninterrupted run every interrupted-and-resumed run must reproduce."""
    with pytest.MonkeyPatch.context() as patch:
        for name, md5 in fake_data.checksums.items():
            patch.setitem(OFFICIAL_MD5, name, md5)
        result = train(cli_config(fake_data, tmp_path_factory.mktemp("reference")), verbose=0)
    # Preconditions that make the comparisons meaningful.
    assert result.status == COMPLETED
    assert 3 < result.metrics["epochs_run"] < 10, "early stopping should end the reference run"
    return result


def scripted_env(fake_data, **settings: str) -> dict[str, str]:
    env = {**os.environ, "DNNLAB_TEST_CHECKSUMS": str(fake_data.checksum_file)}
    env.update({f"DNNLAB_TEST_{key.upper()}": value for key, value in settings.items()})
    return env


def start_cli(args: list[str], env: dict[str, str], module: str = "tests.scripted_cli") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(proc: subprocess.Popen) -> SimpleNamespace:
    stdout, stderr = proc.communicate(timeout=TIMEOUT)
    return SimpleNamespace(returncode=proc.returncode, stdout=stdout, stderr=stderr)


def wait_for(marker: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not marker.exists():
        if proc.poll() is not None:
            done = finish(proc)
            pytest.fail(f"the run ended (exit {done.returncode}) before {marker.name}:\n{done.stdout}\n{done.stderr}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run never reached {marker.name}")
        time.sleep(0.05)


def assert_one_line_error(done: SimpleNamespace, fragment: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert fragment in lines[0] and "Traceback" not in done.stderr, lines[0]


def assert_same_run(result_metrics, history, reference) -> None:
    for key in SCORES:
        assert result_metrics[key] == reference.metrics[key], key
    assert set(history) == set(reference.history)
    for key in set(history) - {"epoch_time", "train_time", "train_cpu_time"}:  # timings differ run to run
        assert history[key] == reference.history[key], key


# --- 1 and 7: kill -9 mid-epoch, a concurrent second run, rerun ---------------------------------


@pytest.fixture(scope="module")
def killed_run(fake_data, tmp_path_factory):
    """A CLI run held inside epoch 3 (after 5 of its 25 batches), a second run of the same folder
    started meanwhile, then `kill -9` of the first."""
    out = tmp_path_factory.mktemp("killed")
    marker = out / "held"
    first = start_cli(cli_args(fake_data, out), scripted_env(fake_data, hold=f"3:5:{marker}"))
    wait_for(marker, first)
    second = finish(start_cli(cli_args(fake_data, out), scripted_env(fake_data)))
    first.send_signal(signal.SIGKILL)
    finish(first)
    return SimpleNamespace(out=out, run_dir=out / "bn", first=first, second=second)


def test_a_second_concurrent_run_refuses(killed_run):
    assert_one_line_error(killed_run.second, f"is in use by process {killed_run.first.pid}")


def test_kill_9_mid_epoch_then_rerun_resumes_to_the_uninterrupted_result(killed_run, fake_data, reference):
    run_dir = killed_run.run_dir
    assert killed_run.first.returncode == -signal.SIGKILL
    assert not (run_dir / "metrics.json").exists()
    assert latest_checkpoint(run_dir / "checkpoint").epoch == 2
    assert (run_dir / LOCK_FILE).read_text().strip() == str(killed_run.first.pid)  # a stale lock

    done = finish(start_cli(cli_args(fake_data, killed_run.out), scripted_env(fake_data)))

    assert done.returncode == 0, done.stderr
    assert f"from process {killed_run.first.pid}, which no longer runs" in done.stdout
    assert "resuming" in done.stdout and "after epoch 2" in done.stdout
    history = read_history_csv(run_dir / "history.csv")
    assert history.pop("epoch") == list(range(reference.metrics["epochs_run"]))  # each epoch exactly once
    assert_same_run(json.loads((run_dir / "metrics.json").read_text()), history, reference)
    assert not (run_dir / "checkpoint").exists() and not (run_dir / LOCK_FILE).exists()


# --- 2: Ctrl-C ------------------------------------------------------------------------------------


def test_ctrl_c_exits_130_keeps_the_run_and_resumes(fake_data, reference, tmp_path, fake_checksums):
    marker = tmp_path / "held"
    proc = start_cli(cli_args(fake_data, tmp_path), scripted_env(fake_data, hold=f"2:3:{marker}"))
    wait_for(marker, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)  # let the handler run before the held batch is released
    marker.unlink()
    done = finish(proc)

    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    assert f"to resume, run the same command again: dnnlab {' '.join(cli_args(fake_data, tmp_path))}" in done.stderr
    run_dir = tmp_path / "bn"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == INTERRUPTED and metrics["signal"] == "SIGINT"
    assert metrics["stopped_in_epoch"] == 2 and metrics["epochs_run"] == 1
    history = read_history_csv(run_dir / "history.csv")
    assert history["epoch"] == [0]  # the cut-short epoch 2 is not logged
    assert history["val_loss"] == reference.history["val_loss"][:1]
    splits = load_splits(fake_data.root, valid_size=200)
    best = keras.saving.load_model(run_dir / "best.keras")
    assert best.evaluate(splits.x_valid, splits.y_valid, verbose=0)[0] == pytest.approx(
        history["val_loss"][0], rel=1e-5
    )
    assert latest_checkpoint(run_dir / "checkpoint").epoch == 1

    resumed = train(cli_config(fake_data, tmp_path), verbose=0)
    assert resumed.metrics["resumed_from_epoch"] == 1
    assert_same_run(resumed.metrics, resumed.history, reference)


# --- 4: divergence --------------------------------------------------------------------------------


def test_nan_at_epoch_3_is_diverged_with_the_message(fake_data, tmp_path, fake_checksums):
    done = finish(start_cli(cli_args(fake_data, tmp_path), scripted_env(fake_data, nan_epoch="3")))

    assert_one_line_error(done, "diverged at epoch 3 (lr=0.001); try a lower learning rate")
    run_dir = tmp_path / "bn"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == DIVERGED and metrics["stopped_in_epoch"] == 3 and metrics["epochs_run"] == 2
    history = read_history_csv(run_dir / "history.csv")
    assert history["epoch"] == [0, 1] and np.isfinite(history["loss"]).all()
    assert np.isfinite(metrics["valid_loss"])  # the best model is from before the divergence
    assert not (run_dir / "checkpoint").exists()

    # Finished: the same config again is reused, not retrained (it would only diverge again).
    again = train(cli_config(fake_data, tmp_path), verbose=0)
    assert again.diverged and again.metrics == metrics


def test_stop_on_divergence_raises_with_the_epoch():
    stop = StopOnDivergence()
    stop.on_epoch_end(3, {"loss": 2.3, "val_loss": float("nan")})  # a finite training loss goes on
    with pytest.raises(Diverged) as raised:
        stop.on_epoch_end(4, {"loss": float("inf")})
    assert raised.value.epoch == 5
    with pytest.raises(Diverged):
        stop.on_epoch_end(5, {"loss": float("nan")})


# --- 2: the signal callback on its own --------------------------------------------------------------


def test_stop_on_signal_stops_at_the_next_batch_and_restores_handlers(capsys):
    before = signal.getsignal(signal.SIGINT)
    with StopOnSignal() as stop:
        stop.on_epoch_begin(6)
        stop.on_train_batch_begin(0)  # nothing received yet: no stop
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(Interrupted) as raised:
            stop.on_train_batch_begin(1)
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C does not wait for the batch
            os.kill(os.getpid(), signal.SIGINT)
    assert raised.value.epoch == 7 and raised.value.signal_number == signal.SIGINT
    assert "dnnlab: stopping at the end of this batch" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before


# --- 5: bad input ---------------------------------------------------------------------------------


def unwritable_folder(tmp_path: Path) -> Path:
    if os.geteuid() == 0:  # root writes through permission bits; sysfs refuses even root
        return Path("/sys/dnnlab-test")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    return folder


# Unknown variant and negative/zero lr and batch size are in tests/test_cli.py.
BAD_INPUTS = {
    "missing data": "CIFAR-10 not found",
    "corrupt data (official md5s)": "is corrupt or incomplete (md5 mismatch)",
    "a missing batch": "data_batch_3 is missing",
    "zero epochs": "--epochs must be >= 1, got 0",
    "subset larger than the data": "--subset 5000 is larger than the 800 training images",
    "out is a file": "is a file; pass --out a folder",
    "out not writable": "pass a writable --out",
    "run folder of another config": "holds a run of another config (train.lr: 0.002 -> 0.001)",
}


@pytest.fixture(scope="module")
def bad_input_runs(fake_data, tmp_path_factory):
    """All bad-input CLI runs, started at once (each pays the interpreter's start-up cost)."""
    tmp = tmp_path_factory.mktemp("bad")
    incomplete = tmp / "incomplete"
    shutil.copytree(fake_data.root, incomplete)
    (incomplete / "cifar-10-batches-py" / TRAIN_FILES[2]).unlink()
    (tmp / "empty").mkdir()
    (tmp / "a-file").write_text("not a folder")
    other = tmp / "other"
    config = cli_config(fake_data, other)
    write_json_atomic(
        config.run_dir / "config.json",
        RunConfig.from_dict({**config.to_dict(), "train": {**config.to_dict()["train"], "lr": 2e-3}}).to_dict(),
    )
    env = scripted_env(fake_data)
    # Nothing to fall back on: no $DNNLAB_DATA (CI sets it) and an empty Keras cache.
    no_data_env = {**{k: v for k, v in env.items() if k != "DNNLAB_DATA"}, "KERAS_HOME": str(tmp / "empty")}

    def args(case: str, *extra: str) -> list[str]:
        # One run folder per case: they run at once, and a shared folder would be locked.
        # A flag given twice takes its last value, so `extra` overrides cli_args' defaults.
        return cli_args(fake_data, tmp / "runs" / case.replace(" ", "-"), *extra)

    runs = {  # case: (arguments, module, environment)
        "missing data": (args("missing", "--data-dir", str(tmp / "empty")), "dnnlab", no_data_env),
        "corrupt data (official md5s)": (args("corrupt"), "dnnlab", env),
        "a missing batch": (args("batch", "--data-dir", str(incomplete)), "tests.scripted_cli", env),
        "zero epochs": (args("zero", "--epochs", "0"), "dnnlab", env),
        "subset larger than the data": (args("subset", "--subset", "5000"), "tests.scripted_cli", env),
        "out is a file": (args("file", "--out", str(tmp / "a-file")), "tests.scripted_cli", env),
        "out not writable": (args("ro", "--out", str(unwritable_folder(tmp))), "tests.scripted_cli", env),
        "run folder of another config": (args("other", "--out", str(other)), "tests.scripted_cli", env),
    }
    return {case: start_cli(argv, env, module) for case, (argv, module, env) in runs.items()}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_and_exit_2(bad_input_runs, case):
    assert_one_line_error(finish(bad_input_runs[case]), BAD_INPUTS[case])


def test_config_differences_name_fields_and_ignore_locations(tmp_path):
    saved = RunConfig(variant="bn", out="a", train=TrainConfig(lr=1e-3, epochs=5)).to_dict()
    moved = RunConfig(variant="bn", out="b", name="x", train=TrainConfig(lr=1e-3, epochs=5)).to_dict()
    changed = RunConfig(variant="bn", out="a", train=TrainConfig(lr=1e-3, epochs=6, patience=3)).to_dict()
    assert config_differences(saved, moved) == []
    assert config_differences(saved, changed) == ["train.epochs: 5 -> 6", "train.patience: 20 -> 3"]
    write_json_atomic(tmp_path / "config.json", saved)
    with pytest.raises(Exception, match=r"train\.epochs: 5 -> 6; train\.patience: 20 -> 3"):
        RunDir(tmp_path).check_config(RunConfig.from_dict(changed))


# --- 6: atomic writes -----------------------------------------------------------------------------


@pytest.fixture
def crash_on_rename(monkeypatch):
    """`os.replace` fails: the moment after the temp file is complete, before it takes the name."""

    def crash(src, dst):
        assert Path(src).exists(), "the temp file should be written before the rename"
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", crash)


def test_a_crash_mid_write_leaves_the_old_json_intact(tmp_path, crash_on_rename):
    path = tmp_path / "metrics.json"
    path.write_text('{"status": "completed"}\n')
    with pytest.raises(OSError, match="simulated crash"):
        write_json_atomic(path, {"status": "interrupted"})
    assert json.loads(path.read_text()) == {"status": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left behind


def test_atomic_writes_keep_the_usual_file_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "metrics.json", {})
    finally:
        os.umask(umask)
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == 0o644  # not a temp file's private 0600


def test_a_crash_mid_save_leaves_the_old_model_intact(tmp_path, request):
    path = tmp_path / "best.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(path)
    new = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    request.getfixturevalue("crash_on_rename")
    with pytest.raises(OSError, match="simulated crash"):
        save_model_atomic(new, path)
    assert keras.saving.load_model(path).output_shape == (None, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["best.keras"]


def test_a_crash_mid_checkpoint_resumes_from_the_previous_one(tmp_path, monkeypatch):
    splits = synthetic_splits(n_train=256, n_valid=128, n_test=128)
    config = RunConfig(
        variant="elu",
        name="toy",
        out=str(tmp_path / "crashed"),
        model=ModelConfig(depth=2, width=32, dropout="dropout"),
        train=TrainConfig(lr=1e-3, epochs=4, batch_size=32),
    )
    rename, commits = os.rename, []

    def crash_on_third_commit(src, dst):
        if Path(src).name.startswith(".staging."):
            commits.append(dst)
            if len(commits) == 3:
                raise OSError("simulated crash")
        return rename(src, dst)

    monkeypatch.setattr(os, "rename", crash_on_third_commit)
    with pytest.raises(OSError, match="simulated crash"):
        train(config, splits, verbose=0)
    monkeypatch.undo()
    run_dir = config.run_dir
    assert latest_checkpoint(run_dir / "checkpoint").epoch == 2
    assert not (run_dir / LOCK_FILE).exists()

    resumed = train(config, splits, verbose=0)
    straight = train(dataclasses.replace(config, out=str(tmp_path / "straight")), splits, verbose=0)
    assert resumed.metrics["resumed_from_epoch"] == 2
    assert_same_run(resumed.metrics, resumed.history, straight)


# --- 7: the lock on its own -----------------------------------------------------------------------


def test_lock_refuses_a_live_owner_and_takes_over_a_dead_ones(tmp_path):
    with RunLock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
        with pytest.raises(RunLockedError, match=f"in use by process {os.getpid()}"):
            RunLock(tmp_path).acquire()
    assert not (tmp_path / LOCK_FILE).exists()

    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / LOCK_FILE).write_text(f"{dead.pid}\n")  # left behind by a killed run
    with RunLock(tmp_path) as lock:
        assert lock.stale_owner == dead.pid
        assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
