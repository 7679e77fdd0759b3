"""Q3: SELU vs ReLU in a deep plain dense stack: activation statistics, dead units, gradient sizes."""

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
    fit,
    fmt_pct,
    kernels,
    restart,
    snapshot,
)
from dnnlab.config import ModelConfig
from dnnlab.data import Splits
from dnnlab.models.build import hidden_dense_layers
from dnnlab.report.document import Document
from dnnlab.report.figures import new_figure, save_figure

NUMBER = 3
TITLE = "SELU vs ReLU"
QUESTION = "Name three advantages of the SELU activation function over ReLU."

# SELU self-normalizes only under these conditions; ReLU gets its matching He init.
NETS = {
    "selu": dict(activation="selu", initializer="lecun_normal", input_scaling="standardize"),
    "relu": dict(activation="relu", initializer="he_normal", input_scaling="standardize"),
}


@dataclass(frozen=True)
class Config:
    depth: int = 20  # a deep stack, where normalization matters (exercise 8's depth)
    width: int = 100  # neurons per hidden layer
    epochs: int = 10  # training epochs per net
    # Plain SGD (no momentum) so one step with learning rate 1 reads out the exact gradient.
    lr: float = 0.01
    samples: int = 1000  # training images used to measure activations and dead units
    gradient_batches: int = 8  # batches averaged for the per-layer gradients
    seed: int = 42  # the same seed for both nets


QUICK = Config(epochs=3)


@dataclass(frozen=True)
class LayerStats:
    means: list[float]  # per hidden layer: mean activation over units and inputs
    stds: list[float]  # per hidden layer: std of the activations
    dead: float  # fraction of hidden units that output 0 for every input
    zero_outputs: float  # fraction of (unit, input) outputs that are exactly 0 (no gradient flows there)
    # Per hidden layer: RMS of d(loss)/d(kernel), i.e. its norm / sqrt(#weights), so that the first
    # layer (3072 inputs) and the others (100 inputs) are comparable.
    gradient_rms: list[float]


@dataclass(frozen=True)
class NetResult:
    init: LayerStats
    trained: LayerStats
    val_accuracy: float


@dataclass(frozen=True)
class Result:
    nets: dict[str, NetResult]  # keyed by activation: "selu", "relu"


def dead_unit_fraction(activations: np.ndarray) -> float:
    """Fraction of units (columns) that output exactly 0 for every input (rows): dead ReLUs."""
    return float(np.mean(np.all(activations == 0, axis=0)))


def hidden_activations(model: keras.Model, x: np.ndarray) -> list[np.ndarray]:
    """Each hidden layer's outputs (after its activation) for the inputs `x`."""
    probe = keras.Model(model.inputs[0], [layer.output for layer in hidden_dense_layers(model)])
    return [keras.ops.convert_to_numpy(a) for a in probe(x, training=False)]


def kernel_gradients(model: keras.Model, x: np.ndarray, y: np.ndarray, batches: int) -> list[np.ndarray]:
    """The mean loss gradient of each hidden kernel over the first `batches` batches of `x`.

    Keras has no backend-neutral `grad`, but a plain-SGD step with learning rate 1 moves every
    weight by exactly minus its gradient, through the model's already compiled train step. The
    model must be compiled with momentum-free SGD; its weights and optimizer state are restored.
    """
    start = snapshot(model)
    hidden = len(hidden_dense_layers(model))
    before = kernels(model)[:hidden]
    total = [np.zeros_like(k) for k in before]
    for b in range(batches):
        restart(model, start)
        model.optimizer.learning_rate = 1.0
        rows = slice(b * BATCH_SIZE, (b + 1) * BATCH_SIZE)
        model.train_on_batch(x[rows], y[rows])
        for t, k0, k1 in zip(total, before, kernels(model)):
            t += k0 - k1
    restart(model, start)
    return [t / batches for t in total]


def layer_stats(model: keras.Model, splits: Splits, config: Config) -> LayerStats:
    outputs = hidden_activations(model, splits.x_train[: config.samples])
    return LayerStats(
        means=[float(a.mean()) for a in outputs],
        stds=[float(a.std()) for a in outputs],
        dead=float(np.mean([dead_unit_fraction(a) for a in outputs])),
        zero_outputs=float(np.mean([np.mean(a == 0) for a in outputs])),
        gradient_rms=[
            float(np.sqrt(np.mean(g**2)))
            for g in kernel_gradients(model, splits.x_train, splits.y_train, config.gradient_batches)
        ],
    )


def experiment(splits: Splits, config: Config, log: Progress = LOG) -> Result:
    nets = {}
    for name, fields in NETS.items():
        model_config = ModelConfig(depth=config.depth, width=config.width, **fields)
        model = compiled(build(model_config, splits, config.seed), config.lr, optimizer="sgd")
        init = layer_stats(model, splits, config)
        log.info(f"{name}: {config.epochs} epochs of plain SGD")
        history = fit(model, splits, config.epochs)
        nets[name] = NetResult(init, layer_stats(model, splits, config), history["val_accuracy"][-1])
    return Result(nets)


def _span(values: list[float], fmt: str = "+.2f") -> str:
    return f"[{min(values):{fmt}}, {max(values):{fmt}}]"


def _ratio(values: list[float]) -> float:
    """How many times larger the largest per-layer value is than the smallest."""
    return max(values) / max(min(values), 1e-30)


def _caveat(supported: bool, what: str) -> str:
    return "" if supported else f" (**not seen in this run**: {what})"


