"""Compile a model for training (optimizer, LR schedule, loss, metrics) and evaluate it."""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import numpy as np

from dnnlab.config import RunConfig, TrainConfig
from dnnlab.data import Splits
from dnnlab.schedules.decay import DECAYS, decay_schedule
from dnnlab.schedules.momentum_sgd import ScheduledMomentumSGD
from dnnlab.schedules.one_cycle import one_cycle_schedules

EVAL_BATCH_SIZE = 1000  # inference only: large batches are faster and give the same numbers

LearningRate = float | keras.optimizers.schedules.LearningRateSchedule

# The adaptive optimizers with the hyperparameters the textbook gives them (ch. 11, "Faster
# Optimizers"): RMSprop(rho=0.9), Adam/Adamax/Nadam(beta_1=0.9, beta_2=0.999), AdamW with
# weight_decay=1e-5; Adagrad as Keras makes it (the book passes only the LR). SGD, with or
# without (Nesterov) momentum, is built in `make_optimizer`.
ADAPTIVE: dict[str, Callable[[LearningRate], keras.optimizers.Optimizer]] = {
    "adagrad": lambda lr: keras.optimizers.Adagrad(learning_rate=lr),
    "rmsprop": lambda lr: keras.optimizers.RMSprop(learning_rate=lr, rho=0.9),
    "adam": lambda lr: keras.optimizers.Adam(learning_rate=lr, beta_1=0.9, beta_2=0.999),
    "adamax": lambda lr: keras.optimizers.Adamax(learning_rate=lr, beta_1=0.9, beta_2=0.999),
    "nadam": lambda lr: keras.optimizers.Nadam(learning_rate=lr, beta_1=0.9, beta_2=0.999),
    "adamw": lambda lr: keras.optimizers.AdamW(learning_rate=lr, weight_decay=1e-5, beta_1=0.9, beta_2=0.999),
}


def make_optimizer(
    train_config: TrainConfig, lr: float, steps_per_epoch: int | None = None
) -> keras.optimizers.Optimizer:
    """`train_config.optimizer` at `lr`, following `train_config.schedule` inside the compiled step.

    The power, exponential and piecewise schedules start at `lr` (`dnnlab.schedules.decay`);
    1cycle peaks at `lr` over the whole fit (`train_config.epochs` epochs), and also cycles the
    momentum of SGD and Nesterov. Performance scheduling is a callback
    (`decay.performance_scheduler`): its optimizer starts at `lr` like a constant one. Without
    `steps_per_epoch` (an LR range test, which sets the LR itself) the LR stays at `lr`.
    """
    schedule = train_config.schedule if steps_per_epoch else "constant"
    rate: LearningRate = lr
    momentum = None
    if schedule == "1cycle":
        cycle = one_cycle_schedules(lr, train_config.epochs * steps_per_epoch)
        rate, momentum = cycle.lr, cycle.momentum
    elif schedule in DECAYS:
        rate = decay_schedule(schedule, lr, steps_per_epoch)
    if train_config.optimizer in ("sgd", "nesterov"):
        nesterov = train_config.optimizer == "nesterov"
        if momentum is not None:
            return ScheduledMomentumSGD(learning_rate=rate, momentum_schedule=momentum, nesterov=nesterov)
        return keras.optimizers.SGD(learning_rate=rate, momentum=train_config.momentum, nesterov=nesterov)
    return ADAPTIVE[train_config.optimizer](rate)


def steps_per_epoch(config: RunConfig, splits: Splits) -> int:
    """Batches in one epoch of `config` on `splits` (a schedule's unit of time)."""
    return math.ceil(len(splits.x_train) / config.train.batch_size)


def compile_model(model: keras.Model, train_config: TrainConfig, lr: float, steps_per_epoch: int | None = None) -> None:
    """Compile for logits with sparse cross-entropy and accuracy, with `make_optimizer`'s optimizer."""
    model.compile(
        optimizer=make_optimizer(train_config, lr, steps_per_epoch),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def evaluate(model: keras.Model, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(loss, accuracy) of a compiled model on `(x, y)`."""
    loss, accuracy = model.evaluate(x, y, batch_size=EVAL_BATCH_SIZE, verbose=0)
    return float(loss), float(accuracy)
