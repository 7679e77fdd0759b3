import keras
import numpy as np
import pytest

from dnnlab.config import VARIANTS, ModelConfig
from dnnlab.models.build import build_model, hidden_dense_layers

ZERO_MEAN = np.zeros(3072, dtype=np.float32)
UNIT_STD = np.ones(3072, dtype=np.float32)


def build(name: str, **changes) -> keras.Model:
    config = VARIANTS[name].model
    if changes:
        config = ModelConfig(**{**config.__dict__, **changes})
    return build_model(config, feature_mean=ZERO_MEAN, feature_std=UNIT_STD)


@pytest.mark.parametrize(
    "name, activation, initializer",
    [
        ("elu", "elu", "HeNormal"),
        ("bn", "elu", "HeNormal"),
        ("selu", "selu", "LecunNormal"),
        ("alpha-dropout", "selu", "LecunNormal"),
    ],
)
def test_presets_have_20_hidden_layers_with_their_init_and_activation(name, activation, initializer):
    model = build(name)
    hidden = hidden_dense_layers(model)
    assert len(hidden) == 20 and all(layer.units == 100 for layer in hidden)
    assert {type(layer.kernel_initializer).__name__ for layer in hidden} == {initializer}
    if name == "bn":
        acts = [layer for layer in model.layers if isinstance(layer, keras.layers.Activation)]
        assert len(acts) == 20 and {a.activation.__name__ for a in acts} == {activation}
    else:
        assert {layer.activation.__name__ for layer in hidden} == {activation}
    output = model.layers[-1]
    assert output.units == 10 and output.activation.__name__ == "linear"  # logits


def test_bn_sits_between_dense_and_activation():
    kinds = [type(layer).__name__ for layer in build("bn").layers]
    first = kinds.index("Dense")
    assert kinds[first : first + 6] == ["Dense", "BatchNormalization", "Activation"] * 2
    assert kinds.count("BatchNormalization") == 21 and kinds[first - 1] == "BatchNormalization"  # + input BN
    assert all(not layer.use_bias for layer in hidden_dense_layers(build("bn")))


def test_dropout_placement():
    kinds = [type(layer).__name__ for layer in build("alpha-dropout").layers]
    assert kinds[-2:] == ["AlphaDropout", "Dense"] and kinds.count("AlphaDropout") == 1
    assert "AlphaDropout" not in [type(layer).__name__ for layer in build("selu").layers]


def test_input_scaling_follows_the_variant():
    pixels = np.full((1, 32, 32, 3), 255.0, dtype=np.float32)
    unit = keras.Sequential(build("elu").layers[:2])
    assert float(np.max(unit(pixels))) == pytest.approx(1.0)
    mean = np.full(3072, 100.0, dtype=np.float32)
    std = np.full(3072, 5.0, dtype=np.float32)
    standardized = build_model(VARIANTS["selu"].model, feature_mean=mean, feature_std=std)
    first_two = keras.Sequential(standardized.layers[:2])
    np.testing.assert_allclose(np.asarray(first_two(pixels)), (255.0 - 100.0) / 5.0, rtol=1e-5)


def last_hidden_stats(model: keras.Model, x: np.ndarray) -> tuple[float, float]:
    last = hidden_dense_layers(model)[-1]
    probe = keras.Model(model.inputs, last.output)
    out = np.asarray(probe(x))
    return float(out.mean()), float(out.std())


def test_selu_self_normalizes_and_elu_does_not():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).standard_normal((2000, 32, 32, 3)).astype(np.float32)
    selu_mean, selu_std = last_hidden_stats(build("selu"), x)
    elu_mean, elu_std = last_hidden_stats(build("elu", input_scaling="standardize"), x)
    assert abs(selu_mean) < 0.15 and abs(selu_std - 1.0) < 0.15, (selu_mean, selu_std)
    assert abs(elu_mean) > 0.3 or abs(elu_std - 1.0) > 0.3, (elu_mean, elu_std)
