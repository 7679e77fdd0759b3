"""Q7: what dropout costs: slower training convergence, free inference, and xN for MC Dropout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from dnnlab.answers.common import (
    LOG,
    Progress,
    best_seconds,
    build,
    compiled,
    fit,
    steady_epoch_seconds,
    with_hidden_dropout,
)
from dnnlab.config import ModelConfig
from dnnlab.data import Splits
from dnnlab.models.compile import EVAL_BATCH_SIZE
from dnnlab.report.document import Document
from dnnlab.report.figures import new_figure, save_figure
from dnnlab.training.history import best_epoch_index
from dnnlab.uncertainty.mc_dropout import mc_predict

NUMBER = 7
TITLE = "What dropout costs"
QUESTION = (
    "Does dropout slow down training? Does it slow down inference (i.e., making predictions on new "
    "instances)? What about MC Dropout?"
)


@dataclass(frozen=True)
class Config:
    depth: int = 5  # a small ELU stack, the same with and without dropout
    width: int = 100  # neurons per hidden layer
    dropout_rate: float = 0.2  # dropout after every hidden layer
    epochs: int = 60  # at most this many epochs; early stopping ends sooner
    patience: int = 6  # early stopping on validation loss; the best weights are restored
    lr: float = 1e-3  # Nadam learning rate
    timed_images: int = 5000  # validation images each timed prediction pass covers
    samples: tuple[int, ...] = (1, 10, 30, 100)  # MC Dropout sample counts to time
    repeats: int = 5  # timings are the fastest of this many calls, after a warm-up call
    seed: int = 42  # the same initial weights for both nets


QUICK = Config(epochs=20, patience=3, timed_images=2000, samples=(1, 5, 10))


@dataclass(frozen=True)
class TrainStats:
    seconds_per_epoch: float  # CPU seconds of the cheapest epoch after the first (which compiles)
    best_epoch: int  # 1-based epoch of the lowest validation loss
    epochs_run: int
    time_to_best: float  # CPU seconds of training up to the best epoch
    best_val_loss: float
    val_loss: list[float]


@dataclass(frozen=True)
class Result:
    plain: TrainStats
    dropout: TrainStats
    predict_plain: float  # CPU seconds to predict `predicted` images, net trained without dropout
    predict_dropout: float  # the dropout net in inference mode (dropout off)
    mc_samples: list[int]
    mc_naive: list[float]  # CPU seconds for N naive MC Dropout passes over the same images
    mc_cached: list[float]  # the same with dnnlab's trunk-cached `mc_predict`
    predicted: int  # images per prediction pass


class AlwaysOnDropout(keras.layers.Dropout):
    """Dropout that stays on at inference, for the full-pass MC Dropout baseline. Only dropout is
    forced on: other layers (BatchNorm if any) keep their inference behaviour."""

    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


def full_pass_mc_predict(mc_model: keras.Model, x: np.ndarray, samples: int) -> np.ndarray:
    """Mean class probabilities over `samples` full forward passes with dropout on (the textbook's way)."""
    total = 0.0
    for _ in range(samples):
        total = total + keras.ops.convert_to_numpy(
            keras.ops.softmax(mc_model.predict(x, batch_size=EVAL_BATCH_SIZE, verbose=0))
        )
    return total / samples


def trunk_cached_mc_seconds(model: keras.Model, x: np.ndarray, samples: list[int], repeats: int) -> list[float]:
    """CPU seconds for MC Dropout with `dnnlab.uncertainty.mc_dropout.mc_predict`, which runs the layers
    before the first dropout layer once and samples only the rest (timed as `full_pass_mc_predict` is)."""
    return best_seconds([lambda n=n: mc_predict(model, x, samples=n, seed=0) for n in samples], repeats)


def train_stats(model: keras.Model, splits: Splits, config: Config) -> TrainStats:
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
    history = fit(model, splits, config.epochs, [stop])
    best = best_epoch_index(history)
    return TrainStats(
        seconds_per_epoch=steady_epoch_seconds(history["epoch_time"]),
        best_epoch=best + 1,
        epochs_run=len(history["val_loss"]),
        time_to_best=float(np.sum(history["epoch_time"][: best + 1])),
        best_val_loss=history["val_loss"][best],
        val_loss=history["val_loss"],
    )


def experiment(splits: Splits, config: Config, log: Progress = LOG) -> Result:
    model_config = ModelConfig(depth=config.depth, width=config.width)
    log.info(f"without dropout, up to {config.epochs} epochs")
    plain = compiled(build(model_config, splits, config.seed), config.lr)
    plain_stats = train_stats(plain, splits, config)
    log.info(f"with dropout {config.dropout_rate}, up to {config.epochs} epochs")
    dropout = compiled(with_hidden_dropout(build(model_config, splits, config.seed), config.dropout_rate), config.lr)
    dropout_stats = train_stats(dropout, splits, config)

    log.info("timing inference and MC Dropout")
    x = splits.x_valid[: config.timed_images]
    predict_plain, predict_dropout = best_seconds(
        [
            lambda: plain.predict(x, batch_size=EVAL_BATCH_SIZE, verbose=0),
            lambda: dropout.predict(x, batch_size=EVAL_BATCH_SIZE, verbose=0),
        ],
        config.repeats,
    )
    mc_model = with_hidden_dropout(dropout, config.dropout_rate, layer_class=AlwaysOnDropout)
    mc_naive = best_seconds([lambda n=n: full_pass_mc_predict(mc_model, x, n) for n in config.samples], config.repeats)
    return Result(
        plain_stats,
        dropout_stats,
        predict_plain,
        predict_dropout,
        list(config.samples),
        mc_naive,
        trunk_cached_mc_seconds(dropout, x, list(config.samples), config.repeats),
        len(x),
    )


def write_section(doc: Document, result: Result, folder: Path, config: Config) -> None:
    plain, drop = result.plain, result.dropout
    epoch_ratio = drop.seconds_per_epoch / plain.seconds_per_epoch
    converge_ratio = drop.best_epoch / plain.best_epoch
    stopped = [s.best_epoch + config.patience > config.epochs for s in (plain, drop)]
    slower = (
        f"dropout needed {converge_ratio:.1f}× the epochs to reach its best validation loss"
        if converge_ratio > 1
        else f"**in this run** dropout reached its best validation loss after {converge_ratio:.1f}× the epochs "
        "(not slower); on larger budgets it usually needs more epochs"
    )
    cap = (
        " (at least one run hit the epoch cap before early stopping, so its best epoch is a lower bound)"
        if any(stopped)
        else ""
    )
    one_pass = result.mc_naive[0] / result.mc_samples[0]  # seconds per MC pass at the smallest N
    per_sample = [t / one_pass for t in result.mc_naive]
    doc.heading(f"Q{NUMBER}. {QUESTION}")
    doc.bullets(
        [
            "**Training: yes.** Mainly because the noise that dropout injects slows convergence: the net "
            "typically needs more epochs, up to about twice as many, to reach its best model; drawing the masks "
            f"also adds a little work to each step. Measured ({config.depth}×{config.width} ELU net, dropout "
            f"{config.dropout_rate} after every hidden layer, Nadam, early stopping with patience "
            f"{config.patience}): best validation loss at epoch {drop.best_epoch} vs {plain.best_epoch} without "
            f"dropout: {slower}; {drop.time_to_best:.1f} vs {plain.time_to_best:.1f} CPU s of training up to the "
            f"best epoch; per epoch {drop.seconds_per_epoch:.2f} vs {plain.seconds_per_epoch:.2f} CPU s "
            f"({epoch_ratio:.2f}×"
            + (", so here the masks cost next to nothing" if epoch_ratio < 1.05 else "")
            + f"); best validation loss {drop.best_val_loss:.3f} vs {plain.best_val_loss:.3f}{cap}.",
            "**Inference: no.** Dropout is only active during training; at inference the layer passes its inputs "
            'through unchanged (Keras scales during training instead, "inverted dropout"), so the net does '
            f"exactly the same work. Measured: predicting {result.predicted:,} images took "
            f"{result.predict_dropout * 1000:.0f} CPU ms with the dropout net vs {result.predict_plain * 1000:.0f} "
            f"CPU ms without dropout ({result.predict_dropout / result.predict_plain:.2f}×; least of {config.repeats} "
            "calls each).",
            "**MC Dropout: yes, ×N at inference.** It keeps dropout on at inference and averages N stochastic "
            "predictions, so naive MC Dropout costs N forward passes (training is unchanged). Measured: "
            + ", ".join(
                f"N = {n}: {t:.2f} CPU s ({r:.1f}× one MC pass)"
                for n, t, r in zip(result.mc_samples, result.mc_naive, per_sample)
            )
            + ". Only the layers after the first dropout layer need to be recomputed for each sample, so caching "
            "the trunk before it cuts the cost when dropout sits near the output"
            + ". Here dropout follows every hidden layer, so the cached trunk is only the first layer; dnnlab's "
            "`mc_predict` measured "
            + ", ".join(f"N = {n}: {t:.2f} CPU s" for n, t in zip(result.mc_samples, result.mc_cached))
            + " (for the exercise's alpha-dropout net, with dropout just before the output layer, 100 samples "
            "cost about as much as two plain predictions: see BENCHMARKS.md).",
        ]
    )
    fig, axes = new_figure(11, 4, ncols=2)
    axes[0].plot(np.arange(1, len(plain.val_loss) + 1), plain.val_loss, "o-", label="no dropout")
    axes[0].plot(np.arange(1, len(drop.val_loss) + 1), drop.val_loss, "s-", label=f"dropout {config.dropout_rate}")
    for stats, color in ((plain, "C0"), (drop, "C1")):
        axes[0].axvline(stats.best_epoch, color=color, linestyle=":")
    axes[0].set(xlabel="epoch", ylabel="validation loss", title="convergence (dotted: best epoch)")
    axes[0].legend()
    axes[1].plot(result.mc_samples, result.mc_naive, "o-", label="naive MC Dropout")
    axes[1].plot(result.mc_samples, [n * one_pass for n in result.mc_samples], ":", label="N × one pass")
    axes[1].plot(result.mc_samples, result.mc_cached, "s-", label="trunk caching (mc_predict)")
    axes[1].set(xlabel="MC samples N", ylabel="CPU seconds", title=f"MC Dropout on {result.predicted:,} images")
    axes[1].legend()
    doc.figure(save_figure(fig, folder / "q7_dropout.png"), "Q7: convergence with and without dropout; MC Dropout cost")
