"""MC Dropout done right and fast: only dropout layers sample, and only the part after them runs per sample.

Two traps of the usual `model(x, training=True)` shortcut are avoided:
- it also switches BatchNormalization to batch statistics; here every layer except the
  dropout family (Dropout and its SpatialDropout subclasses, AlphaDropout, GaussianDropout)
  stays in inference mode, so BN uses its moving statistics;
- it re-runs the whole network per sample; here everything before the first dropout layer
  (the deterministic *trunk*) runs once, and only the *head* runs on the tiled trunk features.
  When a dropout layer sits at the input, the trunk is empty and every layer is sampled.
  A Dense layer right after a dropout layer on trunk features absorbs the noise into its
  kernel (`FoldedDense`), so the noisy copies of the features are never built.

Noise is drawn per sample and shared by the images of one step (`batch_size` images): each
image still sees `samples` independent masks, so its predictive distribution (mean, std,
entropy, mutual information) is estimated exactly as by independent sampling; only the Monte
Carlo errors of images in the same step are correlated. A separate mask per image and sample
would need 10^8 threefry draws for the alpha-dropout net (100 samples x 10,000 images x 100
units), measured at 2.8 s of CPU on their own; shared noise needs 10^4 per step.

Keras's dropout layers are elementwise affine in their input given the noise
(`y = x * scale + offset`; offset is nonzero for AlphaDropout). The noise is obtained from the
layer itself by calling it on ones and on zeros with the same seed, so every dropout-family layer
keeps its exact training-time behaviour; for layers other than Keras's own, the assumption is
checked when a model is prepared.
"""

from __future__ import annotations

import random
import weakref
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from dnnlab.errors import DnnlabError
from dnnlab.models.compile import EVAL_BATCH_SIZE
from dnnlab.uncertainty.mc_layers import (
    AFFINE_LAYERS,
    STOCHASTIC_LAYERS,
    FoldedDense,
    SharedNoise,
    foldable,
    require_affine_noise,
)
from dnnlab.uncertainty.metrics import predictive_entropy

# Floats in the widest head activation per step (32 MiB at float32): bounds memory. For the
# alpha-dropout head (84k rows of 100 units per step) it measured within noise of the fastest
# setting; much larger steps fall out of the CPU caches, much smaller ones pay Keras's per-step cost.
STEP_ELEMENTS = 2**23


@dataclass(frozen=True)
class MCPrediction:
    """Monte Carlo estimates of the predictive distribution, one row per input."""

    mean_probs: np.ndarray  # (N, C) mean over samples of the softmax probabilities
    std_probs: np.ndarray  # (N, C) their standard deviation over samples
    entropy: np.ndarray  # (N,) predictive entropy H[mean_probs] in nats: total uncertainty
    mutual_information: np.ndarray  # (N,) H[mean_probs] - mean_s H[p_s] >= 0: the epistemic part
    samples: int  # how many dropout samples were averaged


def _per_row_size(tensor: keras.KerasTensor) -> int:
    return int(np.prod([dim or 1 for dim in tensor.shape[1:]]))


def _contains_dropout(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.Model) and any(
        isinstance(inner, STOCHASTIC_LAYERS) or _contains_dropout(inner) for inner in layer.layers
    )


