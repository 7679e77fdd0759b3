"""Fused steps: one compiled call per group of batches must train exactly like plain `fit`."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dnnlab.models.fused_steps import FusedTrainStep, use_fused_steps

jax_only = pytest.mark.skipif(keras.backend.backend() != "jax", reason="steps are fused on the JAX backend only")


def small_model() -> keras.Sequential:
    # BatchNormalization (moving statistics) and AlphaDropout (a random mask from the seed
    # state) are the state a fused loop could lose or replay.
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((12,)),
            keras.layers.Dense(16, activation="elu"),
            keras.layers.BatchNormalization(),
            keras.layers.AlphaDropout(0.1),
            keras.layers.Dense(3),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Nadam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def toy_data(samples: int = 410):
    rng = np.random.default_rng(0)
    return rng.normal(size=(samples, 12)).astype("float32"), rng.integers(0, 3, samples)


def fit(model: keras.Sequential, batch_size: int, epochs: int = 3) -> dict[str, list[float]]:
    x, y = toy_data()
    keras.utils.set_random_seed(2)  # the same shuffles for both models
    return model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0).history


@jax_only
def test_fused_fit_trains_exactly_like_plain_fit():
    plain = small_model()
    plain_history = fit(plain, batch_size=16)
    fused = small_model()
    # 410 samples in groups of 7 x 16 = 112: three whole groups and a short one of 74
    # (four 16-sample steps and a 10-sample step), as plain fit ends its epoch with 10.
    fused_history = fit(fused, batch_size=use_fused_steps(fused, 16, fused_samples=112))
    assert fused_history == plain_history
    for ours, theirs in zip(fused.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert int(fused.optimizer.iterations) == int(plain.optimizer.iterations) == 3 * 26


@jax_only
def test_fit_batch_size_groups_whole_batches_per_call():
    model = small_model()
    assert use_fused_steps(model, 32, fused_samples=2048) == 2048 and model.train_step.step_batch_size == 32
    assert use_fused_steps(model, 100, fused_samples=2048) == 2000 and model.train_step.step_batch_size == 100
    assert use_fused_steps(model, 512, fused_samples=600) == 512  # a group of one: nothing to fuse
    assert not isinstance(model.train_step, FusedTrainStep)


@jax_only
def test_an_unfused_model_runs_one_step_per_batch_again():
    model = small_model()
    fit(model, batch_size=use_fused_steps(model, 16, fused_samples=112), epochs=1)
    # The LR range test needs every step: fused_samples=0 must undo the grouping, including the
    # compiled step Keras cached with the group size traced in.
    assert use_fused_steps(model, 16, fused_samples=0) == 16 and not isinstance(model.train_step, FusedTrainStep)
    before = int(model.optimizer.iterations)
    fit(model, batch_size=16, epochs=1)
    assert int(model.optimizer.iterations) - before == 26


def test_a_model_trained_with_fused_steps_saves_as_a_plain_sequential(tmp_path):
    model = small_model()
    fit(model, batch_size=use_fused_steps(model, 16, fused_samples=112), epochs=1)
    model.save(tmp_path / "m.keras")
    # Loadable by Keras alone (no dnnlab class to register), with the same predictions.
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded) is keras.Sequential
    x, _ = toy_data(8)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
