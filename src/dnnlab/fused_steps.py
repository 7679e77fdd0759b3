"""Many optimizer steps per compiled call: `fit` hands over a group of batches at once.

At batch 32 the 20x100 net's math takes well under half of each step's wall time: Keras 3.15
calls the compiled step from Python once per batch, slicing and converting every batch on the
way (`steps_per_execution` only loops over those calls). `FusedStepsSequential` takes a group
of batches per call instead and runs their optimizer steps in a `keras.ops.scan` loop inside the
one compiled function. The batches, their order, the updates and the optimizer's step count are
those of plain `fit` at the small batch size: Keras shuffles the whole training set once per
epoch and slices batches from that order, so a group is just consecutive batches.

Keras fuses `steps_per_execution` this way itself after 3.15.1 (keras-team/keras#23527); drop
this module when that is released. Only the JAX backend's stateless `train_step(state, data)`
is fused; on other backends the model trains one step per batch as usual.
"""

from __future__ import annotations

import keras

# Samples per compiled call. For elu at batch 32, 512 and 2048 ran equally fast and 8192 slower
# (docs/benchmarks/issue-7.md); at batch 512 this still groups 4 batches.
FUSED_SAMPLES = 2048


def fit_batch_size(model: keras.Model, step_batch_size: int, fused_samples: int | None = None) -> int:
    """Set `model` to take `step_batch_size`-sample optimizer steps; the batch size to give its `fit`.

    A `FusedStepsSequential` on the JAX backend gets groups of about `fused_samples` samples per
    compiled call (default `FUSED_SAMPLES`). Pass `fused_samples=0` where per-batch callbacks
    must see every step (the LR range test). Any other model, or backend, gets plain batches.
    """
    group = max(1, (FUSED_SAMPLES if fused_samples is None else fused_samples) // step_batch_size)
    fusable = isinstance(model, FusedStepsSequential)
    fusing = fusable and group > 1 and keras.backend.backend() == "jax"
    if fusable:
        model.fuse_steps(step_batch_size if fusing else None)
    return step_batch_size * group if fusing else step_batch_size


@keras.saving.register_keras_serializable(package="dnnlab")
class FusedStepsSequential(keras.Sequential):
    """A `keras.Sequential` that can run several optimizer steps per batch `fit` gives it.

    After `fuse_steps(32)` (see `fit_batch_size`), `fit(x, y, batch_size=32 * k)` trains exactly like
    `fit(x, y, batch_size=32)` (same batches, same order, same step count) but with one
    compiled call per `k` steps. The last, short group of an epoch runs its whole 32-sample
    batches and then its remainder, just as plain `fit` ends an epoch with a short batch.
    Per-batch callbacks see one "batch" per group. Evaluation and prediction are unchanged.
    """

    step_batch_size: int | None = None  # samples per optimizer step; None: one step per batch

    def fuse_steps(self, step_batch_size: int | None) -> None:
        """Take `step_batch_size`-sample steps from each batch `fit` hands over (None: don't)."""
        if step_batch_size != self.step_batch_size:
            self.step_batch_size = step_batch_size
            self.train_function = None  # Keras caches the compiled step, with the old size traced in

    def train_step(self, *args):
        if self.step_batch_size is None or keras.backend.backend() != "jax":
            return super().train_step(*args)
        state, data = args
        parts = tuple(t for t in keras.utils.unpack_x_y_sample_weight(data) if t is not None)
        samples, size = parts[0].shape[0], self.step_batch_size
        whole = samples // size
        logs = None
        if whole:
            def one_step(carry, batch):
                step_logs, carry = super(FusedStepsSequential, self).train_step(carry, batch)
                return carry, step_logs

            batches = tuple(keras.ops.reshape(t[: whole * size], (whole, size, *t.shape[1:])) for t in parts)
            state, every_logs = keras.ops.scan(one_step, state, batches)
            logs = keras.tree.map_structure(lambda series: series[-1], every_logs)
        if samples % size:
            logs, state = super().train_step(state, tuple(t[whole * size:] for t in parts))
        return logs, state