class _Tracer:
    """Re-runs a model's graph on its own layers, wrapping each dropout layer in `SharedNoise`.

    Records which tensors depend on a dropout layer (the head) and the deterministic tensors the
    head consumes (the cut between trunk and head). With `fold`, a Dense layer reading a
    dropout layer's output whose input is a trunk tensor becomes a `FoldedDense`.
    """

    def __init__(self, samples: int, fold: bool):
        self.samples = samples
        self.fold = fold
        self._folds: dict[int, tuple] = {}  # id of a noisy trunk tensor -> (trunk tensor, scale, offset)
        self.noise_layers: list[SharedNoise] = []
        self._noisy: set[int] = set()  # ids of tensors downstream of a dropout layer
        self.cut: dict[int, keras.KerasTensor] = {}  # deterministic tensors that the head reads
        self.head_width = 0  # the largest per-row size of a head tensor
        self.full_width = 0  # the same over every tensor (the whole network is the head)

    def clone(self, layer: keras.layers.Layer) -> keras.layers.Layer:
        """Share every layer (and its weights); only dropout layers get a fresh, wrapped copy."""
        if _contains_dropout(layer):
            raise DnnlabError(
                f"MC Dropout: nested model {layer.name!r} contains dropout; flatten it into the outer model"
            )
        if isinstance(layer, STOCHASTIC_LAYERS):
            # A fresh copy, so seeding the sampler never touches the user's model. It gets an explicit
            # seed: on the torch backend, Dropout without one ignores its seed generator and draws
            # from torch's global RNG, so `seed` would not apply and the ones/zeros calls of
            # `affine_noise` would not share a mask. The seed is the one `SeedGenerator(None)` draws.
            config = layer.get_config()
            if "seed" in config and config["seed"] is None:
                config["seed"] = random.randint(1, int(1e9))
            wrapped = SharedNoise(type(layer).from_config(config), self.samples)
            self.noise_layers.append(wrapped)
            return wrapped
        return layer

    def call(self, layer: keras.layers.Layer, *args, **kwargs):
        fold = self._folds.get(id(args[0])) if foldable(layer) and len(args) == 1 and not kwargs else None
        if fold is not None:
            layer, args, kwargs = FoldedDense(layer, self.samples), (list(fold),), {}
        inputs = [t for t in keras.tree.flatten((args, kwargs)) if isinstance(t, keras.KerasTensor)]
        if isinstance(layer, SharedNoise) and type(layer.layer) not in AFFINE_LAYERS:
            require_affine_noise(layer.layer, tuple(inputs[0].shape[1:]))
        outputs = layer(*args, **kwargs)
        produced = keras.tree.flatten(outputs)
        if isinstance(layer, SharedNoise):
            outputs = produced[0]  # readers see the noisy tensor; the noise is kept for folding
            if self.fold and id(inputs[0]) not in self._noisy and len(inputs[0].shape) == 2:
                self._folds[id(outputs)] = (inputs[0], *produced[1:])
        self.full_width = max([self.full_width] + [_per_row_size(t) for t in inputs + produced])
        if isinstance(layer, SharedNoise) or any(id(t) in self._noisy for t in inputs):
            for tensor in inputs:
                if id(tensor) not in self._noisy:
                    self.cut.setdefault(id(tensor), tensor)
            self._noisy.update(id(t) for t in produced)
            self.head_width = max([self.head_width] + [_per_row_size(t) for t in inputs + produced])
        return outputs


def _trace(model: keras.Model, samples: int, fold: bool) -> tuple[_Tracer, list, list]:
    """The model's graph rebuilt through a `_Tracer`: (tracer, inputs, outputs)."""
    tracer = _Tracer(samples, fold)
    if isinstance(model, keras.Sequential):
        if not model.inputs:
            raise DnnlabError("MC Dropout: the Sequential model has no known input shape; build it first")
        source = model.inputs[0]
        inputs = [keras.Input(batch_shape=source.shape, dtype=source.dtype)]
        x = inputs[0]
        for layer in model.layers:
            x = tracer.call(tracer.clone(layer), x)
        outputs = [x]
    else:
        try:
            clone = keras.models.clone_model(model, clone_function=tracer.clone, call_function=tracer.call)
        except ValueError as exc:  # a subclassed model: its graph is hidden in Python code
            raise DnnlabError(
                f"MC Dropout needs a Sequential or functional model, not {type(model).__name__} ({exc})"
            ) from None
        inputs, outputs = list(clone.inputs), list(clone.outputs)
    if not tracer.noise_layers:
        raise DnnlabError(
            f"model {model.name!r} has no dropout layer (Dropout, AlphaDropout, GaussianDropout), "
            "so MC Dropout has nothing to sample; train a variant with dropout, e.g. --variant alpha-dropout"
        )
    if len(outputs) != 1:
        raise DnnlabError(f"MC Dropout needs a model with one logits output; {model.name!r} has {len(outputs)}")
    return tracer, inputs, outputs


