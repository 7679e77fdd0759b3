"""SGD whose momentum follows a schedule of the step count (for 1cycle's momentum cycling)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dnnlab")
class ScheduledMomentumSGD(keras.optimizers.SGD):
    """Keras's SGD with momentum, the momentum given by a schedule of the optimizer's step count.

    Keras's SGD takes its momentum as a Python float, which is baked into the compiled train
    step (a JAX jit, a tf.function). Here the step computes `momentum_schedule(iterations)`,
    as Keras does for an LR schedule, so the momentum can change every batch with no
    callback. With a constant schedule the updates equal Keras's SGD (a test checks this).

    Args:
        learning_rate: a float or a `LearningRateSchedule`, as for `keras.optimizers.SGD`.
        momentum_schedule: a `keras.optimizers.schedules.LearningRateSchedule` (any callable
            of the step that Keras can serialize) giving the momentum, in [0, 1], per step.
        nesterov: as for `keras.optimizers.SGD`.
        **kwargs: any other `keras.optimizers.SGD` argument.
    """

    def __init__(self, learning_rate=0.01, momentum_schedule=None, nesterov=False, **kwargs):
        if isinstance(momentum_schedule, dict):  # from get_config, when a saved model is loaded
            momentum_schedule = keras.optimizers.schedules.deserialize(momentum_schedule)
        if not isinstance(momentum_schedule, keras.optimizers.schedules.LearningRateSchedule):
            raise ValueError(f"momentum_schedule must be a keras LearningRateSchedule, got {momentum_schedule!r}")
        kwargs.pop("momentum", None)  # get_config's copy of the placeholder below
        # Any non-zero float makes SGD create its momentum slots; update_step uses the schedule instead.
        super().__init__(learning_rate=learning_rate, momentum=1.0, nesterov=nesterov, **kwargs)
        self.momentum_schedule = momentum_schedule

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        momentum = ops.cast(self.momentum_schedule(self.iterations), variable.dtype)
        velocity = self.momentums[self._get_variable_index(variable)]
        step = ops.subtract(ops.multiply(velocity, momentum), ops.multiply(gradient, learning_rate))
        self.assign(velocity, step)
        if self.nesterov:
            self.assign_add(variable, ops.subtract(ops.multiply(step, momentum), ops.multiply(gradient, learning_rate)))
        else:
            self.assign_add(variable, step)

    def get_config(self):
        config = super().get_config()
        config["momentum_schedule"] = keras.optimizers.schedules.serialize(self.momentum_schedule)
        return config
