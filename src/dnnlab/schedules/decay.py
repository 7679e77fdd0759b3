"""The textbook's decaying LR schedules (Géron, ch. 11, "Learning Rate Scheduling") for a run.

Power, exponential and piecewise constant scheduling are Keras schedules of the optimizer's step
count, so the compiled train step evaluates them per batch and no callback makes Keras wait for
every batch (`one_cycle.py` says what that costs). Performance scheduling is Keras's own
`ReduceLROnPlateau`: it reacts to the validation loss, so it acts at the end of each epoch.

Every schedule starts from the run's LR (`lr0`). The book states its step scales for its own
runs (Fashion MNIST, 55,000 training images, batch 32: 1,719 steps per epoch). Here they are kept
in epochs of training, so that "10x lower every 20 epochs" stays that on another training set or
batch size:
- power: `lr0 / (1 + step / s)**c` with c = 1 (Keras's `InverseTimeDecay` with decay rate 1);
  the book's s = 10,000 steps is 10,000 / 1,719 = 5.82 of its epochs;
- exponential: `lr0 * 0.1**(step / s)` (`ExponentialDecay`); the book's s is 20 epochs
  (`exponential_decay(lr0=0.01, s=20)`);
- piecewise constant: the book's 0.01 for 5 epochs, 0.005 until epoch 15, then 0.001, i.e.
  lr0, lr0 / 2, lr0 / 10 (`PiecewiseConstantDecay`);
- performance: `ReduceLROnPlateau(factor=0.5, patience=5)` on the validation loss, as in the book.
"""

from __future__ import annotations

import math

import keras

BOOK_STEPS_PER_EPOCH = math.ceil(55_000 / 32)  # the book's Fashion MNIST runs: 1,719
POWER_S_EPOCHS = 10_000 / BOOK_STEPS_PER_EPOCH  # InverseTimeDecay(decay_steps=10_000): 5.82 epochs
EXPONENTIAL_S_EPOCHS = 20.0  # ExponentialDecay: 10x lower every 20 epochs
EXPONENTIAL_RATE = 0.1
PIECEWISE_EPOCHS = (5, 15)  # the epochs where the LR steps down
PIECEWISE_FACTORS = (1.0, 0.5, 0.1)  # the book's [0.01, 0.005, 0.001], relative to its first LR
PLATEAU_FACTOR = 0.5  # ReduceLROnPlateau(factor=0.5, patience=5)
PLATEAU_PATIENCE = 5

DECAYS = ("power", "exponential", "piecewise")  # the schedules that are functions of the step count


def decay_schedule(name: str, lr0: float, steps_per_epoch: int) -> keras.optimizers.schedules.LearningRateSchedule:
    """The book's `name` schedule (one of `DECAYS`) from `lr0`, for runs of `steps_per_epoch` batches an epoch."""
    if not lr0 > 0:
        raise ValueError(f"lr0 must be positive, got {lr0}")
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    schedules = keras.optimizers.schedules
    if name == "power":
        return schedules.InverseTimeDecay(lr0, decay_steps=POWER_S_EPOCHS * steps_per_epoch, decay_rate=1.0)
    if name == "exponential":
        return schedules.ExponentialDecay(
            lr0, decay_steps=EXPONENTIAL_S_EPOCHS * steps_per_epoch, decay_rate=EXPONENTIAL_RATE
        )
    if name == "piecewise":
        # Keras keeps values[i] while step <= boundaries[i]; the book's "epoch < 5" ends at step 5 * n - 1.
        boundaries = [epoch * steps_per_epoch - 1 for epoch in PIECEWISE_EPOCHS]
        return schedules.PiecewiseConstantDecay(boundaries, [lr0 * factor for factor in PIECEWISE_FACTORS])
    raise ValueError(f"unknown decay schedule {name!r}; choose one of: {', '.join(DECAYS)}")


def performance_scheduler(schedule: str) -> keras.callbacks.ReduceLROnPlateau | None:
    """Keras's ReduceLROnPlateau with the book's settings when `schedule` is "performance", else None."""
    if schedule != "performance":
        return None
    return keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE)
