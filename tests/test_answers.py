"""`dnnlab answers`: the measuring functions on hand-made inputs, each experiment on tiny synthetic data."""

import json

import keras
import numpy as np
import pytest

from dnnlab.answers import (
    q1_same_init,
    q2_zero_bias,
    q3_selu,
    q4_activations,
    q5_momentum,
    q6_sparsity,
    q7_dropout_cost,
    runner,
)
from dnnlab.answers.common import build, compiled, with_hidden_dropout
from dnnlab.config import ModelConfig
from dnnlab.errors import DnnlabError
from dnnlab.report.document import Document
from tests.conftest import synthetic_splits


@pytest.fixture(scope="module")
def splits():
    return synthetic_splits(n_train=512, n_valid=256, n_test=32)


def section_text(module, result, config, folder) -> str:
    """The Markdown an experiment's result renders to (its figures are saved in `folder`)."""
    doc = Document("test")
    module.write_section(doc, result, folder, config)
    md_path, _ = doc.write(folder, "answers")
    return md_path.read_text()


# Q1 ------------------------------------------------------------------------------------------


def test_unit_spread_is_zero_only_for_identical_neurons():
    identical = np.tile(np.array([[0.3], [-1.2], [2.0]]), (1, 5))
    assert q1_same_init.unit_spread(identical, np.zeros(5)) == 0.0
    different = identical.copy()
    different[1, 3] += 0.25
    assert q1_same_init.unit_spread(different) == pytest.approx(0.25)
    assert q1_same_init.unit_spread(identical, np.array([0, 0, 0.1, 0, 0])) == pytest.approx(0.1)


@pytest.mark.slow  # trains small nets
def test_q1_same_value_init_stays_symmetric_while_he_init_does_not(splits, tmp_path):
    config = q1_same_init.Config(depth=2, width=16, epochs=3, lr=3e-3)
    result = q1_same_init.experiment(splits, config)
    assert max(result.spread_same) < 1e-6  # symmetry never broken
    assert min(result.spread_he) > 1e-2 and min(result.spread_he_init) > 1e-2
    assert len(result.values) == config.depth + 1 and len(set(result.values)) == config.depth + 1
    assert result.val_acc_he[-1] > result.val_acc_same[-1]  # 16 independent neurons beat one copied 16 times
    text = section_text(q1_same_init, result, config, tmp_path)
    assert "**No.**" in text and (tmp_path / "q1_accuracy.png").exists()


# Q2 ------------------------------------------------------------------------------------------


@pytest.mark.slow  # trains small nets
def test_q2_zero_vs_random_biases_over_seeds(tmp_path):
    noisy = synthetic_splits(n_train=512, n_valid=256, n_test=32, noise=250.0)  # not solved perfectly
    config = q2_zero_bias.Config(depth=2, width=16, epochs=2, seeds=(1, 2))
    result = q2_zero_bias.experiment(noisy, config)
    assert len(result.acc_zero) == len(result.acc_random) == 2
    assert all(0.2 < a < 1.0 for a in result.acc_zero + result.acc_random)  # both learn (chance: 0.1)
    assert result.acc_zero != result.acc_random  # the random biases were really used
    assert result.trained_bias_std > 0  # biases started at 0 and moved
    text = section_text(q2_zero_bias, result, config, tmp_path)
    assert "**Yes**" in text and "paired by seed" in text and "95% CI" in text and "2 seeds" in text


# Q3 ------------------------------------------------------------------------------------------


def test_dead_unit_counter_on_a_hand_made_layer():
    layer = keras.layers.Dense(4, activation="relu")
    layer.build((None, 2))
    # Inputs are non-negative, so unit 0 (all weights > 0) always fires, unit 1 (all < 0) never
    # does, unit 2 fires only for some inputs, and unit 3 (zero weights, bias -1) is dead.
    layer.kernel.assign(np.array([[1.0, -1.0, 1.0, 0.0], [1.0, -2.0, -1.0, 0.0]], dtype="float32"))
    layer.bias.assign(np.array([0.0, 0.0, 0.0, -1.0], dtype="float32"))
    x = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.5, 0.5]], dtype="float32")
    outputs = keras.ops.convert_to_numpy(layer(x))
    assert q3_selu.dead_unit_fraction(outputs) == 0.5
    assert q3_selu.dead_unit_fraction(np.ones((3, 5))) == 0.0


