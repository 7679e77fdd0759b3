"""TensorBoard event files without TensorFlow: written with tensorboard's own writer and protos, read back
with its own loader.

Why not the usual writers (measured in the prototypes behind issue 18):
- `keras.callbacks.TensorBoard` writes through `tf.summary`, so it needs TensorFlow.
- tensorboardX queues events for a writer process: its `flush()` returns before they reach the
  file (a run killed after the flush lost its last epoch, 50 of 50 times), and two writers opened in
  one folder within the same second share a file name, so a quick resume truncated the first file.
- tensorboard's `EventFileWriter` flushes synchronously and names files by time, host, pid and a
  counter. tensorboard is needed anyway: its server is how the logs are viewed.

Layout, as Keras's callback lays it out so that training and validation curves overlay:
`<logdir>/train/` (loss, accuracy, learning rate, epoch time), `<logdir>/validation/` (loss,
accuracy), and `<logdir>/` itself, the HParams session (hyperparameters and final scores).

Scalars are float32 tensors (`scalar_pb`, what `tf.summary.scalar` writes): TensorBoard's default
data server silently drops float64 scalars. A value read back therefore equals `float32(value)`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.plugins.hparams.summary_v2 import hparams_pb  # TF-free, unlike hparams() and the v1 module
from tensorboard.plugins.scalar.summary_v2 import scalar_pb  # TF-free, unlike scalar()
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

from dnnlab.errors import writing

TRAIN, VALIDATION, SESSION = "train", "validation", ""  # sub-runs of a logdir ("" is the logdir itself)
EVENT_FILE_GLOB = "events.out.tfevents.*"
SCALARS_PLUGIN = "scalars"
HPARAMS_PLUGIN = metadata.PLUGIN_NAME
SESSION_START_TAG = metadata.SESSION_START_INFO_TAG
SUCCESS, FAILURE = "STATUS_SUCCESS", "STATUS_FAILURE"  # an HParams session's end status

Scalars = dict[tuple[str, str], list[tuple[int, float]]]  # (sub-run, tag) -> [(step, value)] in file order


def keras_tag(key: str) -> tuple[str, str]:
    """(sub-run, tag) of an epoch-log key, as `keras.callbacks.TensorBoard` names it.

    `val_loss` -> (validation, epoch_loss), `accuracy` -> (train, epoch_accuracy); `epoch_time`
    keeps its name.
    """
    if key.startswith("val_"):
        return VALIDATION, f"epoch_{key[4:]}"
    return TRAIN, key if key.startswith("epoch_") else f"epoch_{key}"


class EventLog:
    """Event files of one logdir, a writer per sub-run opened on first use.

    Nothing is on disk until `flush()` (or `close()`) returns; then all of it is.

    Args:
        logdir: the folder TensorBoard's `--logdir` (or a parent of it) points at.
    """

    def __init__(self, logdir: str | Path):
        self.logdir = Path(logdir)
        self._writers: dict[str, EventFileWriter] = {}

    def _writer(self, sub: str) -> EventFileWriter:
        if sub not in self._writers:
            # flush_secs is only a fallback: every epoch ends with flush().
            self._writers[sub] = EventFileWriter(str(self.logdir / sub), max_queue_size=100, flush_secs=30)
        return self._writers[sub]

    def add(self, sub: str, event: event_pb2.Event) -> None:
        """Write an event as it is (e.g. one carried over from an earlier session)."""
        self._writer(sub).add_event(event)

    def summary(self, sub: str, summary: summary_pb2.Summary, step: int, wall_time: float | None = None) -> None:
        wall_time = time.time() if wall_time is None else wall_time
        self.add(sub, event_pb2.Event(step=step, wall_time=wall_time, summary=summary))

    def scalar(self, sub: str, tag: str, value: float, step: int, wall_time: float | None = None) -> None:
        self.summary(sub, scalar_pb(tag, float(value)), step, wall_time)

    def hparams(self, values: dict[str, bool | int | float | str], trial_id: str) -> None:
        """The HParams session start: this logdir's hyperparameters; TensorBoard groups sessions by `trial_id`."""
        self.summary(SESSION, hparams_pb(values, trial_id=trial_id), step=0)

    def session_end(self, status: str) -> None:
        """The HParams session end (`SUCCESS` or `FAILURE`), built by hand: the v1 module that has it imports TF."""
        info = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(status), end_time_secs=time.time())
        summary = summary_pb2.Summary()
        summary.value.add(
            tag=metadata.SESSION_END_INFO_TAG,
            metadata=metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(session_end_info=info)),
            tensor=metadata.NULL_TENSOR,
        )
        self.summary(SESSION, summary, step=0)

    def flush(self) -> None:
        """Block until every event added so far is in its file."""
        with writing(self.logdir):  # the writer thread's OSError names no file
            for writer in self._writers.values():
                writer.flush()

    def close(self) -> None:
        """Flush and stop the writers' threads; the log may be written to again (new files)."""
        writers, self._writers = self._writers, {}
        with writing(self.logdir):
            for writer in writers.values():
                writer.close()


def event_files(logdir: str | Path) -> list[Path]:
    """Every event file under `logdir`, sub-runs included, in name (= TensorBoard's) order."""
    logdir = Path(logdir)
    return sorted(logdir.rglob(EVENT_FILE_GLOB)) if logdir.is_dir() else []


def sub_run(logdir: str | Path, path: Path) -> str:
    """The sub-run of event file `path` under `logdir`: "train", "validation", or "" for the logdir itself."""
    relative = path.parent.relative_to(logdir).as_posix()
    return "" if relative == "." else relative


def read_events(logdir: str | Path) -> Iterator[tuple[str, event_pb2.Event]]:
    """(sub-run, event) for every summary event under `logdir`, file by file in name order."""
    for path in event_files(logdir):
        for event in EventFileLoader(str(path)).Load():
            if event.HasField("summary"):
                yield sub_run(logdir, path), event


def plugin(value: summary_pb2.Summary.Value) -> str:
    return value.metadata.plugin_data.plugin_name


def scalar_value(value: summary_pb2.Summary.Value) -> float:
    """The number a scalars-plugin summary value holds."""
    return tensor_util.make_ndarray(value.tensor).item()


def read_scalars(logdir: str | Path) -> Scalars:
    """Every scalar under `logdir` with TensorBoard's own loader, unsampled, duplicates kept (so tests see them)."""
    found: Scalars = {}
    for sub, event in read_events(logdir):
        for value in event.summary.value:
            if plugin(value) == SCALARS_PLUGIN:
                found.setdefault((sub, value.tag), []).append((event.step, scalar_value(value)))
    return found


def read_hparams(logdir: str | Path) -> list[plugin_data_pb2.HParamsPluginData]:
    """The HParams records (session starts and ends) in `logdir`'s own event files, in file order."""
    found = []
    for sub, event in read_events(logdir):
        for value in event.summary.value:
            if sub == SESSION and plugin(value) == HPARAMS_PLUGIN:
                found.append(plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content))
    return found
