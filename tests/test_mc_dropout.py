import functools
import gc
import itertools
import weakref

import keras
import numpy as np
import pytest

from dnnlab.config import ModelConfig
from dnnlab.errors import DnnlabError
from dnnlab.models.build import build_model
from dnnlab.uncertainty import mc_dropout
from dnnlab.uncertainty.mc_dropout import MCDropout, mc_predict, naive_mc_predict
from dnnlab.uncertainty.mc_layers import FoldedDense, SharedNoise
from dnnlab.uncertainty.metrics import softmax

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 3)).astype("float32")
W1, B1 = RNG.normal(size=(3, 2)), np.array([0.3, -0.2])
W2, B2 = RNG.normal(size=(2, 3)) * 2, np.array([0.1, 0.0, -0.1])
GAMMA, BETA = np.array([1.5, 0.5]), np.array([0.2, -0.1])
# Far from the batch's own statistics, so BN in training mode gives very different outputs.
MOVING_MEAN, MOVING_VAR = np.array([5.0, -3.0]), np.array([4.0, 0.25])


def bn_dropout_model() -> keras.Model:
    """Dense(2) -> BatchNorm -> Dropout(0.5) -> Dense(3), with fixed weights and BN statistics."""
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(2),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(3),
        ]
    )
    dense1, bn, _, dense2 = model.layers
    dense1.set_weights([W1, B1])
    bn.set_weights([GAMMA, BETA, MOVING_MEAN, MOVING_VAR])
    dense2.set_weights([W2, B2])
    return model


def exact_moments(bn_mean: np.ndarray, bn_var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the softmax over the 4 equally likely masks of Dropout(0.5) on 2 units."""
    h = X @ W1 + B1
    normalized = GAMMA * (h - bn_mean) / np.sqrt(bn_var + 1e-3) + BETA  # Keras's default epsilon
    probs = np.stack(
        [softmax((normalized * np.array(mask) * 2.0) @ W2 + B2) for mask in itertools.product([0, 1], repeat=2)]
    )
    return probs.mean(axis=0), probs.std(axis=0)


@pytest.mark.parametrize("step_elements", [mc_dropout.STEP_ELEMENTS, 3 * 800])
def test_bn_uses_moving_statistics_while_dropout_varies(monkeypatch, step_elements):
    # 3 * 800 floats per step forces 4 chunks of 500 samples, one image per step.
    monkeypatch.setattr(mc_dropout, "STEP_ELEMENTS", step_elements)
    prediction = mc_predict(bn_dropout_model(), X, samples=2000, seed=0)
    mean, std = exact_moments(MOVING_MEAN, MOVING_VAR)
    np.testing.assert_allclose(prediction.mean_probs, mean, atol=0.03)
    np.testing.assert_allclose(prediction.std_probs, std, atol=0.03)
    assert prediction.std_probs.max() > 0.1 and prediction.mutual_information.max() > 0.05
    # The check can fail: BN on the batch's statistics (the model(x, training=True) trap) is far off.
    h = X @ W1 + B1
    wrong_mean, _ = exact_moments(h.mean(axis=0), h.var(axis=0))
    assert np.abs(prediction.mean_probs - wrong_mean).max() > 0.2


@functools.cache  # one model per test session, so tests share its compiled samplers
def skip_model() -> keras.Model:
    """A functional model: BN trunk, AlphaDropout, then a second Dropout and a skip connection."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((6,))
    trunk = keras.layers.BatchNormalization()(keras.layers.Dense(5, activation="selu")(inputs))
    head = keras.layers.Dense(4, activation="selu")(keras.layers.AlphaDropout(0.3)(trunk))
    head = keras.layers.Dropout(0.2)(head)
    outputs = keras.layers.Dense(3)(keras.layers.Concatenate()([head, trunk]))
    return keras.Model(inputs, outputs)


def small_alpha_dropout_model() -> keras.Model:
    keras.utils.set_random_seed(2)
    config = ModelConfig(
        depth=3, width=8, activation="selu", initializer="lecun_normal", dropout="alpha", dropout_rate=0.3
    )
    return build_model(config, input_shape=(4, 4, 3), num_classes=5)


@pytest.mark.parametrize("build, shape", [(skip_model, (32, 6)), (small_alpha_dropout_model, (32, 4, 4, 3))])
def test_cached_and_naive_sampling_agree_given_the_same_masks(build, shape):
    model = build()
    x = np.random.default_rng(3).uniform(0, 255, size=shape).astype("float32")
    prepared = MCDropout(model)
    assert prepared.uses_trunk
    # The cached path folds the noise into the Dense after the first dropout; naive does not.
    assert any(isinstance(layer, FoldedDense) for layer in prepared._sampler(30)[0].head.layers)
    cached = mc_predict(model, x, samples=30, seed=7, batch_size=16)
    naive = naive_mc_predict(model, x, samples=30, seed=7, batch_size=16)
    for field in ("mean_probs", "std_probs", "entropy", "mutual_information"):
        np.testing.assert_allclose(getattr(cached, field), getattr(naive, field), atol=1e-5)
    assert cached.std_probs.max() > 0.01  # the masks really vary


def test_seed_makes_sampling_reproducible():
    model, x = skip_model(), np.random.default_rng(4).normal(size=(32, 6)).astype("float32")
    first, again = (mc_predict(model, x, samples=30, seed=5, batch_size=16) for _ in range(2))
    other = mc_predict(model, x, samples=30, seed=6, batch_size=16)
    np.testing.assert_array_equal(first.mean_probs, again.mean_probs)
    assert np.abs(first.mean_probs - other.mean_probs).max() > 1e-3


def test_dropout_at_the_input_samples_the_whole_network():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.5), keras.layers.Dense(3)])
    assert not MCDropout(model).uses_trunk
    prediction = mc_predict(model, X, samples=50, seed=0)
    np.testing.assert_allclose(prediction.mean_probs.sum(axis=1), 1.0, atol=1e-6)
    assert prediction.std_probs.max() > 0.01


