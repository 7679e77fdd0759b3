import csv
import json

import keras
import numpy as np
import pytest

from dnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from dnnlab.models.build import build_model
from dnnlab.training.history import read_history_csv
from dnnlab.training.run_dir import METRICS_FILE, RunDir
from dnnlab.training.train import train
from tests.conftest import synthetic_splits

SMALL = ModelConfig(depth=3, width=32)


def run_config(tmp_path, model=SMALL, **train_fields) -> RunConfig:
    train_fields = {"lr": 1e-3, "epochs": 5, "batch_size": 32, **train_fields}
    return RunConfig(variant="elu", name="toy", out=str(tmp_path), model=model, train=TrainConfig(**train_fields))


def test_loss_decreases_on_a_toy_problem(tmp_path, toy_splits):
    result = train(run_config(tmp_path, epochs=4), toy_splits, verbose=0)
    losses = result.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert result.metrics["valid_accuracy"] > 0.8


def test_saturating_input_scale_still_learns(tmp_path, toy_splits):
    """Raw 0-255 pixels into the 20 x 100 He/ELU net at the textbook's lr 5e-5.

    With a softmax output and the probability loss (the textbook's recipe) the loss is flat
    from the first step: the saturated softmax is clipped inside the loss, so its gradient
    is zero. Our logits output keeps the gradient alive and learns.
    """
    raw = ModelConfig(input_scaling="none")
    result = train(run_config(tmp_path, model=raw, lr=5e-5, epochs=4), toy_splits, verbose=0)
    assert result.history["loss"][-1] < 0.5 * result.history["loss"][0]
    assert result.metrics["valid_accuracy"] > 0.3  # chance is 0.1

    keras.utils.set_random_seed(42)
    softmax_net = keras.Sequential(build_model(raw).layers + [keras.layers.Softmax()])
    softmax_net.compile(keras.optimizers.Nadam(5e-5), keras.losses.SparseCategoricalCrossentropy())
    stuck = softmax_net.fit(toy_splits.x_train, toy_splits.y_train, epochs=2, verbose=0).history["loss"]
    assert stuck[-1] == pytest.approx(stuck[0], rel=1e-3), "the textbook recipe should not learn here"


def test_best_weights_are_restored_even_without_early_stop(tmp_path):
    # Random labels: the net memorizes the training set and validation loss rises after a few
    # epochs, so the best epoch is not the last one and patience never runs out.
    rng = np.random.default_rng(1)
    splits = synthetic_splits(n_train=256, n_valid=256, noise=200.0)
    object.__setattr__(splits, "y_train", rng.integers(0, 10, len(splits.y_train)))
    config = run_config(tmp_path, model=ModelConfig(depth=2, width=256), lr=3e-3, epochs=12, patience=100)
    result = train(config, splits, verbose=0)
    history = read_history_csv(result.run_dir / "history.csv")
    best = int(np.argmin(history["val_loss"]))
    assert result.metrics["epochs_run"] == 12  # early stopping did not trigger
    assert best < 11, "precondition: the best epoch is not the last"
    assert result.metrics["best_epoch"] == best + 1
    assert result.metrics["valid_loss"] == pytest.approx(history["val_loss"][best], rel=1e-4)
    saved = keras.saving.load_model(result.run_dir / "best.keras")
    loss, _ = saved.evaluate(splits.x_valid, splits.y_valid, verbose=0)
    assert loss == pytest.approx(history["val_loss"][best], rel=1e-4)


