"""The textbook's optimizers and LR schedules as `dnnlab train` builds them (`--optimizer`, `--schedule`).

The schedules are checked against the book's formulas, written here apart from dnnlab's code
(Géron, ch. 11, "Learning Rate Scheduling"), at known steps; the optimizers against the
hyperparameters the book gives them.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import keras
import numpy as np
import pytest

from dnnlab.config import OPTIMIZERS, SCHEDULES, ModelConfig, RunConfig, TrainConfig
from dnnlab.models.compile import make_optimizer
from dnnlab.schedules.decay import decay_schedule, performance_scheduler
from dnnlab.schedules.momentum_sgd import ScheduledMomentumSGD
from dnnlab.training.resume import latest_checkpoint
from dnnlab.training.train import train
from tests.conftest import synthetic_splits

BOOK_STEPS_PER_EPOCH = 1719  # Fashion MNIST's 55,000 training images at batch 32


def book_power(step, lr0, steps_per_epoch):
    """InverseTimeDecay(lr0, decay_steps=10_000, decay_rate=1.0) of the book's runs, s kept in epochs."""
    s = 10_000 * steps_per_epoch / BOOK_STEPS_PER_EPOCH
    return lr0 / (1 + step / s) ** 1


def book_exponential(step, lr0, steps_per_epoch):
    """`lr0 * 0.1**(epoch / 20)`, per step."""
    return lr0 * 0.1 ** (step / (20 * steps_per_epoch))


def book_piecewise(step, lr0, steps_per_epoch):
    """The book's `piecewise_constant_fn(epoch)`: 0.01 before epoch 5, 0.005 before 15, then 0.001."""
    epoch = step // steps_per_epoch
    return lr0 * (1.0 if epoch < 5 else 0.5 if epoch < 15 else 0.1)


BOOK = {"power": book_power, "exponential": book_exponential, "piecewise": book_piecewise}


def value(schedule, step) -> float:
    return float(keras.ops.convert_to_numpy(schedule(step)))


@pytest.mark.parametrize("name", sorted(BOOK))
@pytest.mark.parametrize("steps_per_epoch", [7, 1407, BOOK_STEPS_PER_EPOCH])
def test_decay_schedules_equal_the_books_formulas_at_known_steps(name, steps_per_epoch):
    lr0 = 3e-3
    schedule = decay_schedule(name, lr0, steps_per_epoch)
    epochs = [0, 1, 4, 5, 6, 14, 15, 16, 20, 40, 99]
    steps = sorted({max(0, e * steps_per_epoch + d) for e in epochs for d in (-1, 0, 1)})
    ours = [value(schedule, step) for step in steps]
    book = [BOOK[name](step, lr0, steps_per_epoch) for step in steps]
    np.testing.assert_allclose(ours, book, rtol=2e-5)


def test_the_books_own_step_scales_come_out_at_the_books_step_counts():
    lr0 = 0.01  # the book's example: at its 1,719 steps per epoch these are its literal numbers
    assert value(decay_schedule("power", lr0, BOOK_STEPS_PER_EPOCH), 10_000) == pytest.approx(0.005, rel=1e-5)
    assert value(decay_schedule("exponential", lr0, BOOK_STEPS_PER_EPOCH), 20 * 1719) == pytest.approx(0.001, rel=1e-5)
    piecewise = decay_schedule("piecewise", lr0, BOOK_STEPS_PER_EPOCH)
    assert [value(piecewise, s) for s in (5 * 1719 - 1, 5 * 1719, 15 * 1719 - 1, 15 * 1719)] == pytest.approx(
        [0.01, 0.005, 0.005, 0.001], rel=1e-6
    )
    with pytest.raises(ValueError, match="unknown decay schedule"):
        decay_schedule("cosine", lr0, 10)


def test_performance_scheduling_is_keras_reduce_lr_on_plateau_with_the_books_settings():
    plateau = performance_scheduler("performance")
    assert type(plateau) is keras.callbacks.ReduceLROnPlateau
    assert (plateau.monitor, plateau.factor, plateau.patience) == ("val_loss", 0.5, 5)
    assert all(performance_scheduler(name) is None for name in SCHEDULES if name != "performance")


