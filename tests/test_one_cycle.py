from types import SimpleNamespace

import numpy as np
import pytest

import keras

from dnnlab.config import ModelConfig, RunConfig, TrainConfig
from dnnlab.momentum_sgd import VariableMomentumSGD
from dnnlab.one_cycle import OneCycle
from dnnlab.train import make_optimizer, train


def drive(callback: OneCycle, epochs: int, steps: int, optimizer=None):
    """Run scripted epochs of `steps` batches; return (lr, momentum) as the optimizer held them per batch."""
    optimizer = optimizer or VariableMomentumSGD(learning_rate=0.5, momentum=0.9)
    callback.set_model(SimpleNamespace(optimizer=optimizer))
    callback.set_params({"epochs": epochs, "steps": steps})
    callback.on_train_begin()
    seen = []
    for _ in range(epochs):
        callback.on_epoch_begin(0)
        for batch in range(steps):
            callback.on_train_batch_begin(batch)
            momentum = getattr(optimizer, "current_momentum", None)
            seen.append((float(optimizer.learning_rate.numpy()), np.nan if momentum is None else float(momentum.numpy())))
            optimizer.iterations.assign_add(1)  # what the optimizer's own step does after each batch
            callback.on_train_batch_end(batch)
        callback.on_epoch_end(0)
    return np.array(seen)


def test_steps_every_batch_across_epochs():
    seen = drive(OneCycle(max_lr=1.0), epochs=3, steps=20)
    lrs = seen[:, 0]
    assert len(lrs) == 60
    assert np.all(np.diff(lrs) != 0)  # a new LR before every batch, not once per epoch
    assert not np.allclose(lrs[:20], lrs[0])  # it moves within the first epoch


def test_endpoints_and_peak():
    seen = drive(OneCycle(max_lr=0.2), epochs=2, steps=50)
    lrs = seen[:, 0]
    assert lrs[0] == pytest.approx(0.02)  # max_lr / 10
    assert lrs.max() == pytest.approx(0.2, rel=0.03) and 40 <= int(np.argmax(lrs)) <= 50  # peak at ~45%
    assert lrs[-1] == pytest.approx(0.2 / 1e4, rel=1e-5)  # the last batch ends the cycle


def test_momentum_moves_inversely_to_the_lr():
    seen = drive(OneCycle(max_lr=1.0), epochs=1, steps=101)
    lrs, momentums = seen[:91, 0], seen[:91, 1]  # the last 10% holds momentum high while the LR falls
    assert np.all(np.sign(np.diff(lrs)) == -np.sign(np.diff(momentums)))
    assert momentums[0] == pytest.approx(0.95) and momentums[int(np.argmax(lrs))] == pytest.approx(0.85)
    assert seen[-1, 1] == pytest.approx(0.95)


def test_a_resumed_run_continues_the_cycle():
    fresh = drive(OneCycle(max_lr=1.0, total_steps=60), epochs=3, steps=20)
    restored = VariableMomentumSGD(learning_rate=0.5, momentum=0.9)
    restored.iterations.assign(40)  # as a checkpoint after epoch 2 restores it
    resumed = drive(OneCycle(max_lr=1.0, total_steps=60), epochs=1, steps=20, optimizer=restored)
    np.testing.assert_allclose(resumed, fresh[40:], rtol=1e-6)


def test_total_steps_overrides_fit_and_state_resets():
    callback = OneCycle(max_lr=1.0, total_steps=10)
    first = drive(callback, epochs=1, steps=10)
    second = drive(callback, epochs=1, steps=10)
    assert np.array_equal(first, second) and len(callback.lrs) == 10
    assert first[-1, 0] == pytest.approx(1e-4)


def test_momentum_cycling_needs_a_variable_momentum():
    callback = OneCycle(max_lr=1.0)
    callback.set_model(SimpleNamespace(optimizer=keras.optimizers.SGD(0.1, momentum=0.9)))
    callback.set_params({"epochs": 1, "steps": 5})
    with pytest.raises(ValueError, match="VariableMomentumSGD"):
        callback.on_train_begin()
    lr_only = drive(OneCycle(max_lr=1.0, cycle_momentum=False), 1, 5, keras.optimizers.Nadam(0.5))
    assert lr_only[0, 0] == pytest.approx(0.1) and lr_only[-1, 0] == pytest.approx(1e-4)


def tiny_net(optimizer):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    model.compile(optimizer, "mse")
    return model


def test_variable_momentum_sgd_matches_keras_sgd():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)), rng.normal(size=(64, 2))
    for nesterov in (False, True):
        ours = tiny_net(VariableMomentumSGD(0.05, momentum=0.8, nesterov=nesterov))
        theirs = tiny_net(keras.optimizers.SGD(0.05, momentum=0.8, nesterov=nesterov))
        ours.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        theirs.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_momentum_changes_reach_the_compiled_step():
    """On JAX the train step is compiled once; a momentum set mid-fit must still be used."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)), rng.normal(size=(64, 2))

    class SetMomentum(keras.callbacks.Callback):
        def __init__(self, value):
            super().__init__()
            self.value = value

        def on_train_batch_begin(self, batch, logs=None):
            if batch == 2:
                self.model.optimizer.current_momentum.assign(self.value)

    weights = []
    for value in (0.9, 0.0):
        model = tiny_net(VariableMomentumSGD(0.05, momentum=0.9))
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[SetMomentum(value)])
        weights.append(model.get_weights())
    assert not np.allclose(weights[0][0], weights[1][0])


def test_fit_applies_the_schedule_per_batch():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(80, 4)), rng.normal(size=(80, 2))
    model = tiny_net(VariableMomentumSGD(0.01, momentum=0.9))
    cycle = OneCycle(max_lr=0.05)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[cycle])
    assert len(cycle.lrs) == 10
    # The optimizer's own variables hold the last scheduled values, so the assignments were not lost.
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(cycle.lrs[-1], rel=1e-5)
    assert float(model.optimizer.current_momentum.numpy()) == pytest.approx(cycle.momentums[-1])


def test_train_with_1cycle_sgd(tmp_path, toy_splits):
    config = RunConfig(name="one", out=str(tmp_path), model=ModelConfig(depth=3, width=32),
                       train=TrainConfig(lr=0.05, optimizer="sgd", schedule="1cycle", epochs=3, batch_size=64))
    assert isinstance(make_optimizer(config.train, 0.05), VariableMomentumSGD)
    assert type(make_optimizer(TrainConfig(optimizer="sgd"), 0.05)) is keras.optimizers.SGD
    result = train(config, toy_splits, verbose=0)
    assert result.history["loss"][-1] < 0.5 * result.history["loss"][0]
    saved = keras.saving.load_model(result.run_dir / "best.keras")  # the custom optimizer round-trips
    assert isinstance(saved.optimizer, VariableMomentumSGD)
