"""Q6: three ways to a sparse model (magnitude pruning, l1, gradual pruning), and why dropout is not one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from dnnlab.answers.common import (
    BATCH_SIZE,
    LOG,
    Progress,
    build,
    compiled,
    dense_layers,
    fit,
    fmt_pct,
    kernels,
    restart,
    snapshot,
    whole_batches,
    with_hidden_dropout,
)
from dnnlab.config import ModelConfig
from dnnlab.data import Splits
from dnnlab.models.compile import evaluate
from dnnlab.report.document import Document
from dnnlab.report.figures import new_figure, save_figure

NUMBER = 6
TITLE = "Sparse models"
QUESTION = "Name three ways you can produce a sparse model."


@dataclass(frozen=True)
class Config:
    depth: int = 3  # a small ELU stack; sparsity counts every Dense kernel (biases are not pruned)
    width: int = 100  # neurons per hidden layer
    epochs: int = 10  # training epochs of the dense, l1 and dropout nets
    lr: float = 1e-3  # Nadam learning rate
    sparsities: tuple[float, ...] = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99)  # one-shot pruning curve
    l1: tuple[float, ...] = (1e-4, 1e-3)  # l1 penalties on every kernel; 1e-3 is "strong"
    # l1 drives weights toward 0, but a stochastic optimizer leaves them jittering around it;
    # weights below this magnitude are then set to exactly 0.
    tiny: float = 1e-3
    final_sparsity: float = 0.95  # the gradual-pruning target, compared with one-shot pruning
    finetune_epochs: int = 3  # epochs of fine-tuning from the trained dense net (gradual, and one-shot alike)
    prune_fraction: float = 2 / 3  # the target is reached after this fraction of those epochs
    prune_every: int = 20  # batches between mask updates (the masks are applied after every batch)
    dropout_rate: float = 0.2  # dropout after every hidden layer, to show it leaves the weights dense
    seed: int = 42  # the same initial weights for every net


QUICK = Config(epochs=3, l1=(1e-3,), finetune_epochs=2)


@dataclass(frozen=True)
class L1Row:
    penalty: float
    tiny: float  # fraction of the weights at or below `Config.tiny` after training
    val_acc: float  # before any pruning
    val_acc_tiny_zeroed: float  # after setting those tiny weights to exactly 0
    curve_val_acc: list[float]  # one-shot magnitude pruning to each of `Config.sparsities`


@dataclass(frozen=True)
class Result:
    dense_val_acc: float
    dense_tiny: float  # fraction of the dense net's weights below `tiny` (what pruning would find "free")
    curve_sparsity: list[float]  # one-shot magnitude pruning: measured sparsity ...
    curve_val_acc: list[float]  # ... and validation accuracy, no fine-tuning
    l1: list[L1Row]
    one_shot_val_acc: float  # one-shot pruning to final_sparsity, no fine-tuning
    one_shot_tuned_sparsity: float  # one-shot pruning to final_sparsity, then the gradual run's fine-tuning
    one_shot_tuned_val_acc: float
    gradual_sparsity: float  # measured after gradual pruning
    gradual_val_acc: float
    dropout_zero: float  # fraction of the dropout net's weights that are exactly 0
    dropout_tiny: float  # fraction below `tiny`
    dropout_val_acc: float


def magnitude_masks(weights: list[np.ndarray], sparsity: float) -> list[np.ndarray]:
    """Keep-masks that remove exactly round(sparsity * total) of the smallest-magnitude weights,
    ranked across all arrays together (global pruning)."""
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    magnitudes = np.concatenate([np.abs(w).ravel() for w in weights])
    # A stable sort breaks ties by position, so the count is exact even when magnitudes repeat.
    pruned = np.argsort(magnitudes, kind="stable")[: int(round(sparsity * magnitudes.size))]
    keep = np.ones(magnitudes.size, dtype=bool)
    keep[pruned] = False
    parts = np.split(keep, np.cumsum([w.size for w in weights])[:-1])
    return [part.reshape(w.shape) for part, w in zip(parts, weights)]


def zero_fraction(weights: list[np.ndarray], below: float = 0.0) -> float:
    """Fraction of the weights whose magnitude is <= `below` (0: exact zeros)."""
    return float(np.mean(np.concatenate([np.abs(w).ravel() for w in weights]) <= below))


def set_kernels(model: keras.Model, values: list[np.ndarray]) -> None:
    for layer, value in zip(dense_layers(model), values):
        layer.kernel.assign(value.astype("float32"))


def pruned_to(weights: list[np.ndarray], sparsity: float) -> list[np.ndarray]:
    return [w * m for w, m in zip(weights, magnitude_masks(weights, sparsity))]


def pruning_curve(model: keras.Model, sparsities: tuple[float, ...], accuracy) -> tuple[list[float], list[float]]:
    """Measured sparsity and `accuracy(model)` after one-shot pruning to each level; weights restored."""
    trained = kernels(model)
    measured, scores = [], []
    for sparsity in sparsities:
        set_kernels(model, pruned_to(trained, sparsity))
        measured.append(zero_fraction(kernels(model)))
        scores.append(accuracy(model))
    set_kernels(model, trained)
    return measured, scores


def polynomial_sparsity(step: int, end_step: int, final: float, initial: float = 0.0, power: int = 3) -> float:
    """The sparsity target after `step` steps: fast early, flat near the end, `final` from `end_step` on
    (the schedule of Zhu & Gupta 2017, used by the TensorFlow Model Optimization toolkit)."""
    progress = min(max(step / end_step, 0.0), 1.0)
    return final + (initial - final) * (1.0 - progress) ** power


def prune_while_finetuning(model: keras.Model, splits: Splits, config: Config, gradual: bool) -> None:
    """Fine-tune `model` for `finetune_epochs` while it holds (up to) `final_sparsity`.

    `gradual`: the sparsity rises on `polynomial_sparsity`, masks recomputed from the current
    magnitudes every `prune_every` batches. Otherwise one-shot: the final mask is taken once,
    before the first batch. Either way the mask is applied after every batch, so pruned weights
    stay at 0 while the others adapt; both see the same batches in the same order.
    """
    x, y = whole_batches(splits.x_train, splits.y_train)
    steps_per_epoch = len(x) // BATCH_SIZE
    end_step = max(1, int(config.prune_fraction * config.finetune_epochs * steps_per_epoch))
    rng = np.random.default_rng(config.seed)
    masks = None if gradual else magnitude_masks(kernels(model), config.final_sparsity)
    step = 0
    for _ in range(config.finetune_epochs):
        for rows in rng.permutation(len(x)).reshape(-1, BATCH_SIZE):
            if masks is not None and step == 0:
                apply_masks(model, masks)
            model.train_on_batch(x[rows], y[rows])
            step += 1
            if gradual and step <= end_step and (step % config.prune_every == 0 or step == end_step):
                masks = magnitude_masks(kernels(model), polynomial_sparsity(step, end_step, config.final_sparsity))
            if masks is not None:
                apply_masks(model, masks)


def apply_masks(model: keras.Model, masks: list[np.ndarray]) -> None:
    for layer, mask in zip(dense_layers(model), masks):
        layer.kernel.assign(keras.ops.where(mask, layer.kernel.value, 0.0))


def with_l1(model: keras.Model, penalty: float) -> keras.Model:
    """Add an l1 penalty on every kernel (Keras sums variables' regularizers into the loss)."""
    for layer in dense_layers(model):
        layer.kernel.regularizer = keras.regularizers.L1(penalty)
    return model


def experiment(splits: Splits, config: Config, log: Progress = LOG) -> Result:
    model_config = ModelConfig(depth=config.depth, width=config.width)

    def accuracy(model: keras.Model) -> float:
        return evaluate(model, splits.x_valid, splits.y_valid)[1]

    log.info(f"dense net, {config.epochs} epochs")
    dense = compiled(build(model_config, splits, config.seed), config.lr)
    fit(dense, splits, config.epochs)
    trained = kernels(dense)
    dense_acc = accuracy(dense)
    curve_sparsity, curve_acc = pruning_curve(dense, config.sparsities, accuracy)
    set_kernels(dense, pruned_to(trained, config.final_sparsity))
    one_shot = accuracy(dense)
    set_kernels(dense, trained)
    start = snapshot(dense)  # both fine-tunings start from the trained dense net and its optimizer state
    log.info(f"one-shot pruning to {config.final_sparsity:.0%}, then {config.finetune_epochs} epochs of fine-tuning")
    prune_while_finetuning(dense, splits, config, gradual=False)
    one_shot_tuned = (zero_fraction(kernels(dense)), accuracy(dense))
    restart(dense, start)
    log.info(f"gradual pruning to {config.final_sparsity:.0%} during {config.finetune_epochs} epochs of fine-tuning")
    prune_while_finetuning(dense, splits, config, gradual=True)

    l1_rows = []
    for penalty in config.l1:
        log.info(f"l1 = {penalty:g}, {config.epochs} epochs")
        model = compiled(with_l1(build(model_config, splits, config.seed), penalty), config.lr)
        fit(model, splits, config.epochs)
        weights = kernels(model)
        before = accuracy(model)
        _, curve = pruning_curve(model, config.sparsities, accuracy)
        set_kernels(model, [np.where(np.abs(w) <= config.tiny, 0.0, w) for w in weights])
        l1_rows.append(L1Row(penalty, zero_fraction(weights, config.tiny), before, accuracy(model), curve))

    log.info(f"dropout {config.dropout_rate} after every hidden layer, {config.epochs} epochs")
    dropout = compiled(with_hidden_dropout(build(model_config, splits, config.seed), config.dropout_rate), config.lr)
    fit(dropout, splits, config.epochs)
    return Result(
        dense_val_acc=dense_acc,
        dense_tiny=zero_fraction(trained, config.tiny),
        curve_sparsity=curve_sparsity,
        curve_val_acc=curve_acc,
        l1=l1_rows,
        one_shot_val_acc=one_shot,
        one_shot_tuned_sparsity=one_shot_tuned[0],
        one_shot_tuned_val_acc=one_shot_tuned[1],
        gradual_sparsity=zero_fraction(kernels(dense)),
        gradual_val_acc=accuracy(dense),
        dropout_zero=zero_fraction(kernels(dropout)),
        dropout_tiny=zero_fraction(kernels(dropout), config.tiny),
        dropout_val_acc=accuracy(dropout),
    )


def write_section(doc: Document, result: Result, folder: Path, config: Config) -> None:
    doc.heading(f"Q{NUMBER}. {QUESTION}")
    curve = ", ".join(f"{fmt_pct(s, 0)} → {a:.3f}" for s, a in zip(result.curve_sparsity, result.curve_val_acc))
    final = int(np.argmin([abs(s - config.final_sparsity) for s in config.sparsities]))  # curve point to compare
    l1 = "; ".join(
        f"ℓ1 = {r.penalty:g}: {fmt_pct(r.tiny)} of the weights end ≤ {config.tiny:g} (without ℓ1: "
        f"{fmt_pct(result.dense_tiny)}); setting them to 0 changes validation accuracy {r.val_acc:.3f} → "
        f"{r.val_acc_tiny_zeroed:.3f}; pruned to {fmt_pct(config.sparsities[final], 0)} it keeps "
        f"{r.curve_val_acc[final]:.3f} (without ℓ1: {result.curve_val_acc[final]:.3f})"
        for r in result.l1
    )
    doc.bullets(
        [
            "**Train, then zero out the tiny weights (magnitude pruning).** The smallest weights contribute "
            f"least, so removing them costs little accuracy up to a point. Measured (one-shot, global, no "
            f"fine-tuning; sparsity → validation accuracy): {curve}. The dense net had {fmt_pct(result.dense_tiny)} "
            f"of its weights ≤ {config.tiny:g} to begin with.",
            "**Strong ℓ1 regularization during training.** The ℓ1 penalty pushes every weight toward 0 with a "
            "constant force, so the ones that do not pay for themselves end at (about) 0 and can be removed. "
            f"Measured: {l1}.",
            "**Gradual pruning with fine-tuning, as pruning toolkits do** (e.g. the TensorFlow Model Optimization "
            "Toolkit): raise the sparsity step by step during training on a polynomial schedule, keep pruned weights "
            f"at 0, and let the others compensate. Measured: {fmt_pct(result.gradual_sparsity)} sparsity with "
            f"validation accuracy {result.gradual_val_acc:.3f} after {config.finetune_epochs} epochs of "
            f"fine-tuning, vs {result.one_shot_tuned_val_acc:.3f} for one-shot pruning to the same "
            f"{fmt_pct(config.final_sparsity, 0)} followed by the same {config.finetune_epochs} epochs of fine-tuning "
            f"on the same batches, and {result.one_shot_val_acc:.3f} for one-shot pruning without it (dense: "
            f"{result.dense_val_acc:.3f}; one net and one seed, so no interval: small gaps decide nothing).",
        ]
    )
    doc.paragraph(
        "**Dropout is not one of them.** Dropout zeroes random *activations*, different ones at every training "
        "step, and is switched off at inference; it never sets a weight to 0, and every weight is used to make "
        f"predictions. Measured: after training with dropout {config.dropout_rate} after every hidden layer, "
        f"{fmt_pct(result.dropout_zero)} of the weights are exactly 0 and {fmt_pct(result.dropout_tiny)} are "
        f"≤ {config.tiny:g} (dense net: {fmt_pct(result.dense_tiny)}); validation accuracy "
        f"{result.dropout_val_acc:.3f}. Its model is exactly as dense as one trained without it."
    )
    doc.table(
        ["method", "sparsity", "val accuracy"],
        [["dense (no pruning)", fmt_pct(0.0), f"{result.dense_val_acc:.3f}"]]
        + [
            [f"one-shot magnitude pruning {fmt_pct(s, 0)}", fmt_pct(s), f"{a:.3f}"]
            for s, a in zip(result.curve_sparsity, result.curve_val_acc)
            if s > 0
        ]
        + [
            [f"ℓ1 {r.penalty:g}, weights ≤ {config.tiny:g} zeroed", fmt_pct(r.tiny), f"{r.val_acc_tiny_zeroed:.3f}"]
            for r in result.l1
        ]
        + [
            [
                "one-shot pruning + the same fine-tuning",
                fmt_pct(result.one_shot_tuned_sparsity),
                f"{result.one_shot_tuned_val_acc:.3f}",
            ],
            ["gradual pruning + fine-tuning", fmt_pct(result.gradual_sparsity), f"{result.gradual_val_acc:.3f}"],
            [f"dropout {config.dropout_rate}", fmt_pct(result.dropout_zero), f"{result.dropout_val_acc:.3f}"],
        ],
    )
    fig, (ax,) = new_figure(7, 4)
    ax.plot(np.array(result.curve_sparsity) * 100, result.curve_val_acc, "o-", label="one-shot magnitude pruning")
    for r in result.l1:
        (line,) = ax.plot(
            np.array(result.curve_sparsity) * 100,
            r.curve_val_acc,
            "--",
            label=f"ℓ1 {r.penalty:g}, then magnitude pruning",
        )
        ax.plot(
            r.tiny * 100,
            r.val_acc_tiny_zeroed,
            "s",
            color=line.get_color(),
            markersize=8,
            label=f"ℓ1 {r.penalty:g}, weights ≤ {config.tiny:g} zeroed",
        )
    ax.plot(
        result.gradual_sparsity * 100, result.gradual_val_acc, "*", markersize=14, label="gradual pruning + fine-tuning"
    )
    ax.plot(
        result.one_shot_tuned_sparsity * 100,
        result.one_shot_tuned_val_acc,
        "P",
        markersize=10,
        label="one-shot pruning + the same fine-tuning",
    )
    ax.plot(result.dropout_zero * 100, result.dropout_val_acc, "x", markersize=10, label="dropout (no sparsity)")
    ax.set(xlabel="sparsity (% of weights exactly 0)", ylabel="validation accuracy", title="Q6: sparsity vs accuracy")
    ax.legend(fontsize=8)
    doc.figure(save_figure(fig, folder / "q6_sparsity.png"), "Q6: sparsity vs validation accuracy per method")
