import math
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from dnnlab.config import ConfigError, LRSearchConfig, ModelConfig, RunConfig, TrainConfig
from dnnlab.errors import DnnlabError
from dnnlab.lr.finder import CSV_FILE, PLOT_FILE, lr_find, read_curve, run_range_test
from dnnlab.lr.range_test import LRRangeTest
from dnnlab.lr.rules import MIN_POINTS, RULES, minimum, steepest, suggest, valley
from dnnlab.models.build import build_model


class ScriptedModel:
    """Just what LRRangeTest touches: an optimizer LR, reset_metrics and stop_training."""

    def __init__(self):
        self.optimizer = SimpleNamespace(learning_rate=None)
        self.stop_training = False
        self.metric_resets = 0

    def reset_metrics(self):
        self.metric_resets += 1


def drive(callback: LRRangeTest, losses) -> tuple[ScriptedModel, list[float]]:
    """Feed scripted batch losses to the callback as `fit` would; return the LRs it applied."""
    model = ScriptedModel()
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    applied = []
    for batch, loss in enumerate(losses):
        callback.on_train_batch_begin(batch)
        applied.append(model.optimizer.learning_rate)
        callback.on_train_batch_end(batch, {"loss": loss})
        if model.stop_training:
            break
    callback.on_train_end()
    return model, applied


def test_sweep_is_exponential_and_hits_its_endpoints():
    test = LRRangeTest(steps=9, start_lr=1e-7, end_lr=10.0, restore=False)
    model, applied = drive(test, [1.0] * 20)
    assert applied == test.lrs and len(applied) == 9  # stops after `steps` batches
    assert applied[0] == pytest.approx(1e-7) and applied[-1] == pytest.approx(10.0)
    assert np.allclose(np.diff(np.log10(applied)), 1.0)  # constant ratio: one decade per step
    assert model.stop_training and not test.stopped_early
    assert model.metric_resets == 9  # each batch's own loss, not Keras's running mean


def test_smoothing_is_bias_corrected():
    test = LRRangeTest(steps=50, restore=False)
    drive(test, [2.0, 2.0, 1.0])
    assert test.smoothed[0] == pytest.approx(2.0) and test.smoothed[1] == pytest.approx(2.0)
    expected = (0.98 * (0.98 * 0.02 * 2 + 0.02 * 2) + 0.02 * 1) / (1 - 0.98**3)
    assert test.smoothed[2] == pytest.approx(expected)


def test_stop_rule_fires_on_an_exploding_loss():
    losses = [2.3] * 10 + list(np.linspace(2.3, 0.5, 40)) + [0.5 * 1.6**k for k in range(1, 60)]
    test = LRRangeTest(steps=500, restore=False)
    model, _ = drive(test, losses)
    # The same rule, computed independently: the first point whose smoothed loss exceeds 4x the best before it.
    average, smoothed = 0.0, []
    for i, loss in enumerate(losses):
        average = 0.98 * average + 0.02 * loss
        smoothed.append(average / (1 - 0.98 ** (i + 1)))
    first = next(i for i in range(1, len(smoothed)) if smoothed[i] > 4 * min(smoothed[:i]))
    assert test.stopped_early and model.stop_training
    assert len(test.losses) == first + 1  # the triggering point is kept for the plot
    assert first < len(losses) - 1, "precondition: it stopped before the script ran out"


def test_stop_rule_fires_on_nan():
    test = LRRangeTest(steps=100, restore=False)
    drive(test, [2.0, 1.9, 1.8, math.nan, 1.0, 1.0])
    assert test.stopped_early and len(test.losses) == 4


def test_batch_ends_out_of_order_are_recorded_in_step_order():
    """Keras may run async-safe batch ends in worker threads, so they can arrive in any order."""
    test = LRRangeTest(steps=4, restore=False)
    model = ScriptedModel()
    test.set_model(model)
    test.on_train_begin()
    test.on_epoch_begin(0)
    for batch in range(4):
        test.on_train_batch_begin(batch)
    for batch, loss in [(2, 3.0), (0, 1.0), (3, 4.0)]:
        test.on_train_batch_end(batch, {"loss": loss})
    assert test.losses == [1.0]  # step 1 is still missing
    test.on_train_batch_end(1, {"loss": 2.0})
    assert test.losses == [1.0, 2.0, 3.0, 4.0] and test.lrs == sorted(test.lrs)


