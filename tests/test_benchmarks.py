"""The benchmark's arithmetic and bookkeeping (benchmarks/bench.py), without timing anything."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench  # noqa: E402
from protocol import VALID_SIZE, random_cifar_like  # noqa: E402


def test_flops_of_the_exercise_net_match_a_hand_count():
    flops = bench.training_flops_per_sample()
    macs = 3072 * 100 + 19 * 100 * 100 + 100 * 10
    assert flops["forward"] == 2 * macs == 996_400
    # The issue's ~135 GFLOP/epoch is the 3x-forward rule on 45,000 images ...
    assert flops["three_x_forward"] * 45_000 / 1e9 == pytest.approx(134.5, abs=0.05)
    # ... but nothing needs the gradient of the raw pixels, so one first-layer matmul is skipped.
    assert flops["needed"] == 3 * 2 * macs - 2 * 3072 * 100
    assert flops["needed"] * 45_000 / 1e9 == pytest.approx(106.9, abs=0.05)


def test_flops_scale_with_the_architecture():
    small = bench.training_flops_per_sample(inputs=4, depth=1, width=3, classes=2)
    assert small["forward"] == 2 * (4 * 3 + 3 * 2)
    assert small["needed"] == 3 * small["forward"] - 2 * 4 * 3


def test_percent_of_ceiling():
    # 100 GFLOP in 2 s is 50 GFLOP/s, a quarter of a 200 GFLOP/s ceiling.
    assert bench.percent_of_ceiling(100e9, 2.0, 200.0) == pytest.approx(25.0)


def test_contender_specs_parse_and_reject_unknown_stacks():
    c = bench.Contender.parse("spe8=dnnlab --steps-per-execution 8")
    assert (c.label, c.stack, c.args) == ("spe8", "dnnlab", ["--steps-per-execution", "8"])
    assert bench.Contender.parse("tf") == bench.Contender("tf", "tf", [])
    with pytest.raises(SystemExit, match="STACK"):
        bench.Contender.parse("x=pytorch")


def test_both_stacks_train_on_the_same_random_images():
    images, labels = random_cifar_like(VALID_SIZE + 100)
    again, again_labels = random_cifar_like(VALID_SIZE + 100)
    assert images.shape == (VALID_SIZE + 100, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, again_labels)
    assert set(np.unique(labels)) <= set(range(10))


def _result(seconds, cpu):
    return {
        "median_epoch_seconds": seconds,
        "median_epoch_cpu_seconds": cpu,
        "build_seconds": 3.0,
        "compile_seconds": 1.5,
    }


def test_markdown_table_reports_ratio_to_tf_and_percent_of_ceiling():
    report = {
        "contenders": [{"label": "dnnlab"}, {"label": "tf"}],
        "flops_per_epoch": 100e9,
        "cells": [
            {
                "variant": "elu",
                "batch": 32,
                "ceiling_gflops": 200.0,
                "results": {"dnnlab": _result(2.0, 3.0), "tf": _result(8.0, 15.0)},
            }
        ],
    }
    table = bench.markdown_tables(report)
    row = table.splitlines()[2]
    # wall ratio 2/8 and CPU ratio 3/15; 50 GFLOP/s and 12.5 GFLOP/s of a 200 GFLOP/s ceiling
    assert row == "| elu | 32 | 2.00 (3.0) | 8.00 (15.0) | 0.25 (0.20) | 25% | 6% | 200 |"
    assert "| elu | 32 | 3.0 | 1.5 | 3.0 | 1.5 |" in table


def test_early_stopping_replay_matches_keras_semantics():
    from time_to_accuracy import early_stop_epochs

    losses = [1.0, 0.8, 0.9, 0.8, 0.85, 0.7, 0.75, 0.76, 0.77]
    # 0.8 again at epoch 4 is not an improvement (Keras needs strictly lower), so with
    # patience 3 the wait reaches 3 at epoch 5 and the best is epoch 2.
    assert early_stop_epochs(losses, patience=3) == (5, 2)
    assert early_stop_epochs(losses, patience=4) == (9, 6)  # never stops: runs all, best 6
    assert early_stop_epochs(losses, patience=1) == (3, 2)


def test_early_stopping_replay_agrees_with_keras_callback():
    import keras

    from time_to_accuracy import early_stop_epochs

    losses = [2.0, 1.5, 1.6, 1.4, 1.45, 1.41, 1.42, 1.3, 1.5, 1.6]

    class Dummy:
        stop_training = False

    for patience in (1, 2, 3):
        callback = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience)
        callback.set_model(Dummy())
        callback.on_train_begin()
        run = len(losses)
        for epoch, loss in enumerate(losses):
            callback.on_epoch_end(epoch, {"val_loss": loss})
            if callback.model.stop_training:
                run = epoch + 1
                break
        assert early_stop_epochs(losses, patience)[0] == run


def test_analyse_reports_thresholds_and_waste():
    from time_to_accuracy import analyse

    history = {
        "epoch_time": [10.0, 5.0, 5.0, 5.0],
        "val_loss": [1.0, 0.9, 0.95, 0.97],
        "val_accuracy": [0.40, 0.46, 0.47, 0.45],
    }
    out = analyse(history, patiences=[1, 5], thresholds=[0.45, 0.5])
    assert out["reached"][0.45] == {"epoch": 2, "seconds": 15.0}
    assert out["reached"][0.5] is None
    assert out["early_stopping"][1] == {
        "epochs_run": 3,
        "best_epoch": 2,
        "epochs_after_best": 1,
        "val_accuracy_at_best": 0.46,
        "seconds": 20.0,
        "seconds_to_best": 15.0,
    }
    assert out["early_stopping"][5]["epochs_after_best"] == 2