def write_section(doc: Document, result: Result, folder: Path, config: Config) -> None:
    selu, relu = result.nets["selu"], result.nets["relu"]
    normalized = all(abs(m) < 0.3 for m in selu.init.means) and all(0.7 < s < 1.3 for s in selu.init.stds)
    centred = np.mean(np.abs(selu.init.means)) < np.mean(np.abs(relu.init.means))
    stable = _ratio(selu.init.gradient_rms) < 10 and _ratio(selu.trained.gradient_rms) < 10
    relu_stable = _ratio(relu.init.gradient_rms) < 10 and _ratio(relu.trained.gradient_rms) < 10
    alive = selu.trained.dead == 0 and relu.trained.zero_outputs > selu.trained.zero_outputs
    doc.heading(f"Q{NUMBER}. {QUESTION}")
    doc.paragraph(
        "**Conditions first**: SELU self-normalizes only in a plain stack of dense layers (no skip connections, "
        "no regular dropout; alpha dropout is fine), with **standardized inputs** (mean 0, std 1) and "
        "**LeCun-normal** initialization on every layer. The experiment below meets them: a "
        f"{config.depth}-layer stack of {config.width} units on standardized CIFAR-10 pixels, SELU with "
        f"LeCun-normal init vs ReLU with He init, trained {config.epochs} epochs with plain SGD "
        f"(lr {config.lr}); statistics over {config.samples} training images."
    )
    doc.bullets(
        [
            "**Self-normalization, hence no vanishing or exploding gradients**: each layer's outputs keep mean ≈ 0 "
            f"and std ≈ 1 through the whole depth, without BatchNorm. SELU layer means {_span(selu.init.means)} "
            f"and stds {_span(selu.init.stds, '.2f')} at init (after training, once the weights are no longer "
            f"LeCun-normal: {_span(selu.trained.means)} and {_span(selu.trained.stds, '.2f')})"
            + _caveat(normalized, "SELU's statistics at init left mean 0 / std 1")
            + f". The per-layer gradient RMS stays within a factor {_ratio(selu.init.gradient_rms):.1f} across "
            f"the {config.depth} layers at init and {_ratio(selu.trained.gradient_rms):.1f} after training; vanishing "
            "or exploding gradients would be orders of magnitude"
            + _caveat(stable, "SELU's gradients spanned 10x or more")
            + f" (ReLU with He init: {_ratio(relu.init.gradient_rms):.1f} and {_ratio(relu.trained.gradient_rms):.1f}"
            + ("; He init keeps ReLU's gradients stable too, but not its activations centred)" if relu_stable else ")"),
            "**Negative outputs pull each layer's mean toward 0**, as with ELU, which ReLU cannot do (its "
            f"outputs are ≥ 0): mean activation per layer {_span(selu.init.means)} for SELU vs "
            f"{_span(relu.init.means)} for ReLU at init, {_span(selu.trained.means)} vs {_span(relu.trained.means)} "
            "after training" + _caveat(centred, "SELU's means were not closer to 0 than ReLU's"),
            "**A non-zero gradient for negative inputs, so no dying units**: SELU's slope is λα·eᶻ > 0 for z < 0. "
            f"ReLU outputs exactly 0, and passes no gradient, for {fmt_pct(relu.trained.zero_outputs)} of its "
            f"(unit, input) pairs after training, SELU for {fmt_pct(selu.trained.zero_outputs)}; dead units (0 for "
            f"every input): ReLU {fmt_pct(relu.init.dead)} at init and {fmt_pct(relu.trained.dead)} after "
            f"training, SELU {fmt_pct(selu.trained.dead)}"
            + _caveat(alive, "SELU had dead units or ReLU had no more zero outputs than SELU"),
        ]
    )
    doc.paragraph(
        f"Validation accuracy after {config.epochs} epochs: SELU {selu.val_accuracy:.3f}, ReLU "
        f"{relu.val_accuracy:.3f}. The catch: SELU is slower to compute than ReLU, and its guarantees vanish "
        "when the conditions above are broken (BatchNorm is then the usual alternative)."
    )
    doc.table(
        ["net", "stage", "layer means", "layer stds", "dead units", "zero outputs", "gradient RMS span (×)"],
        [
            [
                name,
                stage,
                _span(s.means),
                _span(s.stds, ".2f"),
                fmt_pct(s.dead),
                fmt_pct(s.zero_outputs),
                f"{_ratio(s.gradient_rms):.1f}",
            ]
            for name, net in result.nets.items()
            for stage, s in (("init", net.init), ("trained", net.trained))
        ],
    )
    fig, axes = new_figure(14, 4, ncols=3)
    layers = np.arange(1, config.depth + 1)
    for name, net in result.nets.items():
        for stage, stats, style in (("init", net.init, "--"), ("trained", net.trained, "-")):
            label = f"{name} ({stage})"
            axes[0].plot(layers, stats.means, style, label=label)
            axes[1].plot(layers, stats.stds, style, label=label)
            axes[2].semilogy(layers, stats.gradient_rms, style, label=label)
    for ax, ylabel in zip(axes, ("activation mean", "activation std", "RMS of ∂loss/∂kernel")):
        ax.set(xlabel="hidden layer", ylabel=ylabel)
    axes[0].legend(fontsize=8)
    fig.suptitle("Q3: SELU (LeCun-normal, standardized inputs) vs ReLU (He) per layer")
    doc.figure(save_figure(fig, folder / "q3_layers.png"), "Q3: per-layer activation mean, std and gradient RMS")
