"""Q4: when to use which activation, with one measured table: s/epoch and accuracy per hidden activation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dnnlab.answers.common import LOG, Progress, build, compiled, fit, steady_epoch_seconds
from dnnlab.config import ModelConfig
from dnnlab.data import Splits
from dnnlab.report.document import Document

NUMBER = 4
TITLE = "Which activation where"
QUESTION = (
    "In which cases would you want to use each of the following activation functions: SELU, leaky ReLU "
    "(and its variants), ReLU, tanh, logistic, and softmax?"
)

# Each hidden activation with the initializer it is meant for (softmax is an output activation:
# every net here emits logits and the loss applies the softmax).
ACTIVATIONS: dict[str, str] = {
    "selu": "lecun_normal",
    "elu": "he_normal",
    "leaky_relu": "he_normal",
    "relu": "he_normal",
    "tanh": "glorot_uniform",
    "sigmoid": "glorot_uniform",
}


@dataclass(frozen=True)
class Config:
    depth: int = 10  # the same smaller net for every activation
    width: int = 100  # neurons per hidden layer
    epochs: int = 10  # the fixed budget; the first epoch (it compiles) is left out of CPU s/epoch
    lr: float = 1e-3  # Nadam learning rate
    activations: tuple[str, ...] = tuple(ACTIVATIONS)  # hidden activations to compare
    seed: int = 42  # the same seed for every net


# ELU is left out of the quick table: it is one of the leaky-ReLU variants the guide covers.
QUICK = Config(depth=5, epochs=3, activations=("selu", "leaky_relu", "relu", "tanh", "sigmoid"))


@dataclass(frozen=True)
class Row:
    activation: str
    initializer: str
    seconds_per_epoch: float  # CPU seconds of the cheapest epoch after the first
    val_accuracy: float  # after the fixed budget of epochs


@dataclass(frozen=True)
class Result:
    rows: list[Row]


def experiment(splits: Splits, config: Config, log: Progress = LOG) -> Result:
    rows = []
    for activation in config.activations:
        initializer = ACTIVATIONS[activation]
        # Standardized inputs for all, so only the activation (and its init) changes.
        model_config = ModelConfig(
            depth=config.depth,
            width=config.width,
            activation=activation,
            initializer=initializer,
            input_scaling="standardize",
        )
        log.info(f"{activation}: {config.epochs} epochs")
        history = fit(compiled(build(model_config, splits, config.seed), config.lr), splits, config.epochs)
        rows.append(
            Row(activation, initializer, steady_epoch_seconds(history["epoch_time"]), history["val_accuracy"][-1])
        )
    return Result(rows)


GUIDE = [
    "**ReLU** (hidden layers): the default. Cheapest to compute and optimized everywhere, good enough in most "
    "nets; its weakness is dying units (0 output and 0 gradient for every input), worse with large learning rates.",
    "**Leaky ReLU and variants** (hidden layers): when dying ReLUs are a concern or a little extra accuracy is "
    "worth it: a small slope for negative inputs keeps every unit alive. PReLU learns that slope (for large "
    "data sets, it can overfit small ones), RReLU randomizes it during training (acts as a regularizer); "
    "ELU (and GELU, Swish) are smooth variants that converge faster but cost more to compute.",
    "**SELU** (hidden layers): for a deep plain stack of dense layers, where it self-normalizes and removes "
    "the need for BatchNorm, provided the inputs are standardized, every layer uses LeCun-normal init, and "
    "there are no skip connections or regular dropout (see Q3).",
    "**tanh** (hidden or output): when outputs must lie in [-1, 1], e.g. an output scaled to that range or the "
    "hidden state of recurrent nets; it is zero-centred, but it saturates, so gradients vanish in deep stacks.",
    "**logistic (sigmoid)** (output, and gates): a probability for binary classification or for each label of a "
    "multilabel task, or a gate (as in LSTMs). Avoid it in the hidden layers of deep nets: it saturates and "
    "its outputs are not centred, which slows or stalls training.",
    "**softmax** (output only): probabilities over mutually exclusive classes, such as CIFAR-10's 10 classes. "
    "dnnlab's nets emit logits and let the loss (`from_logits=True`) apply the softmax, which is more stable.",
]


def write_section(doc: Document, result: Result, folder: Path, config: Config) -> None:
    fastest = min(result.rows, key=lambda r: r.seconds_per_epoch)
    slowest = max(result.rows, key=lambda r: r.seconds_per_epoch)
    best = max(result.rows, key=lambda r: r.val_accuracy)
    worst = min(result.rows, key=lambda r: r.val_accuracy)
    doc.heading(f"Q{NUMBER}. {QUESTION}")
    doc.bullets(GUIDE)
    doc.paragraph(
        f"**Measured** on the same {config.depth}-layer stack of {config.width} units, standardized inputs, "
        f"Nadam (lr {config.lr}), {config.epochs} epochs each: the fastest hidden activation was "
        f"{fastest.activation} ({fastest.seconds_per_epoch:.2f} CPU s/epoch), the slowest {slowest.activation} "
        f"({slowest.seconds_per_epoch:.2f} CPU s/epoch); the best validation accuracy {best.activation} "
        f"({best.val_accuracy:.3f}), the worst {worst.activation} ({worst.val_accuracy:.3f}). Costs are process CPU "
        "seconds (all threads) of the cheapest epoch after the first, which compiles; wall time on a CPU shared "
        "with other jobs would mostly measure them. Small gaps are still noise."
    )
    doc.table(
        ["hidden activation", "init", "CPU s/epoch", f"val accuracy after {config.epochs} epochs"],
        [[r.activation, r.initializer, f"{r.seconds_per_epoch:.2f}", f"{r.val_accuracy:.3f}"] for r in result.rows],
    )