def test_run_folder_has_everything(tmp_path, toy_splits):
    result = train(run_config(tmp_path, epochs=2), toy_splits, verbose=0)
    files = {p.name for p in result.run_dir.iterdir()}
    assert {"config.json", "history.csv", "metrics.json", "best.keras"} <= files
    metrics = json.loads((result.run_dir / METRICS_FILE).read_text())
    expected = {
        "status",
        "variant",
        "lr",
        "seed",
        "epochs_run",
        "best_epoch",
        "valid_loss",
        "valid_accuracy",
        "test_loss",
        "test_accuracy",
        "mean_epoch_seconds",
        "train_seconds_per_epoch",
        "train_cpu_seconds_per_epoch",
        "time_to_best_seconds",
        "wall_seconds",
        "train_size",
        "versions",
    }
    assert expected <= set(metrics)
    assert metrics["versions"]["keras"] == keras.__version__
    assert metrics["epochs_run"] == 2 and metrics["lr"] == 1e-3
    with open(result.run_dir / "history.csv") as handle:
        header = next(csv.reader(handle))
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_time", "train_time", "train_cpu_time"} <= set(header)
    history = RunDir(result.run_dir).history()
    assert all(0 < t < e for t, e in zip(history["train_time"], history["epoch_time"]))  # validation excluded
    assert metrics["train_seconds_per_epoch"] == history["train_time"][1]  # 2 epochs: the first one compiles
    saved = RunConfig.from_json(result.run_dir / "config.json")
    assert saved == run_config(tmp_path, epochs=2)


def test_same_seed_same_result(tmp_path, toy_splits):
    first = train(run_config(tmp_path / "a", epochs=2), toy_splits, verbose=0)
    second = train(run_config(tmp_path / "b", epochs=2), toy_splits, verbose=0)
    assert first.history["loss"] == second.history["loss"]


def test_variant_default_lr_is_the_textbook_one(tmp_path):
    assert RunConfig(variant="bn", train=TrainConfig()).lr == 5e-4
    assert RunConfig(variant="bn", train=TrainConfig(lr=1e-3)).lr == 1e-3


def test_data_config_round_trips():
    config = RunConfig(variant="selu", data=DataConfig(subset=100), train=TrainConfig(lr="auto"))
    assert RunConfig.from_dict(config.to_dict()) == config


def test_cap_limited_only_when_the_cap_may_have_cut_the_run_short():
    from dnnlab.training.history import cap_limited

    assert cap_limited(best_epoch=95, epochs_run=100, max_epochs=100, patience=10)
    assert not cap_limited(best_epoch=90, epochs_run=100, max_epochs=100, patience=10)  # early stopping's call
    assert not cap_limited(best_epoch=30, epochs_run=40, max_epochs=100, patience=10)  # stopped early
    assert cap_limited(best_epoch=18, epochs_run=18, max_epochs=18, patience=18)  # the old part a: always


def test_epoch_timer_splits_training_from_validation_and_s_per_epoch_skips_the_first():
    from dnnlab.training.callbacks import EpochTimer
    from dnnlab.training.history import seconds_per_epoch, training_seconds

    # Per epoch the timer reads the wall clock at its begin, where validation starts and at its end,
    # and the CPU clock at the first two. The first epoch is slow: it compiles.
    wall = iter([0.0, 10.0, 11.0, 11.0, 13.0, 14.0, 14.0, 16.0, 17.0, 17.0, 19.5, 19.5])
    cpu = iter([0.0, 20.0, 20.0, 24.0, 24.0, 28.0, 28.0, 33.0])
    timer = EpochTimer(clock=wall.__next__, cpu_clock=cpu.__next__)
    timer.on_train_begin()
    history = {}
    for epoch in range(4):
        timer.on_epoch_begin(epoch)
        if epoch < 3:
            timer.on_test_begin()  # the last epoch validates nothing: training is the whole epoch
        logs = {}
        timer.on_epoch_end(epoch, logs)
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
    assert history["epoch_time"] == [11.0, 3.0, 3.0, 2.5]
    assert history["train_time"] == [10.0, 2.0, 2.0, 2.5]
    assert history["train_cpu_time"] == [20.0, 4.0, 4.0, 5.0]
    assert seconds_per_epoch(history["train_time"]) == pytest.approx(6.5 / 3)  # epoch 1 left out
    assert seconds_per_epoch([7.0]) is None  # one epoch: no steady rate to measure
    assert training_seconds(history["train_cpu_time"], 2) == pytest.approx(13 / 3 + 4.0)  # epoch 1 at the steady rate
