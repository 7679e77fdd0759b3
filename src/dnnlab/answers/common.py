"""What the answers' experiments share: build a net, train it briefly, time it, read its weights.

Built on `dnnlab.models` (`build_for`, `compile_model`, `evaluate`) so an answer's net is the
project's net. Two choices keep `dnnlab answers --quick` inside its time budget on a 2-core CPU:

- Training arrays are cut to whole batches. On JAX a smaller last batch has a new shape, so
  Keras compiles the train step a second time (measured on the shared CPU: +4-8 s per model).
- Runs that differ only in their starting weights reuse one compiled model: `snapshot` stores
  its state right after compiling (`dnnlab.model_state`), and `restart` rewinds to it.

Costs (s/epoch, prediction time) are measured in process CPU time, all threads together: on a
CPU shared with other jobs, wall time mostly measures the other jobs (measured under a load
average of ~20: the same 2,000-image prediction took 27-737 ms wall but 27-53 ms CPU).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import keras
import numpy as np

from dnnlab.config import ModelConfig, RunConfig, TrainConfig
from dnnlab.data import Splits
from dnnlab.models.build import build_for
from dnnlab.models.compile import EVAL_BATCH_SIZE, compile_model
from dnnlab.models.state import ModelState, capture, restore
from dnnlab.training.callbacks import EpochTimer

BATCH_SIZE = 32  # the textbook's batch size, for every answer
CLOCK = time.process_time  # CPU seconds of this process (see the module docstring)

# Where an experiment reports progress: the answers' logger, or the runner's adapter of it that
# adds the question number and the elapsed time.
Progress = logging.Logger | logging.LoggerAdapter
LOG = logging.getLogger("dnnlab.answers")


def build(model_config: ModelConfig, splits: Splits, seed: int) -> keras.Model:
    """The project's dense stack for `model_config`, with weights drawn from `seed`."""
    keras.utils.set_random_seed(seed)
    return build_for(RunConfig(model=model_config), splits)


def compiled(model: keras.Model, lr: float, optimizer: str = "nadam", momentum: float = 0.0) -> keras.Model:
    """`model` compiled by `dnnlab.models.compile.compile_model` (logits + sparse cross-entropy + accuracy)."""
    compile_model(model, TrainConfig(optimizer=optimizer, momentum=momentum), lr)
    return model


def whole_batches(x: np.ndarray, y: np.ndarray, batch_size: int = BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The first `len(x) // batch_size * batch_size` examples (see the module docstring)."""
    n = len(x) // batch_size * batch_size
    if n == 0:
        raise ValueError(f"need at least one batch of {batch_size} examples, got {len(x)}")
    return x[:n], y[:n]


def fit(model: keras.Model, splits: Splits, epochs: int, callbacks: list | None = None) -> dict[str, list[float]]:
    """Train on whole batches, validating every epoch; the history has `EpochTimer`'s times, among
    them `train_cpu_time`, which the answers' costs use (`training.history.seconds_per_epoch`)."""
    x, y = whole_batches(splits.x_train, splits.y_train)
    history = model.fit(
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        validation_data=(splits.x_valid, splits.y_valid),
        validation_batch_size=EVAL_BATCH_SIZE,
        callbacks=[EpochTimer(), keras.callbacks.TerminateOnNaN(), *(callbacks or [])],
        verbose=0,
    )
    return {key: [float(v) for v in values] for key, values in history.history.items()}


def snapshot(model: keras.Model) -> ModelState:
    """The compiled model's whole training state, to start several runs from one compile."""
    return capture(model)


def restart(model: keras.Model, start: ModelState, weights: list[np.ndarray] | None = None) -> None:
    """Rewind the model and optimizer to `start`, then load `weights` if given."""
    restore(model, start)
    if weights is not None:
        model.set_weights(weights)


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    """Every Dense layer, the output layer included, in order."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def kernels(model: keras.Model) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(layer.kernel) for layer in dense_layers(model)]


def with_hidden_dropout(model: keras.Model, rate: float, layer_class: type = keras.layers.Dropout) -> keras.Sequential:
    """`model`'s layers with a dropout layer after every hidden Dense layer (weights shared).

    `ModelConfig.dropout` puts one layer before the output (exercise 8e); questions 6 and 7
    are about dropout as usually applied, after every hidden layer.
    """
    layers: list[keras.layers.Layer] = [keras.Input(shape=model.input_shape[1:])]
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Dropout, keras.layers.AlphaDropout)):
            continue  # replaced, not doubled, when a dropout net is rebuilt (MC Dropout)
        layers.append(layer)
        if isinstance(layer, keras.layers.Dense) and layer.name != "logits":
            layers.append(layer_class(rate, name=f"dropout_after_{layer.name}"))
    return keras.Sequential(layers, name=f"{model.name}_dropout")


def best_seconds(calls: list[Callable[[], object]], repeats: int = 5) -> list[float]:
    """The least CPU time of `repeats` runs of each call, after one untimed warm-up (which compiles).

    The calls take turns, so a burst of load from other jobs hits all of them alike, and the
    minimum, not the mean, is the cost of the work itself (as `timeit` advises).
    """
    for call in calls:
        call()
    best = [float("inf")] * len(calls)
    for _ in range(repeats):
        for i, call in enumerate(calls):
            start = CLOCK()
            call()
            best[i] = min(best[i], CLOCK() - start)
    return best


def fmt_pct(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}%"


def fmt_mean_std(values: list[float], digits: int) -> str:
    """`mean ± std` over seeds (sample std), or the value alone for one seed."""
    return f"{np.mean(values):.{digits}f}" + (f" ± {np.std(values, ddof=1):.{digits}f}" if len(values) > 1 else "")


FULL_RUN_SEEDS = 3  # the seeds of a full (not --quick) answers run


def fmt_seeds(count: int) -> str:
    """How many seeds an answer's figures come from, flagging --quick's fewer."""
    quick = f" (--quick: fewer than the full run's {FULL_RUN_SEEDS})" if count < FULL_RUN_SEEDS else ""
    return f"{count} seed{'s' if count > 1 else ''}{quick}"
