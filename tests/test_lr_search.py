import json
import math

import keras
import numpy as np
import pytest

from dnnlab.cli.flags import config_from_args
from dnnlab.cli.main import build_parser
from dnnlab.config import ConfigError, LRSearchConfig, ModelConfig, RunConfig, TrainConfig
from dnnlab.errors import DnnlabError
from dnnlab.lr.finder import CSV_FILE, PLOT_FILE
from dnnlab.lr.search import SEARCH_FILE, Candidate, candidate_lrs, choose, run_candidates, search_lr
from dnnlab.models import state as model_state
from dnnlab.models.build import build_for
from dnnlab.models.compile import compile_model
from dnnlab.training.run_dir import METRICS_FILE, RunDir
from dnnlab.training.train import saved_search_summary, train
from tests.conftest import real_data_dir, requires_real_data
from tests.test_cli import run_cli

SMALL = ModelConfig(depth=2, width=32)


def search_config(tmp_path, **search_fields) -> RunConfig:
    search = LRSearchConfig(**{"finder_steps": 100, "search_epochs": 2, **search_fields})
    return RunConfig(
        name="toy",
        out=str(tmp_path),
        model=SMALL,
        train=TrainConfig(lr="auto", epochs=3, batch_size=32),
        lr_search=search,
    )


def test_candidates_span_a_tenth_to_three_times_nearest_first():
    lrs = candidate_lrs(1e-3, 5)
    assert sorted(lrs) == pytest.approx(list(np.geomspace(1e-4, 3e-3, 5)))
    distances = [abs(math.log(lr / 1e-3)) for lr in lrs]
    assert distances == sorted(distances)
    assert candidate_lrs(1e-3, 1) == [1e-3]


def test_choose_takes_the_lowest_validation_loss_of_finished_candidates():
    candidates = [
        Candidate(1e-3, "completed", {}, 1.2, 1.0),
        Candidate(3e-3, "diverged", {}, None, 1.0),
        Candidate(1e-4, "pruned", {}, 0.9, 1.0),  # cannot happen in practice; must still not win
        Candidate(3e-4, "completed", {}, 1.1, 1.0),
    ]
    assert choose(candidates).lr == 3e-4
    with pytest.raises(DnnlabError, match="no LR candidate finished"):
        choose([Candidate(1.0, "diverged", {}, None, 1.0)])


def compiled(config, splits):
    """A compiled model that has been fit once, as the range test leaves it in `search_lr`.

    Keras's first fit peeks at a batch to build the metrics, which shifts that fit's shuffle.
    """
    keras.utils.set_random_seed(0)
    model = build_for(config, splits)
    compile_model(model, config.train, 1e-3)
    model.fit(splits.x_train[:32], splits.y_train[:32], batch_size=32, verbose=0)
    return model


def test_a_diverging_candidate_is_recorded_and_the_search_goes_on(tmp_path, toy_splits):
    config = search_config(tmp_path, search_subset=256)
    model = compiled(config, toy_splits)
    before = model_state.capture(model)
    candidates = run_candidates(model, config, toy_splits, [3e-3, 1e-3, 1e4, 1e-8])
    statuses = [c.status for c in candidates]
    assert statuses[:3] == ["completed", "completed", "diverged"]
    assert candidates[2].best_val_loss is None and candidates[2].lr == 1e4
    # 1e-8 barely learns: worse than the median of the finished ones after its first epoch.
    assert statuses[3] == "pruned" and len(candidates[3].history["val_loss"]) == 1
    for candidate in candidates[:2]:
        assert len(candidate.history["val_loss"]) == 2 and candidate.best_val_loss == min(candidate.history["val_loss"])
    after = model_state.capture(model)  # the model is left as it was
    assert all(np.array_equal(a, b) for a, b in zip(before.model_values, after.model_values))
    assert all(np.array_equal(a, b) for a, b in zip(before.optimizer_values, after.optimizer_values))


def test_every_candidate_starts_from_the_same_state(tmp_path, toy_splits):
    config = search_config(tmp_path, search_subset=128, search_epochs=1)
    model = compiled(config, toy_splits)
    twice = run_candidates(model, config, toy_splits, [1e-3, 1e-3])
    assert twice[0].history == twice[1].history  # same start, same batches: identical curves


