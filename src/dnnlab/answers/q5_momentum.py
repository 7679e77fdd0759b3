"""Q5: momentum too close to 1: overshoot, oscillation, very slow convergence (or divergence)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnnlab.answers.common import BATCH_SIZE, LOG, Progress, build, compiled, whole_batches
from dnnlab.config import ModelConfig
from dnnlab.data import Splits
from dnnlab.models.compile import evaluate
from dnnlab.report.document import Document
from dnnlab.report.figures import new_figure, save_figure

NUMBER = 5
TITLE = "Momentum too close to 1"
QUESTION = (
    "What may happen if you set the momentum hyperparameter too close to 1 (e.g., 0.99999) when using an SGD optimizer?"
)


@dataclass(frozen=True)
class Config:
    momenta: tuple[float, ...] = (0.9, 0.99, 0.99999)  # the values compared
    # The quadratic f(x) = (a x0^2 + b x1^2) / 2: condition number b / a = 25.
    curvatures: tuple[float, float] = (1.0, 25.0)
    quad_lr: float = 0.01  # SGD learning rate on the quadratic (stable without momentum: lr * 25 < 2)
    quad_start: tuple[float, float] = (-10.0, 1.0)  # far along the flat direction
    quad_steps: int = 2000  # steps simulated on the quadratic (cheap: pure NumPy)
    tolerance: float = 1e-3  # converged: distance to the minimum stays below this fraction of the start's
    depth: int = 3  # the real net: a small ELU stack trained with SGD
    width: int = 100  # neurons per hidden layer
    lr: float = 0.01  # SGD learning rate of the real net (the same for every momentum)
    epochs: int = 5  # epochs of the real net per momentum
    seed: int = 42  # the same initial weights and batch order for every momentum


QUICK = Config(epochs=2)


@dataclass(frozen=True)
class Result:
    momenta: list[float]
    trajectories: list[np.ndarray]  # per momentum: (quad_steps + 1, 2) positions on the quadratic
    steps_to_converge: list[int | None]  # None: not within quad_steps
    overshoot: list[float]  # furthest point past the minimum along x0, as a fraction of |start x0|
    crossings: list[int]  # times x0 crossed the minimum before converging (oscillations)
    net_losses: list[np.ndarray]  # per momentum: training loss of each batch (ends early on NaN)
    net_val_loss: list[float]  # validation loss after training (nan: diverged)


def momentum_trajectory(
    momentum: float, lr: float, curvatures: tuple[float, float], start: tuple[float, float], steps: int
) -> np.ndarray:
    """Positions of SGD with momentum on f(x) = sum(c_i x_i^2) / 2, using Keras's update rule:
    v <- momentum * v - lr * grad(x); x <- x + v."""
    c = np.asarray(curvatures, dtype=float)
    x = np.asarray(start, dtype=float)
    v = np.zeros_like(x)
    path = np.empty((steps + 1, 2))
    path[0] = x
    for t in range(1, steps + 1):
        v = momentum * v - lr * c * x
        x = x + v
        path[t] = x
    return path


def steps_to_converge(path: np.ndarray, tolerance: float) -> int | None:
    """First step after which the distance to the minimum (the origin) stays below
    `tolerance` times the starting distance; None if it never does within the path."""
    distance = np.linalg.norm(path, axis=1)
    outside = np.nonzero(distance >= tolerance * distance[0])[0]
    last_outside = outside[-1]
    return None if last_outside == len(path) - 1 else int(last_outside + 1)


def overshoot(path: np.ndarray) -> float:
    """How far past the minimum the flat coordinate went, as a fraction of its start."""
    x0 = path[:, 0]
    return float(max(0.0, (-np.sign(x0[0]) * x0).max()) / abs(x0[0]))


def crossings(path: np.ndarray, tolerance: float) -> int:
    """Times the flat coordinate changed sign before the path converged (see `steps_to_converge`)."""
    end = steps_to_converge(path, tolerance) or len(path)
    signs = np.sign(path[:end, 0])
    return int(np.count_nonzero(signs[1:] * signs[:-1] < 0))


def net_batch_losses(splits: Splits, config: Config, momentum: float) -> tuple[np.ndarray, float]:
    """Train the small net with SGD(momentum) batch by batch; per-batch loss and final val loss.

    `train_on_batch` returns each batch's own loss (fit's logs hold a running mean); the run
    stops at the first non-finite loss.
    """
    model = compiled(
        build(ModelConfig(depth=config.depth, width=config.width), splits, config.seed),
        config.lr,
        optimizer="sgd",
        momentum=momentum,
    )
    x, y = whole_batches(splits.x_train, splits.y_train)
    order_rng = np.random.default_rng(config.seed)
    losses = []
    for _ in range(config.epochs):
        order = order_rng.permutation(len(x)).reshape(-1, BATCH_SIZE)
        for rows in order:
            loss = float(model.train_on_batch(x[rows], y[rows], return_dict=True)["loss"])
            losses.append(loss)
            if not np.isfinite(loss):
                return np.array(losses), float("nan")
    return np.array(losses), evaluate(model, splits.x_valid, splits.y_valid)[0]


def experiment(splits: Splits, config: Config, log: Progress = LOG) -> Result:
    paths = [
        momentum_trajectory(m, config.quad_lr, config.curvatures, config.quad_start, config.quad_steps)
        for m in config.momenta
    ]
    net_losses, net_val = [], []
    for momentum in config.momenta:
        log.info(f"net with SGD momentum {momentum}, {config.epochs} epochs")
        losses, val_loss = net_batch_losses(splits, config, momentum)
        net_losses.append(losses)
        net_val.append(val_loss)
    return Result(
        momenta=list(config.momenta),
        trajectories=paths,
        steps_to_converge=[steps_to_converge(p, config.tolerance) for p in paths],
        overshoot=[overshoot(p) for p in paths],
        crossings=[crossings(p, config.tolerance) for p in paths],
        net_losses=net_losses,
        net_val_loss=net_val,
    )


def _smooth(values: np.ndarray, window: int = 25) -> np.ndarray:
    if len(values) < window:
        return values
    return np.convolve(values, np.ones(window) / window, mode="valid")


def _net_outcome(losses: np.ndarray, val_loss: float) -> str:
    if not np.isfinite(val_loss):
        return f"diverged (loss {losses[-1]:.3g}) at batch {len(losses)}"
    return (
        f"training loss {np.mean(losses[-25:]):.3f} over its last 25 batches (peak batch loss "
        f"{np.max(losses):.1f}), validation loss {val_loss:.3f}"
    )


def write_section(doc: Document, result: Result, folder: Path, config: Config) -> None:
    def quadratic_text(momentum: float, steps: int | None, overshoot: float, crossings: int) -> str:
        if steps is None:
            return (
                f"momentum {momentum}: not converged after {config.quad_steps} steps, overshoot "
                f"{overshoot:.0%} of the start, {crossings} crossings of the minimum so far"
            )
        return (
            f"momentum {momentum}: converged in {steps} steps, overshoot {overshoot:.0%} of the start, "
            f"{crossings} crossings of the minimum before converging"
        )

    doc.heading(f"Q{NUMBER}. {QUESTION}")
    doc.paragraph(
        "**It picks up a lot of speed, overshoots the minimum, oscillates around it many times, and converges "
        "much later, if at all.** Momentum is a friction coefficient: the velocity keeps a fraction `momentum` of "
        "itself at every step, so at 0.99999 almost no speed is ever lost. Each gradient adds to a velocity "
        "that decays over ~1/(1 − momentum) = 100,000 steps, so the optimizer rolls past the minimum, comes back, "
        "and passes it again; the effective step size lr/(1 − momentum) is also 100,000× the learning rate, so on "
        "a real net the loss can blow up."
    )
    doc.paragraph(
        f"**Measured** on an ill-conditioned quadratic f(x) = ({config.curvatures[0]:g}·x₀² + "
        f"{config.curvatures[1]:g}·x₁²)/2 from {config.quad_start}, lr {config.quad_lr}, converged = distance "
        f"to the minimum stays below {config.tolerance:g}× the start's: "
        + "; ".join(map(quadratic_text, result.momenta, result.steps_to_converge, result.overshoot, result.crossings))
        + f". On CIFAR-10 ({config.depth}×{config.width} ELU net, SGD lr {config.lr}, {config.epochs} epochs): "
        + "; ".join(
            f"momentum {m}: {_net_outcome(losses, v)}"
            for m, losses, v in zip(result.momenta, result.net_losses, result.net_val_loss)
        )
        + "."
    )
    fig, axes = new_figure(4.2 * (len(result.momenta) + 1), 4, ncols=len(result.momenta) + 1)
    for ax, m, path in zip(axes, result.momenta, result.trajectories):
        shown = path[:301]  # the first 300 steps
        span = np.abs(shown).max(axis=0) * 1.1
        g0, g1 = np.meshgrid(np.linspace(-span[0], span[0], 200), np.linspace(-span[1], span[1], 200))
        ax.contour(g0, g1, config.curvatures[0] * g0**2 + config.curvatures[1] * g1**2, levels=12, alpha=0.4)
        ax.plot(shown[:, 0], shown[:, 1], ".-", markersize=2, linewidth=0.8)
        ax.plot(0, 0, "r*", markersize=10)
        ax.set(title=f"momentum {m}: first {len(shown) - 1} steps", xlabel="x₀ (flat)", ylabel="x₁ (steep)")
    for m, path in zip(result.momenta, result.trajectories):
        axes[-1].semilogy(np.linalg.norm(path, axis=1), label=f"momentum {m}")
    axes[-1].axhline(config.tolerance * np.linalg.norm(config.quad_start), color="gray", linestyle=":")
    axes[-1].set(title="distance to the minimum", xlabel="step")
    axes[-1].legend(fontsize=8)
    doc.figure(
        save_figure(fig, folder / "q5_quadratic.png"),
        "Q5: SGD with momentum on an ill-conditioned quadratic (dotted: convergence threshold)",
    )
    fig, (ax,) = new_figure(7, 3.8)
    for m, losses in zip(result.momenta, result.net_losses):
        finite = np.where(np.isfinite(losses), losses, np.nan)
        ax.semilogy(_smooth(finite), label=f"momentum {m}" + ("" if np.isfinite(losses).all() else " (diverged)"))
    ax.set(
        title="Q5: CIFAR-10 training loss with SGD (25-batch moving average)", xlabel="batch", ylabel="training loss"
    )
    ax.legend()
    doc.figure(save_figure(fig, folder / "q5_net_loss.png"), "Q5: training loss of the real net per momentum")
