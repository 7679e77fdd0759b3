"""Q4: when to use which activation, with one measured table: s/epoch and accuracy per hidden activation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnnlab.answers.common import (
    BATCH_SIZE,
    LOG,
    Progress,
    build,
    compiled,
    fit,
    fmt_mean_std,
    fmt_seeds,
    whole_batches,
)
from dnnlab.config import ModelConfig
from dnnlab.data import Splits
from dnnlab.lr.finder import run_range_test
from dnnlab.lr.rules import suggest
from dnnlab.report.document import Document
from dnnlab.stats import HIGHER, decide, evidence
from dnnlab.training.history import seconds_per_epoch

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
    activations: tuple[str, ...] = tuple(ACTIVATIONS)  # hidden activations to compare
    seeds: tuple[int, ...] = (42, 43, 44)  # each activation trains once per seed (same seeds for all)
    # Each activation gets its own Nadam LR: one LR for all would mostly rank how well it suits each.
    rule: str = "minimum"  # the LR range test's suggestion rule, the one --lr auto uses
    finder_steps: int = 300  # range-test batches per activation


# ELU is left out of the quick table: it is one of the leaky-ReLU variants the guide covers.
QUICK = Config(depth=5, epochs=3, activations=("selu", "leaky_relu", "relu", "tanh", "sigmoid"), seeds=(42, 43))


@dataclass(frozen=True)
class Row:
    activation: str
    initializer: str
    lr: float  # from the LR range test of this activation's net
    seconds_per_epoch: list[float]  # per seed: training CPU s/epoch, the first (compiling) epoch left out
    val_accuracy: list[float]  # per seed, after the fixed budget of epochs


@dataclass(frozen=True)
class Result:
    seeds: list[int]
    rows: list[Row]


def range_test_lr(model_config: ModelConfig, splits: Splits, config: Config) -> float:
    """The LR the range test suggests for this net (built with the first seed), by `config.rule`."""
    model = compiled(build(model_config, splits, config.seeds[0]), 1e-7)
    x, y = whole_batches(splits.x_train, splits.y_train)
    curve = run_range_test(model, x, y, BATCH_SIZE, config.finder_steps)
    return suggest(config.rule, curve.lrs, curve.smoothed)


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
        lr = range_test_lr(model_config, splits, config)
        log.info(f"{activation}: lr {lr:.3g} from the range test; {config.epochs} epochs x {len(config.seeds)} seeds")
        seconds, accuracies = [], []
        for seed in config.seeds:
            history = fit(compiled(build(model_config, splits, seed), lr), splits, config.epochs)
            seconds.append(seconds_per_epoch(history["train_cpu_time"]))
            accuracies.append(history["val_accuracy"][-1])
        rows.append(Row(activation, initializer, lr, seconds, accuracies))
    return Result(list(config.seeds), rows)


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
    by_accuracy = sorted(result.rows, key=lambda r: -np.mean(r.val_accuracy))
    best, runner_up = by_accuracy[0], by_accuracy[1] if len(by_accuracy) > 1 else None
    fastest = min(result.rows, key=lambda r: np.mean(r.seconds_per_epoch))
    slowest = max(result.rows, key=lambda r: np.mean(r.seconds_per_epoch))
    seeds = fmt_seeds(len(result.seeds))
    doc.heading(f"Q{NUMBER}. {QUESTION}")
    doc.bullets(GUIDE)
    text = (
        f"**Measured** on the same {config.depth}-layer stack of {config.width} units, standardized inputs, Nadam "
        f"at each activation's own LR (the LR range test's `{config.rule}` suggestion for that net), {config.epochs} "
        f"epochs, {seeds}, mean ± std over seeds: the highest validation accuracy was {best.activation}'s "
        f"({fmt_mean_std(best.val_accuracy, 3)})"
    )
    if runner_up is not None:
        verdict = decide(np.subtract(best.val_accuracy, runner_up.val_accuracy), min_effect=0.01)
        clear = verdict.direction == HIGHER
        text += (
            f"; against the next, {runner_up.activation} ({fmt_mean_std(runner_up.val_accuracy, 3)}), the paired "
            f"difference is {evidence(verdict)}, so {best.activation} "
            + ("is ahead beyond the seed-to-seed noise" if clear else "cannot be said to be better")
        )
    text += (
        f". The cheapest epoch was {fastest.activation}'s ({fmt_mean_std(fastest.seconds_per_epoch, 2)} CPU s), "
        f"the dearest {slowest.activation}'s ({fmt_mean_std(slowest.seconds_per_epoch, 2)} CPU s): process CPU "
        "seconds (all threads) of the training part of each epoch after the first, which compiles, as the exercise "
        "measures them; wall time on a CPU shared with other jobs would mostly measure those jobs."
    )
    doc.paragraph(text)
    doc.table(
        ["hidden activation", "init", "LR (range test)", "CPU s/epoch", f"val accuracy after {config.epochs} epochs"],
        [
            [
                r.activation,
                r.initializer,
                f"{r.lr:.2g}",
                fmt_mean_std(r.seconds_per_epoch, 2),
                fmt_mean_std(r.val_accuracy, 3),
            ]
            for r in result.rows
        ],
    )
