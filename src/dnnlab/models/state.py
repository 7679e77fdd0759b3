"""Capture and restore a compiled model's whole training state, exactly.

"Whole" means every model variable (weights, BatchNorm moving statistics, dropout seed
state) and every optimizer variable (step count, learning rate, moments). The LR range test
uses this to leave the model as it found it; the LR search uses it to start every candidate
from the same weights without rebuilding or recompiling the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np


@dataclass(frozen=True)
class ModelState:
    model_values: tuple[np.ndarray, ...]
    optimizer_values: tuple[np.ndarray, ...]


def _optimizer(model: keras.Model) -> keras.optimizers.Optimizer:
    optimizer = model.optimizer
    if not optimizer.built:
        # Build now, so the snapshot holds the optimizer's fresh moments and step count too.
        optimizer.build(model.trainable_variables)
    return optimizer


def capture(model: keras.Model) -> ModelState:
    """A copy of every model and optimizer variable's current value."""
    return ModelState(
        model_values=tuple(np.array(v.numpy(), copy=True) for v in model.variables),
        optimizer_values=tuple(np.array(v.numpy(), copy=True) for v in _optimizer(model).variables),
    )


def restore(model: keras.Model, state: ModelState) -> None:
    """Put back the values `capture` took from this same model."""
    optimizer = _optimizer(model)
    for variables, values in ((model.variables, state.model_values), (optimizer.variables, state.optimizer_values)):
        if len(variables) != len(values):
            raise ValueError(f"state has {len(values)} values for {len(variables)} variables: not this model's")
        for variable, value in zip(variables, values):
            variable.assign(value)
