"""`TensorBoardLogger`: a run's epochs as TensorBoard event files, flushed as each epoch ends, without TensorFlow.

`keras.callbacks.TensorBoard` needs TensorFlow; this callback writes the same tags in the same
layout with tensorboard's own writer (`dnnlab.training.event_files` says why that writer), so
`tensorboard --logdir runs/exercise` shows every part and seed side by side, while they train.
"""

from __future__ import annotations

from pathlib import Path

import keras

from dnnlab.training.event_files import (
    SCALARS_PLUGIN,
    SESSION,
    SESSION_START_TAG,
    TRAIN,
    EventLog,
    event_files,
    keras_tag,
    plugin,
    read_events,
    scalar_value,
)
from dnnlab.training.history import History

LEARNING_RATE_TAG = "epoch_learning_rate"  # keras.callbacks.TensorBoard's name for it


class TensorBoardLogger(keras.callbacks.Callback):
    """Writes every epoch's logs and learning rate to TensorBoard event files, on disk when the epoch ends.

    Tags are those of `keras.callbacks.TensorBoard`: `train/epoch_loss`, `train/epoch_accuracy`,
    `validation/epoch_loss`, `validation/epoch_accuracy`, `train/epoch_learning_rate` (the
    optimizer's LR after the epoch; under a schedule such as 1cycle, its value at the optimizer's
    step count) and `train/epoch_time` when `EpochTimer` ran before it. The step is the 0-based
    epoch, as in `history.csv`.

    Resuming. Pass the resumed run's `history` (its checkpoint's). At train begin the logdir is
    rewritten into this session's files: the epochs in `history` are written from it (so the
    values equal `history.csv`), keeping the old events' wall times, and other tags of those epochs
    (the learning rate) are carried over; whatever a killed session logged after its last
    checkpoint is dropped, since those epochs are trained again. The old files are deleted only
    after the new ones are flushed. Every step is then in the logdir once, for every reader and
    whatever order the file names sort in (a resume within the same second by a process with a
    lower pid sorts first, and TensorBoard's server then drops the later steps of a naive append).

    Place it after the callbacks that add to the epoch logs (`EpochTimer`) or end the epoch early
    (`StopOnDivergence`), right before `RunRecorder`, so that it logs exactly history.csv's rows.
    Call `close()` when training ends, also when `fit` raised (Keras skips `on_train_end` then).

    Args:
        logdir: the folder for the event files (`RunDir.tensorboard_dir` for a run).
        history: the per-epoch logs a resumed run already has; None for a fresh run.
        hparams: hyperparameters recorded as an HParams session, so TensorBoard's HParams tab
            compares runs; an earlier session's record is kept on resume. None: no session.
        trial_id: the session's name in the HParams tab (required with `hparams`).
    """

    def __init__(
        self,
        logdir: str | Path,
        history: History | None = None,
        hparams: dict[str, bool | int | float | str] | None = None,
        trial_id: str | None = None,
    ):
        super().__init__()
        if hparams is not None and not trial_id:
            raise ValueError("TensorBoardLogger needs a trial_id to name the HParams session")
        self.logdir = Path(logdir)
        self.history = history or {}
        self.hparams = hparams
        self.trial_id = trial_id
        self.log = EventLog(self.logdir)

    def on_train_begin(self, logs=None):
        self.log.close()
        old_files = event_files(self.logdir)
        done = max((len(values) for values in self.history.values()), default=0)
        carried: dict[tuple[str, str, int], tuple[float, float]] = {}  # (sub, tag, step) -> (wall time, value)
        session_start = None
        for sub, event in read_events(self.logdir):
            for value in event.summary.value:
                if plugin(value) == SCALARS_PLUGIN and sub != SESSION and event.step < done:
                    # setdefault: a rewrite killed before its cleanup leaves two copies of a step.
                    carried.setdefault((sub, value.tag, event.step), (event.wall_time, scalar_value(value)))
                elif value.tag == SESSION_START_TAG and sub == SESSION and session_start is None:
                    session_start = event
        for key, values in self.history.items():
            sub, tag = keras_tag(key)
            for step, value in enumerate(values):
                wall_time = carried.pop((sub, tag, step), (None, None))[0]
                self.log.scalar(sub, tag, value, step, wall_time)
        for (sub, tag, step), (wall_time, value) in carried.items():
            self.log.scalar(sub, tag, value, step, wall_time)
        if self.hparams is not None:
            if session_start is not None:
                self.log.add(SESSION, session_start)
            else:
                self.log.hparams(self.hparams, self.trial_id)
        self.log.flush()  # the kept events are on disk before the old files go
        for path in old_files:
            path.unlink()

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.log.scalar(*keras_tag(key), float(value), epoch)
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            self.log.scalar(TRAIN, LEARNING_RATE_TAG, float(keras.ops.convert_to_numpy(optimizer.learning_rate)), epoch)
        self.log.flush()  # TensorBoard shows the epoch from now on

    def on_train_end(self, logs=None):
        self.log.flush()

    def finish(self, status: str, scores: dict[str, float] | None = None) -> None:
        """After training: end the HParams session with `status` (`event_files.SUCCESS` or `FAILURE`)
        and its `scores`, then close.

        A score is what the HParams tab shows for a session (e.g. the validation loss of the best
        epoch, where the curves' columns show their last epoch).
        """
        for tag, value in (scores or {}).items():
            self.log.scalar(SESSION, tag, value, step=0)
        if self.hparams is not None:
            self.log.session_end(status)
        self.close()

    def close(self) -> None:
        """Flush and stop the writer threads."""
        self.log.close()