def test_steps_continue_across_epochs():
    test = LRRangeTest(steps=6, restore=False)
    model = ScriptedModel()
    test.set_model(model)
    test.on_train_begin()
    for epoch in range(2):
        test.on_epoch_begin(epoch)
        for batch in range(3):
            test.on_train_batch_begin(batch)
            test.on_train_batch_end(batch, {"loss": 2.0 - 0.1 * (3 * epoch + batch)})
    assert test.losses == pytest.approx([2.0, 1.9, 1.8, 1.7, 1.6, 1.5])
    assert test.lrs[-1] == pytest.approx(10.0) and model.stop_training


def test_callback_state_is_reset_at_train_begin():
    test = LRRangeTest(steps=100, restore=False)
    drive(test, [2.0, math.nan])
    drive(test, [2.0, 1.5, 1.2])
    assert test.losses == [2.0, 1.5, 1.2] and not test.stopped_early


@pytest.mark.parametrize(
    "kwargs",
    [
        {"steps": 1},
        {"steps": 10, "start_lr": 1.0, "end_lr": 0.1},
        {"steps": 10, "stop_factor": 1.0},
        {"steps": 10, "beta": 1.0},
    ],
)
def test_bad_arguments_fail_eagerly(kwargs):
    with pytest.raises(ValueError):
        LRRangeTest(**kwargs)


# --- rules ----------------------------------------------------------------------------------------


def test_steepest_measures_slope_against_log_lr():
    lrs = np.geomspace(1e-6, 1.0, 30)
    losses = np.full(30, 2.0)
    losses[7:] -= 0.05  # a small drop at a small LR (~1e-5)...
    losses[21:] -= 0.5  # ...and a ten times larger one at ~1e-2
    skip = 3  # 10% of 30
    by_linear_lr = skip + int(np.argmin(np.gradient(losses[skip:], lrs[skip:])))
    assert by_linear_lr in (6, 7), "precondition: linear spacing favours the small drop"
    assert steepest(lrs, losses) in (lrs[20], lrs[21])  # the two central differences across the big drop


def test_steepest_skips_the_first_tenth():
    lrs = np.geomspace(1e-6, 1.0, 40)
    losses = np.linspace(3.0, 2.0, 40)
    losses[1:] -= 5.0  # a huge drop right at the start: noise at tiny LRs, not a signal
    losses[25:] -= 0.2
    assert steepest(lrs, losses) in (lrs[24], lrs[25])


def test_minimum_is_a_tenth_of_the_lowest_point():
    lrs = np.geomspace(1e-5, 1.0, 11)
    losses = [2.0, 1.9, 1.7, 1.5, 1.2, 1.0, 0.9, 1.3, 2.0, 5.0, 9.0]
    assert minimum(lrs, losses) == pytest.approx(lrs[6] / 10)
    assert suggest("turning-point", lrs, losses) == pytest.approx(lrs[6])


