"""Run folders written before the layout change (dnnlab at b3c08d9) still load, reuse and resume.

tests/data/runs-v0.1/ holds two tiny alpha-dropout runs trained with SGD + 1cycle, so `best.keras`
carries dnnlab's own serialized classes (the 1cycle schedule, the momentum-scheduled SGD): one
completed, one interrupted after its first epoch (see tests/data/make_runs_v0.1.py).
"""

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from dnnlab.config import RunConfig
from dnnlab.training.run_dir import COMPLETED, RunDir
from dnnlab.training.train import train
from tests.conftest import synthetic_splits

OLD_RUNS = Path(__file__).parent / "data" / "runs-v0.1"


@pytest.fixture(scope="module")
def splits():
    return synthetic_splits(n_train=256, n_valid=128, n_test=128, seed=0)  # the data the old runs saw


def copied(name: str, tmp_path: Path) -> RunConfig:
    """The old run folder `name` copied under tmp_path, and its config pointed there."""
    shutil.copytree(OLD_RUNS / name, tmp_path / name)
    raw = json.loads((OLD_RUNS / name / "config.json").read_text())
    return RunConfig.from_dict({**raw, "out": str(tmp_path)})


def test_a_completed_old_run_is_reused_and_its_model_loads(tmp_path, splits):
    config = copied("completed", tmp_path)
    saved = json.loads((OLD_RUNS / "completed" / "metrics.json").read_text())
    result = train(config, splits, verbose=0)
    assert result.metrics == saved, "reused as it is, not trained again"
    assert isinstance(result.model, keras.Sequential)
    assert type(result.model.optimizer).__name__ == "ScheduledMomentumSGD"
    loss, _ = result.model.evaluate(splits.x_valid, splits.y_valid, verbose=0)
    assert loss == pytest.approx(saved["valid_loss"], rel=1e-6)
    # Today's code trains the same config to the same numbers as the old code did.
    fresh = train(RunConfig.from_dict({**config.to_dict(), "out": str(tmp_path / "fresh")}), splits, verbose=0)
    assert fresh.metrics["valid_loss"] == saved["valid_loss"]
    assert fresh.history["loss"] == RunDir(tmp_path / "completed").history()["loss"]


def test_an_interrupted_old_run_resumes_to_the_uninterrupted_numbers(tmp_path, splits):
    config = copied("interrupted", tmp_path)
    assert RunDir(config.run_dir).status == "interrupted"
    assert (config.run_dir / "checkpoint" / "epoch-0001").is_dir()
    resumed = train(config, splits, verbose=0)
    assert resumed.status == COMPLETED and resumed.metrics["resumed_from_epoch"] == 1
    completed = json.loads((OLD_RUNS / "completed" / "metrics.json").read_text())
    # The two old runs differ only in their name, so the resumed one must end where the other did.
    assert resumed.metrics["valid_loss"] == completed["valid_loss"]
    assert np.array_equal(resumed.history["val_loss"], RunDir(OLD_RUNS / "completed").history()["val_loss"])
    assert not (config.run_dir / "checkpoint").exists()
