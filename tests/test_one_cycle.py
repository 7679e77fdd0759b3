"""1cycle inside the compiled step: the schedules, the scheduled-momentum SGD, and `train` with both."""

import keras
import numpy as np
import pytest

from dnnlab.config import ModelConfig, RunConfig, TrainConfig
from dnnlab.models.compile import make_optimizer
from dnnlab.schedules.curves import one_cycle_lr, one_cycle_momentum, progress
from dnnlab.schedules.momentum_sgd import ScheduledMomentumSGD
from dnnlab.schedules.one_cycle import PiecewiseLinear, one_cycle_schedules
from dnnlab.training.train import train


def values(schedule, steps) -> np.ndarray:
    return np.array([float(keras.ops.convert_to_numpy(schedule(step))) for step in steps])


def test_piecewise_linear_interpolates_between_knots_and_is_flat_outside():
    schedule = PiecewiseLinear([0, 10, 20], [1.0, 3.0, 0.0])
    np.testing.assert_allclose(values(schedule, [-5, 0, 5, 10, 15, 20, 99]), [1, 1, 2, 3, 1.5, 0, 0], rtol=1e-6)
    with pytest.raises(ValueError, match="must increase"):
        PiecewiseLinear([0, 0], [1, 2])
    with pytest.raises(ValueError, match="as many values"):
        PiecewiseLinear([0, 1], [1])


@pytest.mark.parametrize("total", [1, 2, 7, 100, 1001])
def test_one_cycle_schedules_equal_the_pure_formulas_at_every_step(total):
    cycle = one_cycle_schedules(0.2, total)
    steps = range(total)
    expected_lr = [one_cycle_lr(progress(k, total), 0.2) for k in steps]
    expected_momentum = [one_cycle_momentum(progress(k, total)) for k in steps]
    np.testing.assert_allclose(values(cycle.lr, steps), expected_lr, rtol=1e-5)
    np.testing.assert_allclose(values(cycle.momentum, steps), expected_momentum, rtol=1e-6)


def test_one_cycle_shape_endpoints_peak_and_inverse_momentum():
    cycle = one_cycle_schedules(0.2, 101)
    lrs, momentums = values(cycle.lr, range(101)), values(cycle.momentum, range(101))
    assert lrs[0] == pytest.approx(0.02) and lrs[-1] == pytest.approx(0.2 / 1e4, rel=1e-4)
    assert int(np.argmax(lrs)) == 45 and lrs.max() == pytest.approx(0.2)
    rising_or_falling = slice(0, 91)  # the last 10% holds the momentum high while the LR drops
    assert np.all(np.sign(np.diff(lrs[rising_or_falling])) == -np.sign(np.diff(momentums[rising_or_falling])))
    assert momentums[45] == pytest.approx(0.85) and momentums[-1] == pytest.approx(0.95)
    with pytest.raises(ValueError, match="max_lr"):
        one_cycle_schedules(0.0, 10)


def tiny_net(optimizer):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    model.compile(optimizer, "mse")
    return model


def test_scheduled_momentum_sgd_matches_keras_sgd_for_a_constant_momentum():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)), rng.normal(size=(64, 2))
    for nesterov in (False, True):
        ours = tiny_net(ScheduledMomentumSGD(0.05, PiecewiseLinear([0], [0.8]), nesterov=nesterov))
        theirs = tiny_net(keras.optimizers.SGD(0.05, momentum=0.8, nesterov=nesterov))
        ours.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        theirs.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_compiled_step_follows_the_schedules_batch_by_batch():
    """Scripted: momentum 0.9 for two batches, then 0; the weights must differ from constant 0.9."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)), rng.normal(size=(64, 2))
    weights = []
    for schedule in (PiecewiseLinear([0], [0.9]), PiecewiseLinear([1, 2], [0.9, 0.0])):
        model = tiny_net(ScheduledMomentumSGD(PiecewiseLinear([0, 3], [0.05, 0.01]), schedule))
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 4
        weights.append(model.get_weights())
    assert not np.allclose(weights[0][0], weights[1][0])
    # The LR schedule is applied too: at step k the optimizer reports the scheduled value.
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.01)


def test_train_with_1cycle_sgd_runs_the_cycle_over_the_whole_fit(tmp_path, toy_splits):
    config = RunConfig(
        name="one",
        out=str(tmp_path),
        model=ModelConfig(depth=3, width=32),
        train=TrainConfig(lr=0.05, optimizer="sgd", schedule="1cycle", epochs=3, batch_size=64),
    )
    # Plain SGD (the torch backend substitutes its own SGD subclass), and no cycle for a range test.
    for plain in (make_optimizer(TrainConfig(optimizer="sgd"), 0.05), make_optimizer(config.train, 0.05)):
        assert isinstance(plain, keras.optimizers.SGD) and not isinstance(plain, ScheduledMomentumSGD)
    result = train(config, toy_splits, verbose=0)
    assert result.history["loss"][-1] < 0.5 * result.history["loss"][0]
    optimizer = result.model.optimizer
    steps = int(keras.ops.convert_to_numpy(optimizer.iterations))
    assert steps == 3 * int(np.ceil(len(toy_splits.x_train) / 64))
    # After the last batch the cycle is over: the LR sits at max_lr / 1e4.
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.05 / 1e4, rel=1e-3)
    saved = keras.saving.load_model(result.run_dir / "best.keras")  # the optimizer and schedules round-trip
    assert isinstance(saved.optimizer, ScheduledMomentumSGD)
    assert values(saved.optimizer.momentum_schedule, [0]) == pytest.approx([0.95])
