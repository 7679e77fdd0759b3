import numpy as np
import pytest

from dnnlab.errors import DnnlabError
from dnnlab.uncertainty.metrics import (
    accuracy,
    accuracy_vs_coverage,
    brier,
    ece,
    nll,
    prediction_metrics,
    predictive_entropy,
    reliability_bins,
    softmax,
)

# Five predictions worked out by hand. Confidences 0.90, 0.55, 0.58, 0.78, 0.45 fall into the
# 15-bin ECE bins (13/15, 14/15], (8/15, 9/15] (twice), (11/15, 12/15] and (6/15, 7/15].
PROBS = np.array(
    [
        [0.90, 0.05, 0.05],  # label 0: right
        [0.55, 0.25, 0.20],  # label 1: wrong
        [0.30, 0.58, 0.12],  # label 1: right
        [0.10, 0.12, 0.78],  # label 2: right
        [0.45, 0.35, 0.20],  # label 1: wrong
    ]
)
LABELS = np.array([0, 1, 1, 2, 1])


def test_accuracy_by_hand():
    assert accuracy(PROBS, LABELS) == pytest.approx(3 / 5)


def test_nll_by_hand():
    # -(ln 0.90 + ln 0.25 + ln 0.58 + ln 0.78 + ln 0.35) / 5
    # = (0.1053605 + 1.3862944 + 0.5447272 + 0.2484614 + 1.0498221) / 5
    assert nll(PROBS, LABELS) == pytest.approx(0.6669331, abs=1e-6)


def test_brier_by_hand():
    # per row: 0.015, 0.905, 0.2808, 0.0728, 0.665; their mean:
    assert brier(PROBS, LABELS) == pytest.approx(1.9386 / 5)


def test_ece_by_hand():
    # bins: {0.90 right}: |1 - 0.90|; {0.55 wrong, 0.58 right}: 2 x |0.5 - 0.565|;
    # {0.78 right}: |1 - 0.78|; {0.45 wrong}: |0 - 0.45|; weighted by 1/5 per prediction
    assert ece(PROBS, LABELS) == pytest.approx((0.10 + 0.13 + 0.22 + 0.45) / 5)


def test_reliability_bins_are_right_closed():
    edge = np.linspace(0, 1, 16)[9]  # the upper edge of bin 8, as the binning computes it
    probs = np.array([[edge, 1 - edge], [1.0, 0.0]])
    table = reliability_bins(probs, np.array([0, 0]))
    assert table.counts[8] == 1 and table.counts[14] == 1 and table.counts.sum() == 2
    assert np.isnan(table.accuracy[0])


def test_perfect_calibration_has_zero_ece_and_nll_floor():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert ece(probs, np.array([0, 1])) == 0.0
    assert nll(probs, np.array([1, 1])) == pytest.approx(-np.log(1e-12) / 2)  # finite, not inf


def test_prediction_metrics_keys_and_values():
    metrics = prediction_metrics(PROBS, LABELS)
    assert set(metrics) == {"accuracy", "nll", "brier", "ece"}
    assert metrics["ece"] == pytest.approx(0.18)


def test_accuracy_vs_coverage_drops_most_uncertain_first():
    coverage, acc = accuracy_vs_coverage(np.array([0.1, 0.5, 0.3, 0.2, 0.9]), np.array([1, 0, 1, 1, 0]))
    np.testing.assert_allclose(coverage, [0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(acc, [1, 1, 1, 0.75, 0.6])


def test_entropy_and_softmax():
    np.testing.assert_allclose(predictive_entropy(np.array([[1.0, 0.0], [0.5, 0.5]])), [0.0, np.log(2)])
    np.testing.assert_allclose(softmax(np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]])), [[0.5, 0.5], [0.25, 0.75]])


def test_bad_shapes_are_clear_errors():
    with pytest.raises(DnnlabError, match="probs"):
        accuracy(PROBS, LABELS[:3])
    with pytest.raises(DnnlabError, match="coverage"):
        accuracy_vs_coverage(np.zeros(3), np.zeros(4))
