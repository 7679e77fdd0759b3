"""The layers MC Dropout rebuilds a model with (see `dnnlab.uncertainty.mc_dropout`): a dropout
layer that draws one noise sample per MC sample (`SharedNoise`), and a Dense layer that absorbs
that noise into its kernel (`FoldedDense`)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from dnnlab.errors import DnnlabError

# Dropout covers SpatialDropout1D/2D/3D (subclasses). GaussianNoise and other training-only
# layers are not dropout and stay in inference mode.
STOCHASTIC_LAYERS = (keras.layers.Dropout, keras.layers.AlphaDropout, keras.layers.GaussianDropout)

# Keras's own layers, known from their source to act as x * scale + offset; others are checked.
AFFINE_LAYERS = (
    *STOCHASTIC_LAYERS,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
)


def affine_noise(layer: keras.layers.Layer, shape: tuple[int, ...]) -> tuple[Any, Any]:
    """`(scale, offset)` with `layer(x, training=True) == x * scale + offset` for one noise draw.

    The layer is called on ones and on zeros from the same seed-generator state, so both calls
    draw the same noise; the state then advances by exactly one draw.
    """
    generator = layer.seed_generator
    start = ops.copy(generator.state.value)  # a copy: the torch backend assigns in place
    at_one = layer(ops.ones(shape), training=True)
    generator.state.assign(start)
    offset = layer(ops.zeros(shape), training=True)
    return at_one - offset, offset


def require_affine_noise(layer: keras.layers.Layer, feature_shape: tuple[int | None, ...]) -> None:
    """Fail clearly if `layer`'s noise is not elementwise affine (e.g. a custom dropout subclass).

    Eager and slow on JAX (each op compiles), so only run for layers outside `AFFINE_LAYERS`.
    """
    if not isinstance(getattr(layer, "seed_generator", None), keras.random.SeedGenerator):
        raise DnnlabError(f"MC Dropout: layer {layer.name!r} has no seed_generator to draw its noise from")
    shape = (2,) + tuple(dim or 1 for dim in feature_shape)
    generator = layer.seed_generator
    start = ops.copy(generator.state.value)
    scale, offset = affine_noise(layer, shape)
    generator.state.assign(start)
    at_two = layer(ops.full(shape, 2.0), training=True)
    generator.state.assign(start)  # leave the layer as it was
    if not np.allclose(ops.convert_to_numpy(at_two), ops.convert_to_numpy(2.0 * scale + offset), atol=1e-5):
        raise DnnlabError(
            f"MC Dropout: layer {layer.name!r} ({type(layer).__name__}) does not act as x * scale + offset; "
            "only Dropout, SpatialDropout, AlphaDropout and GaussianDropout (and subclasses that keep "
            "their elementwise form) are supported"
        )


class SharedNoise(keras.layers.Layer):
    """A dropout-family layer that is always on, with one noise draw per sample shared across images.

    Its input is `samples` copies of a batch stacked along axis 0 (row `s * batch + b`). It
    returns the noisy input and the noise itself, `(y, scale, offset)`, so that a following
    Dense layer can absorb the noise instead (`FoldedDense`) while other readers of `y` see
    the same draw.
    """

    def __init__(self, layer: keras.layers.Layer, samples: int, **kwargs):
        super().__init__(name=f"{layer.name}_mc", **kwargs)
        self.layer = layer
        self.samples = samples

    def call(self, x):
        features = tuple(x.shape[1:])
        scale, offset = affine_noise(self.layer, (self.samples, *features))
        per_sample = ops.reshape(x, (self.samples, -1, *features))
        y = per_sample * ops.expand_dims(scale, 1) + ops.expand_dims(offset, 1)
        return ops.reshape(y, (-1, *features)), scale, offset

    def compute_output_spec(self, x):
        noise_shape = (self.samples, *x.shape[1:])
        return (
            keras.KerasTensor(x.shape, dtype=x.dtype),
            keras.KerasTensor(noise_shape, dtype=x.dtype),
            keras.KerasTensor(noise_shape, dtype=x.dtype),
        )


def foldable(layer: keras.layers.Layer) -> bool:
    """A plain Dense layer, whose kernel can absorb the noise before it (see `FoldedDense`)."""
    return (
        type(layer) is keras.layers.Dense
        and not layer.lora_enabled
        and getattr(layer, "quantization_mode", None) is None
    )


class FoldedDense(keras.layers.Layer):
    """`dense(x * scale_s + offset_s)` for every sample s, without building the noisy copies of x.

    (x * a_s + c_s) W = x (a_s[:, None] * W) + c_s W, so one (batch, d) x (d, samples * units)
    product replaces samples x batch noisy rows and their product with W: for the alpha-dropout
    head it halved the head's CPU time. Valid only when x is the same for every sample (a trunk
    tensor), so the first of its tiled copies is x itself.
    """

    def __init__(self, dense: keras.layers.Dense, samples: int, **kwargs):
        super().__init__(name=f"{dense.name}_folded", **kwargs)
        self.dense = dense
        self.samples = samples

    def call(self, inputs):
        tiled, scale, offset = inputs
        # ops.shape, not .shape: TensorFlow traces with an unknown batch size (None).
        x = tiled[: ops.shape(tiled)[0] // self.samples]
        kernel = self.dense.kernel
        units = kernel.shape[1]
        noisy_kernels = ops.transpose(ops.expand_dims(scale, -1) * kernel, (1, 0, 2))  # (d, samples, units)
        z = ops.matmul(x, ops.reshape(noisy_kernels, (kernel.shape[0], self.samples * units)))
        z = ops.transpose(ops.reshape(z, (-1, self.samples, units)), (1, 0, 2))  # (samples, batch, units)
        z = z + ops.expand_dims(ops.matmul(offset, kernel), 1)
        if self.dense.use_bias:
            z = z + self.dense.bias
        return self.dense.activation(ops.reshape(z, (-1, units)))

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs[0].shape[0], self.dense.units), dtype=inputs[0].dtype)