def test_search_lr_picks_by_validation_and_records_everything(tmp_path, toy_splits):
    # The test images are removed: any use of them by the search would raise.
    object.__setattr__(toy_splits, "x_test", None)
    result = search_lr(search_config(tmp_path), toy_splits, tmp_path)
    assert result.rule == "minimum" and len(result.candidates) == 5
    assert result.chosen_lr == choose(result.candidates).lr
    assert sorted(c.lr for c in result.candidates) == pytest.approx(sorted(candidate_lrs(result.suggestion, 5)))
    saved = json.loads((tmp_path / SEARCH_FILE).read_text())
    assert saved["chosen_lr"] == result.chosen_lr and saved["seconds"] == result.seconds > 0
    assert [c["history"]["val_loss"] for c in saved["candidates"]] == [c.history["val_loss"] for c in result.candidates]
    assert (tmp_path / CSV_FILE).exists() and (tmp_path / PLOT_FILE).exists()


def test_train_lr_auto_records_the_search_in_metrics(tmp_path, toy_splits):
    result = train(search_config(tmp_path), toy_splits, verbose=0)
    metrics = json.loads((result.run_dir / METRICS_FILE).read_text())
    search = metrics["lr_search"]
    assert metrics["lr"] == search["chosen_lr"] and search["chosen_lr"] in [c["lr"] for c in search["candidates"]]
    assert search["seconds"] > 0 and search["training_seconds"] > 0
    assert search["fraction_of_training"] == pytest.approx(search["seconds"] / search["training_seconds"])
    assert {"suggestion", "rule", "range_test_seconds", "train_subset"} <= set(search)
    assert result.metrics["valid_accuracy"] > 0.5
    # A run resumed after its search records the same summary, read back from lr_search.json.
    fresh = {k: v for k, v in search.items() if k not in ("training_seconds", "fraction_of_training")}
    assert saved_search_summary(RunDir(result.run_dir)) == fresh
    assert all(c["epochs"] >= 1 for c in fresh["candidates"])


def test_1cycle_takes_its_peak_from_the_range_test(tmp_path, toy_splits):
    config = search_config(tmp_path)
    config = RunConfig(
        name="f",
        out=str(tmp_path),
        model=SMALL,
        lr_search=config.lr_search,
        train=TrainConfig(lr="auto", optimizer="sgd", schedule="1cycle", epochs=2, batch_size=64),
    )
    result = train(config, toy_splits, verbose=0)
    search = result.metrics["lr_search"]
    assert search["rule"] == "minimum" and search["candidates"] == []
    assert result.metrics["lr"] == search["chosen_lr"] == pytest.approx(10 * search["suggestion"])  # the turning point


def test_search_flags_reach_the_config():
    args = build_parser().parse_args(
        [
            "train",
            "--lr",
            "auto",
            "--rule",
            "valley",
            "--candidates",
            "3",
            "--search-subset",
            "2000",
            "--finder-steps",
            "300",
        ]
    )
    config = config_from_args(args)
    assert config.train.lr == "auto"
    assert config.lr_search == LRSearchConfig(rule="valley", candidates=3, search_subset=2000, finder_steps=300)
    assert RunConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="--rule must be one of steepest, minimum, valley"):
        LRSearchConfig(rule="fastest")


@requires_real_data
def test_lr_auto_on_a_real_subset(tmp_path):
    proc = run_cli(
        "train",
        "--variant",
        "selu",
        "--lr",
        "auto",
        "--subset",
        "3000",
        "--epochs",
        "2",
        "--finder-steps",
        "90",
        "--search-epochs",
        "1",
        "--out",
        str(tmp_path),
        "--data-dir",
        str(real_data_dir()),
        "--no-download",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "selu" / METRICS_FILE).read_text())
    search = metrics["lr_search"]
    assert metrics["lr"] == search["chosen_lr"] and len(search["candidates"]) == 5
    assert 1e-6 < search["suggestion"] < 1e-1 and metrics["valid_accuracy"] > 0.2
    assert (tmp_path / "selu" / PLOT_FILE).exists() and (tmp_path / "selu" / SEARCH_FILE).exists()
