"""`OptunaPruning`: the Keras callback that lets an Optuna pruner stop a search trial between epochs.

(Trial pruning: ending unpromising trials early. Pruning *weights* is question 6, `dnnlab.answers.q6_sparsity`.)

Optuna's own Keras callback lives in the separate `optuna-integration` package and targets
`tf.keras`; this one is backend-neutral Keras 3 and adds nothing to the dependencies.
"""

from __future__ import annotations

import math

import keras
import optuna


class OptunaPruning(keras.callbacks.Callback):
    """Reports each epoch's `monitor` value to `trial`; raises `optuna.TrialPruned` when the pruner says so.

    The exception leaves `model.fit` at once, so a pruned trial costs no further epoch; Optuna's
    `optimize` records the trial as PRUNED. A non-finite value prunes the trial too: the run
    diverged, and a NaN would poison the pruner's median.

    Args:
        trial: the `optuna.Trial` to report to (its study must minimize `monitor`).
        monitor: the epoch-log key to report; default `"val_loss"`.
        prunable: False reports every epoch but never stops the trial for the pruner (a run that
            the others are measured against must reach its end); a diverged run still stops.
    """

    def __init__(self, trial: optuna.Trial, monitor: str = "val_loss", prunable: bool = True):
        super().__init__()
        if not monitor:
            raise ValueError("OptunaPruning needs a monitor name such as 'val_loss'")
        self.trial = trial
        self.monitor = monitor
        self.prunable = prunable

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(
                f"OptunaPruning: no {self.monitor!r} in the epoch logs ({', '.join(logs) or 'none'}); "
                "pass validation_data to fit"
            )
        value = float(logs[self.monitor])
        if not math.isfinite(value):
            raise optuna.TrialPruned(f"{self.monitor} is {value} at epoch {epoch + 1}: the run diverged")
        self.trial.report(value, step=epoch)
        if self.prunable and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch + 1} with {self.monitor} {value:.4f}")
