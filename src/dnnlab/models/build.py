"""One builder for every variant of exercise 8; presets are configs (`dnnlab.config.VARIANTS`)."""

from __future__ import annotations

import keras
import numpy as np

from dnnlab.config import ModelConfig, RunConfig
from dnnlab.data import Splits

INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10


def _input_scaling_layer(config: ModelConfig, feature_mean: np.ndarray | None, feature_std: np.ndarray | None):
    if config.input_scaling == "unit":
        return keras.layers.Rescaling(1.0 / 255, name="pixels_to_unit")
    if config.input_scaling == "standardize":
        if feature_mean is None or feature_std is None:
            raise ValueError("input_scaling='standardize' needs the training set's feature_mean and feature_std")
        # A constant pixel has std 0; dividing by 1 there leaves it at 0 after centring.
        variance = np.where(feature_std > 0, feature_std, 1.0) ** 2
        return keras.layers.Normalization(mean=feature_mean, variance=variance, name="standardize")
    return None


def build_model(
    config: ModelConfig,
    feature_mean: np.ndarray | None = None,
    feature_std: np.ndarray | None = None,
    input_shape: tuple[int, ...] = INPUT_SHAPE,
    num_classes: int = NUM_CLASSES,
) -> keras.Sequential:
    """A plain dense stack that takes raw 0-255 pixels and emits **logits**.

    The output layer has no softmax: train with
    `SparseCategoricalCrossentropy(from_logits=True)` and apply the softmax where
    probabilities are needed. A softmax output with the probability loss saturates on
    unscaled inputs and its clipped loss has zero gradient (measured: stuck at 9.7%).
    """
    model = keras.Sequential(name=f"dense_{config.depth}x{config.width}_{config.activation}")
    model.add(keras.Input(shape=input_shape, name="pixels"))
    model.add(keras.layers.Flatten(name="flatten"))
    scaling = _input_scaling_layer(config, feature_mean, feature_std)
    if scaling is not None:
        model.add(scaling)
    if config.input_batch_norm:
        model.add(keras.layers.BatchNormalization(name="input_bn"))
    for i in range(1, config.depth + 1):
        # With BN right after it, a Dense bias is redundant: BN's beta shifts the same way.
        model.add(
            keras.layers.Dense(
                config.width,
                kernel_initializer=config.initializer,
                use_bias=not config.batch_norm,
                activation=None if config.batch_norm else config.activation,
                name=f"hidden_{i}",
            )
        )
        if config.batch_norm:
            model.add(keras.layers.BatchNormalization(name=f"bn_{i}"))
            model.add(keras.layers.Activation(config.activation, name=f"act_{i}"))
    if config.dropout == "alpha":
        # AlphaDropout keeps SELU's mean and variance; it belongs only in self-normalizing nets.
        model.add(keras.layers.AlphaDropout(config.dropout_rate, name="alpha_dropout"))
    elif config.dropout == "dropout":
        model.add(keras.layers.Dropout(config.dropout_rate, name="dropout"))
    model.add(keras.layers.Dense(num_classes, kernel_initializer=config.initializer, name="logits"))
    return model


def hidden_dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    """The hidden Dense layers, in order (the output layer excluded)."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense) and layer.name != "logits"]


def build_for(config: RunConfig, splits: Splits) -> keras.Sequential:
    """The config's model, with input statistics from `splits`' training images."""
    return build_model(
        config.model,
        feature_mean=splits.feature_mean,
        feature_std=splits.feature_std,
        input_shape=splits.x_train.shape[1:],
        num_classes=splits.num_classes,
    )