class _Sampler(keras.Model):
    """Runs the head on `samples` tiled copies of a batch of features; returns per-input summaries.

    Per input: the mean of p over the samples, the sum of squared deviations from it (centred
    two-pass, so a tiny std does not drown in float32 rounding) and the sum of the per-sample
    entropies. Sample chunks combine exactly (`_combine`), and only (batch, classes) arrays
    ever leave the compiled step.
    """

    def __init__(self, head: keras.Model, samples: int, **kwargs):
        # Keras names a model after its class by default: "__sampler" here, which TensorFlow
        # rejects as a name scope ("is not a valid root scope name") when the model runs.
        kwargs.setdefault("name", "mc_dropout_sampler")
        super().__init__(**kwargs)
        self.head = head
        self.samples = samples

    def call(self, features):
        features = features if isinstance(features, (list, tuple)) else [features]
        tiled = [ops.tile(f, (self.samples,) + (1,) * (len(f.shape) - 1)) for f in features]
        logits = ops.cast(self.head(tiled, training=False), "float32")
        log_p = ops.log_softmax(logits, axis=-1)
        p = ops.exp(log_p)
        classes = logits.shape[-1]
        p, log_p = (ops.reshape(t, (self.samples, -1, classes)) for t in (p, log_p))
        mean = ops.mean(p, axis=0)
        return mean, ops.sum(ops.square(p - mean), axis=0), -ops.sum(p * log_p, axis=(0, 2))


def _combine(total: tuple | None, n_total: int, part: tuple, n_part: int) -> tuple:
    """Merge (mean, squared deviations, entropy sum) of two sample chunks (Chan et al.'s update)."""
    part = tuple(np.asarray(value, dtype=np.float64) for value in part)
    if total is None:
        return part
    (mean_a, m2_a, h_a), (mean_b, m2_b, h_b) = total, part
    n = n_total + n_part
    delta = mean_b - mean_a
    return mean_a + delta * n_part / n, m2_a + m2_b + delta**2 * n_total * n_part / n, h_a + h_b


def _largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, max(1, limit)) + 1) if n % d == 0)