# The optimizer each name builds, and the hyperparameters the book gives it (Keras's config keys).
EXPECTED = {
    "sgd": (keras.optimizers.SGD, {"momentum": 0.9, "nesterov": False}),
    "nesterov": (keras.optimizers.SGD, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (keras.optimizers.Adagrad, {"initial_accumulator_value": 0.1, "epsilon": 1e-7}),
    "rmsprop": (keras.optimizers.RMSprop, {"rho": 0.9, "momentum": 0.0}),
    "adam": (keras.optimizers.Adam, {"beta_1": 0.9, "beta_2": 0.999, "amsgrad": False}),
    "adamax": (keras.optimizers.Adamax, {"beta_1": 0.9, "beta_2": 0.999}),
    "nadam": (keras.optimizers.Nadam, {"beta_1": 0.9, "beta_2": 0.999}),
    "adamw": (keras.optimizers.AdamW, {"beta_1": 0.9, "beta_2": 0.999, "weight_decay": 1e-5}),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_is_keras_own_with_the_books_hyperparameters(name):
    cls, hyperparameters = EXPECTED[name]
    optimizer = make_optimizer(TrainConfig(optimizer=name), 2e-3)
    config = optimizer.get_config()
    assert type(optimizer) is cls
    assert config["learning_rate"] == pytest.approx(2e-3)
    assert {key: config[key] for key in hyperparameters} == pytest.approx(hyperparameters)


def test_plain_sgd_is_sgd_with_momentum_0_and_1cycle_cycles_nesterovs_momentum():
    assert make_optimizer(TrainConfig(optimizer="sgd", momentum=0.0), 0.1).get_config()["momentum"] == 0.0
    cycled = make_optimizer(TrainConfig(optimizer="nesterov", schedule="1cycle", epochs=2), 0.1, steps_per_epoch=10)
    assert isinstance(cycled, ScheduledMomentumSGD) and cycled.nesterov
    assert value(cycled.momentum_schedule, 0) == pytest.approx(0.95)


@pytest.mark.parametrize("schedule", ["power", "exponential", "piecewise"])
def test_the_compiled_step_follows_a_decay_schedule_batch_by_batch(tmp_path, schedule):
    """After a real fit (fused steps included), the optimizer's LR is the book's at its step count."""
    splits = synthetic_splits(n_train=224, n_valid=64, n_test=32)
    lr0 = 1e-2
    config = RunConfig(
        name=schedule,
        out=str(tmp_path),
        model=ModelConfig(depth=2, width=16),
        train=TrainConfig(lr=lr0, epochs=6, patience=6, batch_size=32, optimizer="adam", schedule=schedule),
    )
    optimizer = train(config, splits, verbose=0).model.optimizer
    steps = int(keras.ops.convert_to_numpy(optimizer.iterations))
    assert steps == 6 * 7, "one optimizer step per batch"
    expected = BOOK[schedule](steps, lr0, 7)
    assert expected < lr0  # so the equality below says the schedule ran
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(expected, rel=1e-5)


def plateau_config(out: Path) -> RunConfig:
    return RunConfig(
        name="plateau",
        out=str(out),
        model=ModelConfig(depth=2, width=32),
        train=TrainConfig(lr=3e-3, epochs=14, patience=14, batch_size=32, schedule="performance"),
    )


def test_performance_scheduling_halves_the_lr_and_resumes_exactly(tmp_path, monkeypatch):
    splits = synthetic_splits(n_train=128, n_valid=64, n_test=32)
    # Validation labels the images do not predict: the validation loss rises after epoch 1, so
    # the plateau rule counts epochs without progress and halves the LR every 5 of them.
    splits = dataclasses.replace(splits, y_valid=np.random.default_rng(1).integers(0, 10, len(splits.y_valid)))
    straight = train(plateau_config(tmp_path / "straight"), splits, verbose=0)
    lrs = straight.history["learning_rate"]
    first_cut = next(i for i, (a, b) in enumerate(zip(lrs, lrs[1:])) if b < a) + 1
    assert lrs[first_cut] == pytest.approx(lrs[first_cut - 1] / 2), "precondition: the LR was halved"
    # Crash after the epoch before the first cut, while the plateau rule is counting epochs without progress.
    crash_at = first_cut
    rename, commits = os.rename, []

    def crash(src, dst):
        if Path(src).name.startswith(".staging."):
            commits.append(dst)
            if len(commits) == crash_at:
                raise OSError("simulated crash")
        return rename(src, dst)

    config = plateau_config(tmp_path / "crashed")
    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="simulated crash"):
        train(config, splits, verbose=0)
    monkeypatch.undo()
    checkpoint = latest_checkpoint(config.run_dir / "checkpoint")
    assert checkpoint.plateau["wait"] > 0, "precondition: the resume must restore a count in progress"
    resumed = train(config, splits, verbose=0)
    assert resumed.metrics["resumed_from_epoch"] == crash_at - 1
    assert resumed.history["learning_rate"] == lrs
    assert resumed.history["val_loss"] == straight.history["val_loss"]


def test_an_unknown_optimizer_or_schedule_is_a_config_error():
    with pytest.raises(Exception, match="--optimizer must be one of nadam, sgd, nesterov"):
        TrainConfig(optimizer="lion")
    with pytest.raises(Exception, match="--schedule must be one of constant, power"):
        dataclasses.replace(TrainConfig(), schedule="cosine")