def test_gradient_readout_matches_a_finite_difference(splits):
    model = compiled(build(ModelConfig(depth=2, width=16), splits, seed=0), 0.01, optimizer="sgd")
    before = model.get_weights()
    x, y = splits.x_train[:64], splits.y_train[:64]
    grad = q3_selu.kernel_gradients(model, x, y, batches=2)[0]
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # weights restored
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)  # so is the learning rate
    # The loss's slope along the first kernel's gradient direction equals the gradient's norm.
    kernel = model.get_layer("hidden_1").kernel
    k0, eps, direction = before[0], 1e-2, grad / np.linalg.norm(grad)
    losses = []
    for sign in (1, -1):
        kernel.assign(k0 + sign * eps * direction)
        losses.append(model.evaluate(x, y, batch_size=32, verbose=0)[0])
    assert (losses[0] - losses[1]) / (2 * eps) == pytest.approx(np.linalg.norm(grad), rel=0.05)


@pytest.mark.slow  # trains small nets
def test_q3_selu_vs_relu_statistics(splits, tmp_path):
    config = q3_selu.Config(depth=6, width=32, epochs=1, samples=256, gradient_batches=2)
    result = q3_selu.experiment(splits, config)
    selu, relu = result.nets["selu"], result.nets["relu"]
    assert len(selu.init.means) == len(relu.trained.gradient_rms) == config.depth
    assert selu.init.dead == 0 and selu.trained.zero_outputs == 0  # SELU never outputs exactly 0
    assert 0.3 < relu.init.zero_outputs < 0.7  # about half of ReLU's outputs are 0 at init
    assert max(abs(m) for m in selu.init.means) < 0.3 and min(relu.init.means) > 0.2
    assert all(n > 0 for n in selu.init.gradient_rms + relu.init.gradient_rms)
    text = section_text(q3_selu, result, config, tmp_path)
    assert "Self-normalization" in text and "dying units" in text


# Q4 ------------------------------------------------------------------------------------------


@pytest.mark.slow  # trains small nets
def test_q4_table_has_one_row_per_activation(splits, tmp_path):
    config = q4_activations.Config(
        depth=2, width=16, epochs=2, activations=("relu", "sigmoid"), seeds=(1, 2), finder_steps=40
    )
    result = q4_activations.experiment(splits, config)
    assert [r.activation for r in result.rows] == ["relu", "sigmoid"]
    assert all(len(r.seconds_per_epoch) == len(r.val_accuracy) == 2 for r in result.rows)
    assert all(t > 0 for r in result.rows for t in r.seconds_per_epoch)
    assert all(0 <= a <= 1 for r in result.rows for a in r.val_accuracy)
    assert result.rows[0].lr != result.rows[1].lr  # each activation's own range test
    text = section_text(q4_activations, result, config, tmp_path)
    assert "**softmax** (output only)" in text and "the paired difference is" in text
    assert "2 seeds (--quick: fewer than the full run's 3)" in text


# Q5 ------------------------------------------------------------------------------------------


def test_q5_quadratic_momentum_near_one_has_not_converged_while_0_9_has():
    steps = 500
    paths = {m: q5_momentum.momentum_trajectory(m, 0.01, (1.0, 25.0), (-10.0, 1.0), steps) for m in (0.9, 0.99999)}
    assert paths[0.9].shape == (steps + 1, 2)
    assert q5_momentum.steps_to_converge(paths[0.9], 1e-3) is not None
    assert np.linalg.norm(paths[0.9][-1]) < 1e-3
    assert q5_momentum.steps_to_converge(paths[0.99999], 1e-3) is None
    assert q5_momentum.overshoot(paths[0.99999]) > 0.9  # swings almost as far past the minimum
    assert q5_momentum.crossings(paths[0.99999], 1e-3) > 3 * q5_momentum.crossings(paths[0.9], 1e-3)


