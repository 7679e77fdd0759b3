"""Many optimizer steps per compiled call: `fit` hands over a group of batches at once.

At batch 32 the 20x100 net's math takes well under half of each step's wall time: Keras 3.15
calls the compiled step from Python once per batch, slicing and converting every batch on the
way (`steps_per_execution` only loops over those calls). `FusedTrainStep` takes a group of
batches per call instead and runs their optimizer steps in a `keras.ops.scan` loop inside the
one compiled function. The batches, their order, the updates and the optimizer's step count are
those of plain `fit` at the small batch size: Keras shuffles the whole training set once per
epoch and slices batches from that order, so a group is just consecutive batches.

Keras fuses `steps_per_execution` this way itself after 3.15.1 (keras-team/keras#23527); drop
this module when that is released. Only the JAX backend's stateless `train_step(state, data)`
is fused; on other backends the model trains one step per batch as usual.

The fused step is set on the model *instance*, not built into a model class, so a saved model
is a plain `keras.Sequential` that loads without dnnlab.
"""

from __future__ import annotations

import keras

# Samples per compiled call. For elu at batch 32, 512 and 2048 ran equally fast and 8192 slower
# (docs/benchmarks/issue-7.md); at batch 512 this still groups 4 batches.
FUSED_SAMPLES = 2048


def use_fused_steps(model: keras.Model, step_batch_size: int, fused_samples: int | None = None) -> int:
    """Set `model` to take `step_batch_size`-sample optimizer steps; return the batch size to give its `fit`.

    On the JAX backend the model gets groups of about `fused_samples` samples per compiled call
    (default `FUSED_SAMPLES`). Pass `fused_samples=0` where per-batch callbacks must see every
    step (the LR range test). Other backends, and Keras's NNX mode (which calls the class's
    `train_step`, not the instance's), get plain batches.
    """
    group = max(1, (FUSED_SAMPLES if fused_samples is None else fused_samples) // step_batch_size)
    fusing = group > 1 and keras.backend.backend() == "jax" and not keras.config.is_nnx_enabled()
    fuse_steps(model, step_batch_size if fusing else None)
    return step_batch_size * group if fusing else step_batch_size


def fuse_steps(model: keras.Model, step_batch_size: int | None) -> None:
    """Give `model` a `FusedTrainStep` of `step_batch_size` samples, or (None) its own step back."""
    current = model.__dict__.get("train_step")  # a FusedTrainStep set here, or None
    if getattr(current, "step_batch_size", None) == step_batch_size:
        return
    if step_batch_size is None:
        del model.train_step
    else:
        model.train_step = FusedTrainStep(model, step_batch_size)
    model.train_function = None  # Keras caches the compiled step, with the old one traced in


class FusedTrainStep:
    """A model's JAX `train_step(state, data)` for a group of batches.

    Set as `model.train_step` by `fuse_steps(model, 32)`, `fit(x, y, batch_size=32 * k)` trains
    exactly like `fit(x, y, batch_size=32)` (same batches, same order, same step count) but
    with one compiled call per `k` steps. The last, short group of an epoch runs its whole
    32-sample batches and then its remainder, just as plain `fit` ends an epoch with a short
    batch. Per-batch callbacks see one "batch" per group. Evaluation and prediction are unchanged.
    """

    def __init__(self, model: keras.Model, step_batch_size: int):
        self.model = model
        self.step_batch_size = step_batch_size  # samples per optimizer step

    def one_step(self, state, data):
        return type(self.model).train_step(self.model, state, data)  # the class's own, single step

    def __call__(self, state, data):
        parts = keras.utils.unpack_x_y_sample_weight(data)  # (x, y, sample_weight), None kept in place
        samples, size = parts[0].shape[0], self.step_batch_size
        whole = samples // size

        def cut(select):
            return tuple(None if t is None else select(t) for t in parts)

        logs = None
        if whole:

            def scanned(carry, batch):
                step_logs, carry = self.one_step(carry, batch)
                return carry, step_logs

            batches = cut(lambda t: keras.ops.reshape(t[: whole * size], (whole, size, *t.shape[1:])))
            state, every_logs = keras.ops.scan(scanned, state, batches)
            logs = keras.tree.map_structure(lambda series: series[-1], every_logs)
        if samples % size:
            logs, state = self.one_step(state, cut(lambda t: t[whole * size :]))
        return logs, state
