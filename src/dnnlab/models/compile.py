"""Compile a model for training (optimizer, loss, metrics) and evaluate it."""

from __future__ import annotations

import math

import keras
import numpy as np

from dnnlab.config import RunConfig, TrainConfig
from dnnlab.data import Splits
from dnnlab.schedules.momentum_sgd import ScheduledMomentumSGD
from dnnlab.schedules.one_cycle import one_cycle_schedules

EVAL_BATCH_SIZE = 1000  # inference only: large batches are faster and give the same numbers


def make_optimizer(train_config: TrainConfig, lr: float, total_steps: int | None = None) -> keras.optimizers.Optimizer:
    """Nadam or SGD at `lr`; under `schedule == "1cycle"` with `total_steps` (the batches of the
    whole fit), `lr` is the cycle's peak and the LR, and SGD's momentum, follow the cycle inside
    the compiled step. Without `total_steps` (an LR range test) they stay constant."""
    cycle = one_cycle_schedules(lr, total_steps) if train_config.schedule == "1cycle" and total_steps else None
    if train_config.optimizer == "sgd":
        if cycle is not None:
            return ScheduledMomentumSGD(learning_rate=cycle.lr, momentum_schedule=cycle.momentum)
        return keras.optimizers.SGD(learning_rate=lr, momentum=train_config.momentum)
    return keras.optimizers.Nadam(learning_rate=cycle.lr if cycle is not None else lr)


def steps_in_fit(config: RunConfig, splits: Splits) -> int:
    """Batches in a whole fit of `config` on `splits` (the length of a 1cycle)."""
    return config.train.epochs * math.ceil(len(splits.x_train) / config.train.batch_size)


def compile_model(model: keras.Model, train_config: TrainConfig, lr: float, total_steps: int | None = None) -> None:
    """Compile for logits with sparse cross-entropy and accuracy, with `make_optimizer`'s optimizer."""
    model.compile(
        optimizer=make_optimizer(train_config, lr, total_steps),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def evaluate(model: keras.Model, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(loss, accuracy) of a compiled model on `(x, y)`."""
    loss, accuracy = model.evaluate(x, y, batch_size=EVAL_BATCH_SIZE, verbose=0)
    return float(loss), float(accuracy)