def fastai_valley(lrs, losses):
    """fastai's own loop (fastai/callback/schedule.py, `valley`), for comparison."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return float(lrs[max_start + int(sections) + int(sections / 2)])


@pytest.mark.parametrize("seed", range(5))
def test_valley_matches_fastai(seed):
    rng = np.random.default_rng(seed)
    lrs = np.geomspace(1e-7, 10, 80)
    curve = 2.3 - 1.2 / (1 + np.exp(-(np.log10(lrs) + 3))) + np.where(lrs > 0.1, 10 * (lrs - 0.1), 0)
    losses = curve + rng.normal(0, 0.02, 80)
    assert valley(lrs, losses) == pytest.approx(fastai_valley(lrs, losses))
    assert 1e-5 < valley(lrs, losses) < 1e-1  # inside the descent


@pytest.mark.parametrize("rule", sorted(RULES))
def test_too_few_points_is_a_clear_error(rule):
    lrs = np.geomspace(1e-7, 1e-3, 10)
    losses = [2.0, 1.9, 1.8, math.nan, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # only 3 points before the NaN
    with pytest.raises(DnnlabError, match=f"only 3 usable points \\(need >= {MIN_POINTS}\\)"):
        suggest(rule, lrs, losses)


def test_rules_stop_at_the_first_nan():
    lrs = np.geomspace(1e-6, 1.0, 12)
    losses = [2.0, 1.9, 1.8, 1.7, 1.6, 1.5, math.nan, 0.1, 0.1, 0.1, 0.1, 0.1]
    assert minimum(lrs, losses) == pytest.approx(lrs[5] / 10)  # not the 0.1 after the NaN


def test_unknown_rule_is_refused_by_the_config_and_by_suggest():
    with pytest.raises(ConfigError, match="--rule must be one of steepest, minimum, valley, turning-point"):
        LRSearchConfig(rule="best")
    assert {LRSearchConfig(rule=name).rule for name in RULES} == set(RULES)
    with pytest.raises(DnnlabError, match="unknown LR rule 'best'"):
        suggest("best", [1, 2, 3, 4, 5], [5, 4, 3, 2, 1])


def test_steepest_ignores_a_one_point_wiggle():
    """A dense sweep: a pointwise derivative picks a blip; a slope across half a decade does not."""
    lrs = np.geomspace(1e-7, 1.0, 500)  # ~71 points per decade
    losses = 2.3 - 1.0 / (1 + np.exp(-2 * (np.log10(lrs) + 3)))  # the real descent, around 1e-3
    losses[120] -= 0.05  # a blip at ~5e-6
    pointwise = 50 + int(np.argmin(np.gradient(losses[50:], np.log10(lrs[50:]))))
    assert pointwise in (119, 120, 121), "precondition: neighbour slopes pick the blip"
    assert 3e-4 < steepest(lrs, losses) < 3e-3


# --- on a real (small) model ------------------------------------------------------------------------


def small_model(splits, lr=1e-3):
    keras.utils.set_random_seed(0)
    model = build_model(
        ModelConfig(depth=2, width=16, batch_norm=True, dropout="dropout"), splits.feature_mean, splits.feature_std
    )
    model.compile(keras.optimizers.Nadam(lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def all_values(model):
    return [v.numpy().copy() for v in model.variables], [v.numpy().copy() for v in model.optimizer.variables]


def test_weights_and_optimizer_state_are_unchanged_after_the_test(toy_splits):
    model = small_model(toy_splits)
    model.fit(toy_splits.x_train[:64], toy_splits.y_train[:64], batch_size=32, verbose=0)  # a non-trivial state
    before_model, before_optimizer = all_values(model)
    assert int(model.optimizer.iterations.numpy()) == 2

    curve = run_range_test(model, toy_splits.x_train, toy_splits.y_train, batch_size=32, steps=30)

    after_model, after_optimizer = all_values(model)
    assert len(curve.lrs) >= 10  # it did train
    assert len(after_model) == len(before_model) and len(after_optimizer) == len(before_optimizer)
    assert all(np.array_equal(a, b) for a, b in zip(before_model, after_model))  # incl. BN statistics, seeds
    assert all(np.array_equal(a, b) for a, b in zip(before_optimizer, after_optimizer))  # step, LR, moments
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e-3)

    # Without the restore the same sweep does change them, so the check above can fail.
    model.fit(
        toy_splits.x_train,
        toy_splits.y_train,
        batch_size=32,
        verbose=0,
        callbacks=[LRRangeTest(steps=10, restore=False)],
    )
    changed_model, changed_optimizer = all_values(model)
    assert not all(np.array_equal(a, b) for a, b in zip(before_model, changed_model))
    assert not all(np.array_equal(a, b) for a, b in zip(before_optimizer, changed_optimizer))


def test_lr_find_writes_the_curve_and_the_plot(tmp_path, toy_splits):
    config = RunConfig(
        model=ModelConfig(depth=2, width=32),
        train=TrainConfig(batch_size=16),
        lr_search=LRSearchConfig(finder_steps=60, rule="valley"),
    )
    result = lr_find(config, toy_splits, tmp_path)
    lrs, losses, smoothed = read_curve(tmp_path / CSV_FILE)
    assert lrs == pytest.approx(result.curve.lrs) and smoothed == pytest.approx(result.curve.smoothed)
    assert losses == pytest.approx(result.curve.losses)
    assert result.rule == "valley" and result.suggestion == pytest.approx(valley(lrs, smoothed))
    assert result.curve.stopped_early  # an LR of 10 blows up this net long before step 60
    png = (tmp_path / PLOT_FILE).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_cli_lr_find_prints_the_suggestion(tmp_path, monkeypatch, capsys, toy_splits):
    import dnnlab.data
    from dnnlab.cli import main

    monkeypatch.setattr(dnnlab.data, "load_data", lambda config: toy_splits)
    common = ["--out", str(tmp_path), "--depth", "2", "--width", "16", "--batch-size", "16"]
    assert main(["lr-find", "--variant", "bn", "--rule", "steepest", "--finder-steps", "40", *common]) == 0
    out = capsys.readouterr().out
    assert "suggested lr" in out and "(steepest rule)" in out
    assert (tmp_path / "bn" / PLOT_FILE).exists() and (tmp_path / "bn" / CSV_FILE).exists()

    assert main(["lr-find", "--finder-steps", "3", *common]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "usable points" in err