def test_q5_converged_means_staying_inside_the_tolerance():
    path = np.array([[1.0, 0.0], [0.0001, 0.0], [0.5, 0.0], [0.0001, 0.0], [0.0, 0.0]])
    assert q5_momentum.steps_to_converge(path, 1e-3) == 3  # step 1 was inside but left again
    assert q5_momentum.steps_to_converge(path[:3], 1e-3) is None


@pytest.mark.slow  # trains small nets
def test_q5_experiment_on_synthetic_data(splits, tmp_path):
    config = q5_momentum.Config(momenta=(0.9, 0.99999), quad_steps=300, depth=2, width=16, epochs=1)
    result = q5_momentum.experiment(splits, config)
    assert len(result.net_losses[0]) == len(splits.x_train) // 32 and np.isfinite(result.net_val_loss[0])
    assert result.steps_to_converge[0] is not None and result.steps_to_converge[1] is None
    text = section_text(q5_momentum, result, config, tmp_path)
    assert "overshoots the minimum" in text and "not converged after 300 steps" in text


# Q6 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sparsity", [0.0, 0.37, 0.9, 0.99, 1.0])
def test_magnitude_pruning_reaches_the_requested_sparsity_exactly(sparsity):
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(30, 7)), np.full((7, 3), 0.5)]  # the second array is all ties
    masks = q6_sparsity.magnitude_masks(weights, sparsity)
    assert [m.shape for m in masks] == [w.shape for w in weights]
    total = sum(w.size for w in weights)
    pruned = [w * m for w, m in zip(weights, masks)]
    assert q6_sparsity.zero_fraction(pruned) == round(sparsity * total) / total
    kept = np.concatenate([np.abs(w[m]) for w, m in zip(weights, masks)])
    removed = np.concatenate([np.abs(w[~m]) for w, m in zip(weights, masks)])
    if kept.size and removed.size:
        assert removed.max() <= kept.min()  # the smallest magnitudes went first


def test_polynomial_sparsity_schedule():
    values = [q6_sparsity.polynomial_sparsity(s, 100, 0.9) for s in range(0, 121, 10)]
    assert values[0] == 0.0 and values[10] == pytest.approx(0.9) and values[-1] == pytest.approx(0.9)
    assert all(a <= b for a, b in zip(values, values[1:]))
    assert values[5] > 0.45 * 2 * 0.9 * 0.5  # cubic: more than half the target by mid-schedule


@pytest.mark.slow  # trains small nets
def test_q6_experiment_on_synthetic_data(splits, tmp_path):
    config = q6_sparsity.Config(
        depth=2,
        width=16,
        epochs=2,
        sparsities=(0.0, 0.5, 0.9),
        l1=(1e-3,),
        final_sparsity=0.8,
        finetune_epochs=1,
        prune_every=4,
    )
    noisy = synthetic_splits(n_train=512, n_valid=256, n_test=32, noise=250.0)  # not solved perfectly
    result = q6_sparsity.experiment(noisy, config)
    assert result.curve_sparsity == pytest.approx([0.0, 0.5, 0.9], abs=1e-4)  # rounded to whole weights
    assert result.gradual_sparsity == pytest.approx(0.8, abs=1e-4)
    assert result.one_shot_tuned_sparsity == pytest.approx(0.8, abs=1e-4)  # fine-tuning kept the pruned zeros
    assert result.one_shot_tuned_val_acc != result.one_shot_val_acc  # the fine-tuning really ran
    assert result.dropout_zero == 0.0  # dropout leaves every weight non-zero
    assert result.l1[0].tiny > result.dense_tiny  # l1 made more weights tiny than plain training
    assert len(result.l1[0].curve_val_acc) == 3
    assert result.curve_val_acc[0] == pytest.approx(result.dense_val_acc)
    assert "Dropout is not one of them" in section_text(q6_sparsity, result, config, tmp_path)


