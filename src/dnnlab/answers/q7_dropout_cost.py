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
    fmt_mean_std,
    fmt_seeds,
    with_hidden_dropout,
)
from dnnlab.config import ModelConfig
from dnnlab.data import Splits
from dnnlab.models.compile import EVAL_BATCH_SIZE
from dnnlab.report.document import Document
from dnnlab.report.figures import new_figure, save_figure
from dnnlab.stats import HIGHER, LOWER, SAME, decide, evidence
from dnnlab.training.history import best_epoch_index, seconds_per_epoch, training_seconds
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
    seeds: tuple[int, ...] = (42, 43, 44)  # per seed, both nets start from the same initial weights


QUICK = Config(epochs=20, patience=3, timed_images=2000, samples=(1, 5, 10), seeds=(42,))


@dataclass(frozen=True)
class TrainStats:
    seconds_per_epoch: float  # training CPU seconds per epoch, the first (compiling) epoch left out
    best_epoch: int  # 1-based epoch of the lowest validation loss
    epochs_run: int
    time_to_best: float  # training CPU seconds up to the best epoch, the first counted at the steady rate
    best_val_loss: float
    val_loss: list[float]


@dataclass(frozen=True)
class Result:
    seeds: list[int]
    plain: list[TrainStats]  # per seed
    dropout: list[TrainStats]  # per seed, from the same initial weights as `plain`
    predict_plain: float  # CPU seconds to predict `predicted` images, first seed's net without dropout
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
        seconds_per_epoch=seconds_per_epoch(history["train_cpu_time"]),
        best_epoch=best + 1,
        epochs_run=len(history["val_loss"]),
        time_to_best=training_seconds(history["train_cpu_time"], best + 1),
        best_val_loss=history["val_loss"][best],
        val_loss=history["val_loss"],
    )


def experiment(splits: Splits, config: Config, log: Progress = LOG) -> Result:
    model_config = ModelConfig(depth=config.depth, width=config.width)
    plain_stats, dropout_stats, nets = [], [], None
    for seed in config.seeds:
        log.info(f"seed {seed}: without and with dropout {config.dropout_rate}, up to {config.epochs} epochs each")
        plain = compiled(build(model_config, splits, seed), config.lr)
        plain_stats.append(train_stats(plain, splits, config))
        dropout = compiled(with_hidden_dropout(build(model_config, splits, seed), config.dropout_rate), config.lr)
        dropout_stats.append(train_stats(dropout, splits, config))
        nets = nets or (plain, dropout)  # the first seed's nets are the ones timed

    log.info("timing inference and MC Dropout")
    plain, dropout = nets
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
        list(config.seeds),
        plain_stats,
        dropout_stats,
        predict_plain,
        predict_dropout,
        list(config.samples),
        mc_naive,
        trunk_cached_mc_seconds(dropout, x, list(config.samples), config.repeats),
        len(x),
    )


def _ratio(plain: list[TrainStats], drop: list[TrainStats], field: str) -> str:
    """Dropout's over plain's `field`, paired by seed, with its interval and verdict in words."""
    verdict = decide(
        [getattr(d, field) / getattr(p, field) for p, d in zip(plain, drop)],
        null=1.0,
        ratio=True,
        min_effect=np.log(1.05),
    )
    word = {HIGHER: "more", LOWER: "less", SAME: "the same"}.get(verdict.direction, "undecided")
    return f"{evidence(verdict, '×')}: {word}"


def write_section(doc: Document, result: Result, folder: Path, config: Config) -> None:
    plain, drop = result.plain, result.dropout
    seeds = fmt_seeds(len(result.seeds))
    capped = sum(s.best_epoch + config.patience > config.epochs for s in plain + drop)
    cap = (
        f" ({capped} of {len(plain + drop)} runs hit the epoch cap before early stopping, so their best epoch is "
        "a lower bound)"
        if capped
        else ""
    )
    one_pass = result.mc_naive[0] / result.mc_samples[0]  # seconds per MC pass at the smallest N
    per_sample = [t / one_pass for t in result.mc_naive]
    loss_gap = decide([d.best_val_loss - p.best_val_loss for p, d in zip(plain, drop)], min_effect=0.01)

    def both(field: str, digits: int) -> str:
        """`dropout's mean ± std vs plain's`, over seeds."""
        mine, theirs = ([getattr(s, field) for s in runs] for runs in (drop, plain))
        return f"{fmt_mean_std(mine, digits)} vs {fmt_mean_std(theirs, digits)}"

    doc.heading(f"Q{NUMBER}. {QUESTION}")
    doc.bullets(
        [
            "**Training: yes.** Mainly because the noise that dropout injects slows convergence: the net "
            "typically needs more epochs, up to about twice as many, to reach its best model; drawing the masks "
            f"also adds a little work to each step. Measured ({config.depth}×{config.width} ELU net, dropout "
            f"{config.dropout_rate} after every hidden layer, Nadam, early stopping with patience "
            f"{config.patience}, {seeds}, mean ± std; ratios are dropout over no dropout, paired by seed): best "
            f"validation loss at epoch {both('best_epoch', 1)} without dropout, a ratio of "
            f"{_ratio(plain, drop, 'best_epoch')} epochs; "
            f"{both('time_to_best', 1)} training CPU s up to the best epoch "
            f"({_ratio(plain, drop, 'time_to_best')} time); per epoch {both('seconds_per_epoch', 2)} CPU s "
            f"({_ratio(plain, drop, 'seconds_per_epoch')} work per epoch, the first, compiling epoch left out); "
            f"best validation loss {both('best_val_loss', 3)}, a difference of {evidence(loss_gap, '', 1.0, 3)}{cap}.",
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
            + ", ".join(
                f"N = {n}: {t:.2f} CPU s ({t / result.predict_dropout:.1f}× one deterministic prediction)"
                for n, t in zip(result.mc_samples, result.mc_cached)
            )
            + " (timings: the first seed's nets, the least of "
            f"{config.repeats} calls each).",
        ]
    )
    fig, axes = new_figure(11, 4, ncols=2)
    for runs, color, marker, label in (
        (plain, "C0", "o-", "no dropout"),
        (drop, "C1", "s-", f"dropout {config.dropout_rate}"),
    ):
        for i, stats in enumerate(runs):
            axes[0].plot(
                np.arange(1, len(stats.val_loss) + 1),
                stats.val_loss,
                marker,
                color=color,
                alpha=0.8,
                label=label if i == 0 else None,
            )
            axes[0].axvline(stats.best_epoch, color=color, linestyle=":", alpha=0.6)
    axes[0].set(xlabel="epoch", ylabel="validation loss", title=f"convergence, {seeds} (dotted: best epochs)")
    axes[0].legend()
    axes[1].plot(result.mc_samples, result.mc_naive, "o-", label="naive MC Dropout")
    axes[1].plot(result.mc_samples, [n * one_pass for n in result.mc_samples], ":", label="N × one pass")
    axes[1].plot(result.mc_samples, result.mc_cached, "s-", label="trunk caching (mc_predict)")
    axes[1].set(xlabel="MC samples N", ylabel="CPU seconds", title=f"MC Dropout on {result.predicted:,} images")
    axes[1].legend()
    doc.figure(save_figure(fig, folder / "q7_dropout.png"), "Q7: convergence with and without dropout; MC Dropout cost")