class MCDropout:
    """MC Dropout prepared for one model; reuse it so that repeated calls skip re-tracing and compiling.

    Args:
        model: a Sequential or functional Keras model that emits logits and has at least one
            dropout-family layer. It is not modified.
        cache_trunk: run the layers before the first dropout layer once and fold the noise into
            the Dense layer after it (default True); False samples the whole network, the naive
            baseline.
    """

    def __init__(self, model: keras.Model, cache_trunk: bool = True):
        # A weak reference, so the cache in `_prepare` does not keep dropped models alive.
        self._model = weakref.ref(model)
        self.cache_trunk = cache_trunk
        tracer, inputs, _ = _trace(model, samples=1, fold=cache_trunk)  # validates the model, finds the cut
        cut = list(tracer.cut.values())
        self.uses_trunk = cache_trunk and not all(any(t is i for i in inputs) for t in cut)
        self.trunk = keras.Model(inputs, cut) if self.uses_trunk else None
        self.width = tracer.head_width if self.uses_trunk else tracer.full_width
        self._samplers: dict[int, tuple[_Sampler, list[SharedNoise]]] = {}

    def _sampler(self, samples_per_step: int) -> tuple[_Sampler, list[SharedNoise]]:
        """The compiled head for this many samples per step (built once, then reused)."""
        if samples_per_step not in self._samplers:
            model = self._model()
            if model is None:
                raise DnnlabError("MC Dropout: the model was deleted; prepare MCDropout with a live model")
            tracer, inputs, outputs = _trace(model, samples_per_step, fold=self.cache_trunk)
            head_inputs = list(tracer.cut.values()) if self.uses_trunk else inputs
            head = keras.Model(head_inputs, outputs)
            self._samplers[samples_per_step] = (_Sampler(head, samples_per_step), tracer.noise_layers)
        return self._samplers[samples_per_step]

    def predict(self, x, samples: int = 100, seed: int | None = None, batch_size: int | None = None) -> MCPrediction:
        """Average `samples` dropout samples of the softmax for every row of `x`.

        Args:
            x: inputs as the model takes them (an array, or a list for a multi-input model).
            samples: dropout samples per input (default 100, as in the textbook).
            seed: makes the result reproducible; None continues the layers' random streams.
            batch_size: inputs per step; None picks the most that keep a step within
                `STEP_ELEMENTS` floats (838 inputs x 100 samples for a 100-unit head).

        Peak memory beyond the model and `x`: the trunk features (N x cut width x 4 bytes,
        4 MB for 10,000 x 100) plus a few step tensors of at most samples x batch_size x
        widest head layer floats (32 MiB each with the defaults); measured in
        docs/benchmarks/issue-5.md.
        """
        if samples < 1:
            raise DnnlabError(f"--samples must be >= 1, got {samples}")
        if batch_size is not None and batch_size < 1:
            raise DnnlabError(f"batch_size must be >= 1, got {batch_size}")
        rows = max(1, STEP_ELEMENTS // max(1, self.width))
        per_step = _largest_divisor_at_most(samples, rows // (batch_size or 1))
        batch = batch_size or max(1, rows // per_step)
        sampler, noise_layers = self._sampler(per_step)
        if seed is not None:
            streams = np.random.SeedSequence(seed).generate_state(len(noise_layers))
            for stream, noisy in zip(streams, noise_layers):
                noisy.layer.seed_generator.state.assign(np.array([stream, 0], dtype="uint32"))
        features = self.trunk.predict(x, batch_size=EVAL_BATCH_SIZE, verbose=0) if self.trunk else x
        summary = None
        for chunk in range(samples // per_step):
            part = sampler.predict(features, batch_size=batch, verbose=0)
            summary = _combine(summary, chunk * per_step, part, per_step)
        mean, squared_deviations, entropy_sum = summary
        entropy = predictive_entropy(mean)
        return MCPrediction(
            mean_probs=mean,
            std_probs=np.sqrt(squared_deviations / samples),
            entropy=entropy,
            # Rounding can push H[mean] - E[H] a hair below its true lower bound, 0.
            mutual_information=np.maximum(entropy - entropy_sum / samples, 0.0),
            samples=samples,
        )


_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _prepare(model: keras.Model, cache_trunk: bool) -> MCDropout:
    """The cached `MCDropout` for `model`, so repeated calls reuse the compiled steps."""
    per_model = _prepared.setdefault(model, {})
    if cache_trunk not in per_model:
        per_model[cache_trunk] = MCDropout(model, cache_trunk)
    return per_model[cache_trunk]


def mc_predict(
    model: keras.Model, x, samples: int = 100, seed: int | None = None, batch_size: int | None = None
) -> MCPrediction:
    """MC Dropout with trunk caching: see `MCDropout.predict` for the arguments and memory."""
    return _prepare(model, cache_trunk=True).predict(x, samples, seed, batch_size)


def naive_mc_predict(
    model: keras.Model, x, samples: int = 100, seed: int | None = None, batch_size: int | None = None
) -> MCPrediction:
    """The baseline: every sample runs the whole network (same noise as `mc_predict` for a seed)."""
    return _prepare(model, cache_trunk=False).predict(x, samples, seed, batch_size)