# Q7 ------------------------------------------------------------------------------------------


def test_mc_dropout_samples_differ_but_inference_is_deterministic(splits):
    model = compiled(with_hidden_dropout(build(ModelConfig(depth=2, width=16), splits, 0), 0.5), 1e-3)
    x = splits.x_valid[:64]
    assert np.array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    mc = with_hidden_dropout(model, 0.5, layer_class=q7_dropout_cost.AlwaysOnDropout)
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in mc.layers) == 2  # replaced, not doubled
    first, second = mc.predict(x, verbose=0), mc.predict(x, verbose=0)
    assert not np.allclose(first, second)
    mean = q7_dropout_cost.full_pass_mc_predict(mc, x, samples=3)
    assert mean.shape == (64, 10) and np.allclose(mean.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow  # trains small nets
def test_q7_experiment_on_synthetic_data(splits, tmp_path):
    config = q7_dropout_cost.Config(
        depth=2, width=16, epochs=4, patience=2, timed_images=64, samples=(1, 4), repeats=1, seeds=(1, 2, 3)
    )
    result = q7_dropout_cost.experiment(splits, config)
    assert len(result.plain) == len(result.dropout) == 3
    assert all(1 <= s.best_epoch <= s.epochs_run <= 4 for s in result.plain + result.dropout)
    assert len(result.mc_cached) == 2 and all(t > 0 for t in result.mc_cached)
    assert result.mc_naive[1] > result.mc_naive[0]
    text = section_text(q7_dropout_cost, result, config, tmp_path)
    assert "3 seeds, mean ± std" in text and text.count("95% CI") >= 4
    assert "two plain predictions" not in text  # only what was measured
    assert "one deterministic prediction" in text
    text = section_text(q7_dropout_cost, result, config, tmp_path)
    assert "**Training: yes.**" in text and "**Inference: no.**" in text and "`mc_predict` measured N = 1" in text


# runner and CLI ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [("5,1", [1, 5]), ("3", [3]), ("2,2, 4", [2, 4])])
def test_parse_questions(text, expected):
    assert runner.parse_questions(text) == expected


@pytest.mark.parametrize("text", ["8", "0,1", "one", ""])
def test_parse_questions_rejects_bad_lists(text):
    with pytest.raises(DnnlabError, match="--questions"):
        runner.parse_questions(text)


@pytest.mark.slow  # trains small nets
def test_run_answers_writes_quick_mode_reports(splits, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "load_data", lambda config: splits)
    tiny = q5_momentum.Config(momenta=(0.9, 0.99999), quad_steps=200, depth=1, width=8, epochs=1)
    monkeypatch.setattr(q5_momentum, "QUICK", tiny)
    md_path, html_path = runner.run_answers([5], quick=True, out=tmp_path)
    lines = capsys.readouterr().out.splitlines()
    assert "QUICK MODE" in lines[0] and any(line.startswith("Q5 done in") for line in lines)
    assert any(line.startswith("  Q5: net with SGD momentum 0.9, 1 epochs [") for line in lines)
    markdown = md_path.read_text()
    assert "QUICK MODE" in markdown and "## Q5." in markdown and "![" in markdown
    assert "data:image/png;base64," in html_path.read_text()
    record = json.loads((tmp_path / "answers.json").read_text())
    assert record["quick"] is True and record["questions"]["5"]["config"]["momenta"] == [0.9, 0.99999]


def test_cli_rejects_a_bad_question_list_in_one_line(tmp_path):
    from tests.test_cli import run_cli

    proc = run_cli("answers", "--questions", "1,9", "--out", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "dnnlab: error: --questions must list numbers from 1 to 7, got '1,9'"
