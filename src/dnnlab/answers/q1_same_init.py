"""Q1: one He-sampled value for every weight of a layer never breaks the symmetry between its neurons."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from dnnlab.answers.common import LOG, Progress, build, compiled, dense_layers, fit, restart, snapshot
from dnnlab.config import ModelConfig
from dnnlab.data import Splits
from dnnlab.models.build import hidden_dense_layers
from dnnlab.report.document import Document
from dnnlab.report.figures import new_figure, save_figure

NUMBER = 1
TITLE = "Same He-sampled value for every weight?"
QUESTION = (
    "Is it OK to initialize all the weights to the same value as long as that value is selected "
    "randomly using He initialization?"
)


@dataclass(frozen=True)
class Config:
    depth: int = 5  # symmetry is a property of each layer, so a short stack shows it
    width: int = 100  # neurons per hidden layer: all of them should end up as copies of one
    epochs: int = 10  # training epochs for each of the two nets
    lr: float = 1e-3  # Nadam learning rate
    seed: int = 42  # seeds the He net's weights and the drawn same values


QUICK = Config(epochs=4)


@dataclass(frozen=True)
class Result:
    values: list[float]  # the one value drawn for each Dense layer (hidden layers, then output)
    spread_same: list[float]  # per hidden layer, after training: largest difference between two neurons
    spread_he: list[float]  # the same for proper He init
    spread_he_init: list[float]  # He init before training (same-value init starts at exactly 0)
    val_acc_same: list[float]  # validation accuracy per epoch
    val_acc_he: list[float]


def unit_spread(kernel: np.ndarray, bias: np.ndarray | None = None) -> float:
    """The largest difference between two neurons' weights from the same input (or their biases).

    A kernel has one column per neuron, so this is 0 exactly when all neurons are identical.
    """
    spread = float(np.ptp(kernel, axis=1).max())
    return spread if bias is None else max(spread, float(np.ptp(bias)))


def hidden_spreads(model: keras.Model) -> list[float]:
    # The output layer's neurons are classes, not copies, so only hidden layers count.
    return [
        unit_spread(keras.ops.convert_to_numpy(layer.kernel), keras.ops.convert_to_numpy(layer.bias))
        for layer in hidden_dense_layers(model)
    ]


def set_same_value(model: keras.Model, rng: np.random.Generator) -> list[float]:
    """Fill every kernel with one value from N(0, 2 / fan_in) (He scaling), biases with 0."""
    values = []
    for layer in dense_layers(model):
        fan_in, units = layer.kernel.shape
        value = float(rng.normal(0.0, np.sqrt(2.0 / fan_in)))
        layer.kernel.assign(np.full((fan_in, units), value, dtype="float32"))
        layer.bias.assign(np.zeros(units, dtype="float32"))
        values.append(value)
    return values


def experiment(splits: Splits, config: Config, log: Progress = LOG) -> Result:
    model = compiled(build(ModelConfig(depth=config.depth, width=config.width), splits, config.seed), config.lr)
    start = snapshot(model)
    spread_he_init = hidden_spreads(model)
    log.info(f"He init, {config.epochs} epochs")
    he = fit(model, splits, config.epochs)
    spread_he = hidden_spreads(model)
    restart(model, start)
    values = set_same_value(model, np.random.default_rng(config.seed))
    log.info(f"same value per layer, {config.epochs} epochs")
    same = fit(model, splits, config.epochs)
    return Result(values, hidden_spreads(model), spread_he, spread_he_init, same["val_accuracy"], he["val_accuracy"])


def write_section(doc: Document, result: Result, folder: Path, config: Config) -> None:
    same_max, he_min = max(result.spread_same), min(result.spread_he)
    exact = "exactly 0" if same_max == 0 else f"{same_max:.1e}, rounding noise"
    doc.heading(f"Q{NUMBER}. {QUESTION}")
    doc.paragraph(
        "**No.** If all the weights of a layer start with the same value, every neuron of that layer computes "
        "the same output and receives the same gradient, so the neurons stay copies of each other for ever: "
        "the layer behaves like a single neuron however wide it is, and the net cannot fit anything complex. "
        "He initialization works because it draws each weight *independently*, which breaks that symmetry."
    )
    doc.paragraph(
        f"**Measured** ({config.depth} hidden layers of {config.width} ELU neurons, Nadam, {config.epochs} "
        f"epochs): after training, the largest difference between two neurons' weights in any hidden layer "
        f"is {exact} with one He-sampled value per layer, against at least {he_min:.3f} with proper He init "
        f"(already {min(result.spread_he_init):.3f} at the start). Validation accuracy: "
        f"{result.val_acc_same[-1]:.3f} (same value) vs {result.val_acc_he[-1]:.3f} (He)."
    )
    doc.table(
        ["hidden layer", "same value drawn", "neuron spread, same value", "neuron spread, He"],
        [
            [i + 1, f"{v:+.4f}", f"{s:.2e}", f"{h:.4f}"]
            for i, (v, s, h) in enumerate(zip(result.values, result.spread_same, result.spread_he))
        ],
    )
    fig, (ax,) = new_figure(6, 3.5)
    epochs = np.arange(1, len(result.val_acc_he) + 1)
    ax.plot(epochs, result.val_acc_he, "o-", label="He init (independent draws)")
    ax.plot(epochs, result.val_acc_same, "s-", label="one He-sampled value per layer")
    ax.set(xlabel="epoch", ylabel="validation accuracy", title="Q1: symmetric init cannot learn much")
    ax.legend()
    doc.figure(save_figure(fig, folder / "q1_accuracy.png"), "Q1: validation accuracy per epoch")
