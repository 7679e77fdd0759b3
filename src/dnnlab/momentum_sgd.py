"""SGD whose momentum can change between batches (for 1cycle's momentum cycling)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dnnlab")
class VariableMomentumSGD(keras.optimizers.SGD):
    """Keras's SGD with momentum, but the momentum lives in an optimizer variable.

    Keras's SGD keeps momentum as a Python float, which is baked into the compiled train
    step (a JAX jit, a tf.function), so changing `optimizer.momentum` mid-training has no
    effect. Here the step reads `current_momentum`, a variable that travels with the rest of
    the optimizer state, so `OneCycle` can set it before every batch. With a constant
    momentum the updates equal Keras's SGD (a test checks this).

    Args:
        learning_rate: as for `keras.optimizers.SGD`.
        momentum: initial momentum, in (0, 1]. Defaults to 0.9.
        nesterov: as for `keras.optimizers.SGD`.
        **kwargs: any other `keras.optimizers.SGD` argument.
    """

    def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=False, **kwargs):
        if not 0 < momentum <= 1:
            raise ValueError(f"momentum must be in (0, 1] (use keras.optimizers.SGD without it), got {momentum}")
        super().__init__(learning_rate=learning_rate, momentum=float(momentum), nesterov=nesterov, **kwargs)
        self.current_momentum = self.add_variable(
            shape=(), initializer=keras.initializers.Constant(momentum), name="current_momentum"
        )

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        momentum = ops.cast(self.current_momentum, variable.dtype)
        velocity = self.momentums[self._get_variable_index(variable)]
        step = ops.subtract(ops.multiply(velocity, momentum), ops.multiply(gradient, learning_rate))
        self.assign(velocity, step)
        if self.nesterov:
            self.assign_add(variable, ops.subtract(ops.multiply(step, momentum), ops.multiply(gradient, learning_rate)))
        else:
            self.assign_add(variable, step)
