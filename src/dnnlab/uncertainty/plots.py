"""Figures comparing predictors' uncertainty: reliability diagrams, accuracy vs coverage, entropy histograms.

Each function takes one array per predictor, keyed by its display name (e.g. "deterministic",
"MC Dropout (100)"), and saves a PNG through `dnnlab.report.figures`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dnnlab.report.figures import new_figure, save_figure
from dnnlab.uncertainty.metrics import ece, reliability_bins


def plot_reliability(probs: dict[str, np.ndarray], labels: np.ndarray, path: str | Path) -> Path:
    """One reliability diagram per predictor: accuracy per confidence bin against the diagonal."""
    fig, axes = new_figure(4.2 * len(probs), 4.2, ncols=len(probs))
    for ax, (name, p) in zip(axes, probs.items()):
        table = reliability_bins(p, labels)
        centers = (table.edges[:-1] + table.edges[1:]) / 2
        width = np.diff(table.edges)
        filled = table.counts > 0
        ax.bar(
            centers[filled],
            table.accuracy[filled],
            width=width[filled],
            edgecolor="black",
            color="tab:blue",
            label="accuracy",
        )
        ax.bar(
            centers[filled],
            table.confidence[filled] - table.accuracy[filled],
            bottom=table.accuracy[filled],
            width=width[filled],
            color="tab:red",
            alpha=0.35,
            label="gap to confidence",
        )
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1),
            xlabel="confidence (max probability)",
            ylabel="accuracy",
            title=f"{name}: ECE {ece(p, labels):.3f}",
        )
        ax.legend(loc="upper left", fontsize=8)
    return save_figure(fig, path)


def plot_accuracy_coverage(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path) -> Path:
    """Accuracy on the retained inputs as the most uncertain ones are dropped."""
    fig, (ax,) = new_figure(5.5, 4.2)
    for name, (coverage, acc) in curves.items():
        ax.plot(coverage, acc, label=name)
    ax.set(
        xlim=(0, 1),
        xlabel="coverage (fraction of inputs kept, most certain first)",
        ylabel="accuracy on kept inputs",
        title="Accuracy vs coverage (ranked by predictive entropy)",
    )
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def plot_entropy_histograms(entropy: dict[str, np.ndarray], correct: dict[str, np.ndarray], path: str | Path) -> Path:
    """Predictive entropy of correct vs wrong predictions, one panel per predictor."""
    fig, axes = new_figure(4.2 * len(entropy), 3.8, ncols=len(entropy))
    top = max(float(np.max(h)) for h in entropy.values())
    bins = np.linspace(0.0, max(top, 1e-6), 40)
    for ax, (name, h) in zip(axes, entropy.items()):
        right = np.asarray(correct[name], dtype=bool)
        ax.hist(h[right], bins=bins, alpha=0.6, density=True, label=f"correct ({right.sum()})")
        ax.hist(h[~right], bins=bins, alpha=0.6, density=True, label=f"wrong ({(~right).sum()})")
        ax.set(xlabel="predictive entropy (nats)", ylabel="density", title=name)
        ax.legend(fontsize=8)
    return save_figure(fig, path)
