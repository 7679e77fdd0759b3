"""Tests on the real CIFAR-10; skipped with a reason when DNNLAB_DATA is not set."""

import csv
import json

import numpy as np

from dnnlab.data import load_cifar10, load_splits
from tests.conftest import real_data_dir, requires_real_data
from tests.test_cli import run_cli


@requires_real_data
def test_real_loader_shapes_and_balance():
    data = load_cifar10(real_data_dir(), download=False)
    assert data.x_train.shape == (50000, 32, 32, 3) and data.x_test.shape == (10000, 32, 32, 3)
    assert np.bincount(data.y_train).tolist() == [5000] * 10
    assert np.bincount(data.y_test).tolist() == [1000] * 10
    np.testing.assert_allclose(data.x_train.reshape(-1, 3).mean(axis=0), [125.3, 123.0, 113.9], atol=0.1)
    splits = load_splits(real_data_dir(), download=False)
    assert len(splits.x_train) == 45000 and len(splits.x_valid) == 5000


@requires_real_data
def test_short_subset_run(tmp_path):
    proc = run_cli(
        "train",
        "--variant",
        "bn",
        "--subset",
        "2000",
        "--epochs",
        "2",
        "--out",
        str(tmp_path),
        "--data-dir",
        str(real_data_dir()),
        "--no-download",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "bn" / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["train_size"] == 2000
    assert metrics["valid_accuracy"] > 0.15  # above chance after 2 short epochs


@requires_real_data
def test_study_quick_writes_every_file(tmp_path):
    """`dnnlab study optimizers --quick` on the real data: about a minute on 2 idle cores."""
    proc = run_cli("study", "optimizers", "--quick", "--out", str(tmp_path), "--data-dir", str(real_data_dir()))
    assert proc.returncode == 0, proc.stderr[-2000:]
    folder = tmp_path / "study" / "optimizers-quick"
    for name in ("report.md", "report.html", "results.csv", "cells.csv"):
        assert (folder / name).stat().st_size > 0, name
    for name in ("curves_epoch.png", "curves_time.png", "lr_range_tests.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    with (folder / "results.csv").open() as handle:
        rows = {row["option"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"sgd", "adam", "nadam"} and rows["nadam"]["verdict"] == "reference"
    for option in rows:
        metrics = json.loads((folder / option / "seed-42" / "metrics.json").read_text())
        assert metrics["status"] == "completed" and metrics["train_size"] == 2000
        assert metrics["valid_accuracy"] > 0.15  # above chance after 3 short epochs
    assert "Table 11-2" in (folder / "report.md").read_text()