def test_each_sample_draws_one_alpha_dropout_mask_shared_by_the_batch():
    layer = keras.layers.AlphaDropout(0.5, seed=0)
    samples, batch, units = 3, 4, 50
    x = np.random.default_rng(0).normal(size=(samples * batch, units)).astype("float32")
    y = keras.ops.convert_to_numpy(SharedNoise(layer, samples)(x)[0]).reshape(samples, batch, units)
    alpha_p = -1.6732632423543772 * 1.0507009873554805
    a = ((1 - 0.5) * (1 + 0.5 * alpha_p**2)) ** -0.5
    b = -a * alpha_p * 0.5
    kept = np.isclose(y, a * x.reshape(samples, batch, units) + b, atol=1e-5)
    dropped = np.isclose(y, a * alpha_p + b, atol=1e-5)
    assert np.all(kept | dropped)  # one mask, not a mix of two draws
    assert np.all(kept == kept[:, :1, :])  # the same mask for every image of a sample
    assert not np.all(kept[0] == kept[1])  # a new mask per sample


def test_gaussian_dropout_noise_is_shared_by_the_batch_and_multiplicative():
    x = np.random.default_rng(1).uniform(1, 2, size=(3 * 4, 20)).astype("float32")
    y = keras.ops.convert_to_numpy(SharedNoise(keras.layers.GaussianDropout(0.3, seed=0), 3)(x)[0])
    factor = (y / x).reshape(3, 4, 20)
    np.testing.assert_allclose(factor, np.broadcast_to(factor[:, :1], factor.shape), rtol=1e-5)
    assert factor.std() > 0.1


def test_a_model_without_dropout_is_a_clear_error():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    with pytest.raises(DnnlabError, match="has no dropout layer"):
        mc_predict(model, X)


def test_noise_that_is_not_elementwise_affine_is_rejected():
    class SquaredDropout(keras.layers.Dropout):
        def call(self, inputs, training=False):
            return super().call(inputs, training=training) ** 2

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), SquaredDropout(0.5), keras.layers.Dense(2)])
    with pytest.raises(DnnlabError, match="does not act as x \\* scale \\+ offset"):
        mc_predict(model, X)


def test_unsupported_models_are_clear_errors():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dropout, self.dense = keras.layers.Dropout(0.5), keras.layers.Dense(2)

        def call(self, x):
            return self.dense(self.dropout(x))

    with pytest.raises(DnnlabError, match="Sequential or functional"):
        mc_predict(Subclassed(), X)
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.5)])
    inputs = keras.Input((3,))
    nested = keras.Model(inputs, keras.layers.Dense(2)(inner(inputs)))
    with pytest.raises(DnnlabError, match="nested model"):
        mc_predict(nested, X)
    with pytest.raises(DnnlabError, match="--samples must be >= 1"):
        mc_predict(bn_dropout_model(), X, samples=0)


def test_the_prepared_cache_does_not_keep_models_alive():
    model = bn_dropout_model()
    mc_dropout._prepare(model, cache_trunk=True)._sampler(4)  # the graphs a call builds, minus compiling
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
