import dataclasses
import json

import pytest

from dnnlab import cli
from dnnlab.config import TrainConfig, for_variant
from dnnlab.errors import DnnlabError
from dnnlab.training.train import train
from dnnlab.uncertainty import report as report_module
from dnnlab.uncertainty.report import FIGURES, REPORT_FILE, mc_dropout_report
from tests.conftest import synthetic_splits


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 1-epoch alpha-dropout run on synthetic images: the run folder and its data."""
    splits = synthetic_splits(n_train=256, n_valid=128, n_test=128)
    base = for_variant("alpha-dropout")
    config = dataclasses.replace(
        base,
        out=str(tmp_path_factory.mktemp("runs")),
        model=dataclasses.replace(base.model, depth=2, width=16),
        train=TrainConfig(epochs=1, batch_size=64),
    )
    return train(config, splits=splits, verbose=0).run_dir, splits


def test_report_writes_json_and_figures_with_consistent_numbers(tiny_run):
    run_dir, splits = tiny_run
    report = mc_dropout_report(run_dir, split="valid", samples=10, splits=splits)
    saved = json.loads((run_dir / REPORT_FILE).read_text())
    assert saved == json.loads(json.dumps(report))
    for name in FIGURES.values():
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # The deterministic column must agree with Keras's own evaluation during training.
    assert report["test"]["deterministic"]["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert report["valid"]["deterministic"]["nll"] == pytest.approx(metrics["valid_loss"], rel=1e-4)
    for split in ("valid", "test"):
        assert set(report[split]["mc"]) == {"accuracy", "nll", "brier", "ece"}
        assert report[split]["n"] == 128
    coverage = report["coverage"]
    assert coverage["coverage"][-1] == 1.0 and len(coverage["coverage"]) == 20
    assert coverage["mc"][-1] == pytest.approx(report["valid"]["mc"]["accuracy"])
    assert coverage["deterministic"][-1] == pytest.approx(report["valid"]["deterministic"]["accuracy"])


def test_cli_prints_the_table(tiny_run, monkeypatch, capsys):
    run_dir, splits = tiny_run
    monkeypatch.setattr(report_module, "load_data", lambda config: splits)
    assert cli.main(["mc-dropout", str(run_dir), "--samples", "5", "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "MC Dropout (5)" in out and out.count("deterministic") >= 2
    assert json.loads((run_dir / REPORT_FILE).read_text())["plots_split"] == "test"


def test_bad_input_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["mc-dropout", str(tmp_path / "missing")]) == 2
    assert "not a finished run" in capsys.readouterr().err
    with pytest.raises(DnnlabError, match="--split must be one of valid, test"):
        mc_dropout_report(tmp_path, split="train")
