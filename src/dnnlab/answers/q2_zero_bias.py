"""Q2: zero biases are fine, because the randomly drawn weights already break the symmetry."""

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
from dnnlab.stats import HIGHER, LOWER, SAME, UNDECIDED, decide, evidence

NUMBER = 2
TITLE = "Zero biases?"
QUESTION = "Is it OK to initialize the bias terms to 0?"


@dataclass(frozen=True)
class Config:
    depth: int = 5  # hidden layers (ELU, He init: the project's default net, shorter)
    width: int = 100  # neurons per hidden layer
    epochs: int = 10  # training epochs per run
    lr: float = 1e-3  # Nadam learning rate
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)  # one zero-bias and one random-bias run per seed
    bias_std: float = 0.05  # "small random" biases: N(0, 0.05^2), Keras's RandomNormal default


QUICK = Config(epochs=3, seeds=(1, 2, 3))
SAME_GAP = 0.01  # accuracy gaps under 1 point do not matter for this question


@dataclass(frozen=True)
class Result:
    seeds: list[int]
    acc_zero: list[float]  # final validation accuracy per seed, biases started at 0
    acc_random: list[float]  # the same weights, biases started at N(0, bias_std^2)
    trained_bias_std: float  # std of the hidden biases after training from 0, mean over seeds


def hidden_bias_std(model: keras.Model) -> float:
    biases = [keras.ops.convert_to_numpy(layer.bias) for layer in hidden_dense_layers(model)]
    return float(np.std(np.concatenate(biases)))


def experiment(splits: Splits, config: Config, log: Progress = LOG) -> Result:
    model_config = ModelConfig(depth=config.depth, width=config.width)
    model = compiled(build(model_config, splits, config.seeds[0]), config.lr)
    start = snapshot(model)
    acc_zero, acc_random, bias_stds = [], [], []
    for seed in config.seeds:
        # Paired runs: the same He kernels for both, so only the biases differ.
        weights = build(model_config, splits, seed).get_weights()
        log.info(f"seed {seed}: zero biases, {config.epochs} epochs")
        keras.utils.set_random_seed(seed)
        restart(model, start, weights)
        acc_zero.append(fit(model, splits, config.epochs)["val_accuracy"][-1])
        bias_stds.append(hidden_bias_std(model))
        log.info(f"seed {seed}: random biases, {config.epochs} epochs")
        keras.utils.set_random_seed(seed)
        restart(model, start, weights)
        rng = np.random.default_rng(seed)
        for layer in dense_layers(model):
            layer.bias.assign(rng.normal(0.0, config.bias_std, layer.bias.shape).astype("float32"))
        acc_random.append(fit(model, splits, config.epochs)["val_accuracy"][-1])
    return Result(list(config.seeds), acc_zero, acc_random, float(np.mean(bias_stds)))


def write_section(doc: Document, result: Result, folder: Path, config: Config) -> None:
    zero, rand = np.array(result.acc_zero), np.array(result.acc_random)
    verdict = decide(rand - zero, min_effect=SAME_GAP)
    conclusion = {
        SAME: f"no difference that matters: the whole interval lies within ±{100 * SAME_GAP:.0f} point",
        UNDECIDED: "no difference can be claimed: the interval includes none",
        HIGHER: "random biases did better in this run, beyond the seed-to-seed noise",
        LOWER: "zero biases did better in this run, beyond the seed-to-seed noise",
    }[verdict.direction]
    doc.heading(f"Q{NUMBER}. {QUESTION}")
    doc.paragraph(
        "**Yes**, and it is the usual default (Keras's `Dense` starts its biases at 0). Symmetry is broken "
        "by the weights: each neuron's weights are drawn independently, so neurons compute different outputs "
        "and get different gradients from the first step, biases included. Zero biases therefore do not make "
        "neurons identical, and the biases move away from 0 as soon as training starts."
    )
    doc.paragraph(
        f"**Measured** ({config.depth} hidden layers of {config.width} ELU neurons, He init, Nadam, "
        f"{config.epochs} epochs, {len(result.seeds)} seeds; each seed trains the same weights twice, once with "
        f"zero biases and once with biases drawn from N(0, {config.bias_std}²)): validation accuracy "
        f"{zero.mean():.3f} ± {zero.std(ddof=1):.3f} with zero biases vs {rand.mean():.3f} ± {rand.std(ddof=1):.3f} "
        f"with random ones (mean ± std over seeds); random minus zero, paired by seed: {evidence(verdict)}: "
        f"{conclusion}. The biases "
        f"that started at 0 ended with a standard deviation of {result.trained_bias_std:.3f} (mean over "
        f"seeds): they do learn."
    )
    doc.table(
        ["seed", "zero biases", "random biases", "difference"],
        [[s, f"{z:.3f}", f"{r:.3f}", f"{r - z:+.3f}"] for s, z, r in zip(result.seeds, zero, rand)],
    )
