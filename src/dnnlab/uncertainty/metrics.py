"""Pure metrics of predicted class probabilities against labels: numpy in, numbers out.

Conventions: `probs` is (N, C) with rows summing to 1, `labels` is (N,) integer classes,
logarithms are natural (nats).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnnlab.errors import DnnlabError

ECE_BINS = 15  # equal-width confidence bins, as in Guo et al. (2017), "On Calibration of Modern Neural Networks"
NLL_FLOOR = 1e-12  # a probability of exactly 0 for the true class would make the NLL infinite


def _checked(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    if probs.ndim != 2 or labels.shape != (len(probs),) or len(probs) == 0:
        raise DnnlabError(f"metrics need probs (N, C) and labels (N,) with N > 0, got {probs.shape} and {labels.shape}")
    return probs, labels.astype(np.int64)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so large logits do not overflow."""
    shifted = np.asarray(logits, dtype=np.float64) - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def predictive_entropy(probs: np.ndarray) -> np.ndarray:
    """-sum_c p_c log p_c per row, with 0 log 0 = 0."""
    probs = np.asarray(probs, dtype=np.float64)
    logs = np.log(np.where(probs > 0, probs, 1.0))
    return -np.sum(probs * logs, axis=-1)


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    probs, labels = _checked(probs, labels)
    return float(np.mean(probs.argmax(axis=1) == labels))


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (the cross-entropy loss)."""
    probs, labels = _checked(probs, labels)
    return float(-np.mean(np.log(np.maximum(probs[np.arange(len(labels)), labels], NLL_FLOOR))))


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean over inputs of sum_c (p_c - onehot_c)^2: 0 is perfect, 2 is confidently wrong."""
    probs, labels = _checked(probs, labels)
    onehot = np.eye(probs.shape[1])[labels]
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


@dataclass(frozen=True)
class ReliabilityBins:
    """Confidence (max probability) histogram with the accuracy and mean confidence per bin."""

    edges: np.ndarray  # (bins + 1,) from 0 to 1; bin b holds confidences in (edges[b], edges[b+1]]
    counts: np.ndarray  # (bins,) inputs per bin
    accuracy: np.ndarray  # (bins,) fraction correct per bin; NaN where empty
    confidence: np.ndarray  # (bins,) mean confidence per bin; NaN where empty


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> ReliabilityBins:
    probs, labels = _checked(probs, labels)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Right-closed bins (lo, hi]: searchsorted(side="left") puts a confidence equal to an edge in
    # the bin below it; clip so a confidence of exactly 0 still lands in the first bin.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.bincount(index, weights=correct, minlength=bins) / counts
        conf = np.bincount(index, weights=confidence, minlength=bins) / counts
    return ReliabilityBins(edges=edges, counts=counts, accuracy=acc, confidence=conf)


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: sum over bins of (share of inputs) x |accuracy - confidence|."""
    table = reliability_bins(probs, labels, bins)
    filled = table.counts > 0
    gaps = np.abs(table.accuracy[filled] - table.confidence[filled])
    return float(np.sum(table.counts[filled] / table.counts.sum() * gaps))


def accuracy_vs_coverage(uncertainty: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy on the k most certain inputs, for k = 1..N: drop the most uncertain first.

    Returns (coverage, accuracy), both (N,), with coverage = k / N. Ties keep input order
    (a stable sort), so the curve is deterministic.
    """
    uncertainty, correct = np.asarray(uncertainty, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    if uncertainty.shape != correct.shape or uncertainty.ndim != 1 or len(uncertainty) == 0:
        raise DnnlabError(f"coverage needs two equal (N,) arrays, got {uncertainty.shape} and {correct.shape}")
    order = np.argsort(uncertainty, kind="stable")
    kept = np.arange(1, len(order) + 1)
    return kept / len(order), np.cumsum(correct[order]) / kept


def prediction_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The comparison table's columns: accuracy, nll, brier and ece (15 bins)."""
    return {
        "accuracy": accuracy(probs, labels),
        "nll": nll(probs, labels),
        "brier": brier(probs, labels),
        "ece": ece(probs, labels),
    }
