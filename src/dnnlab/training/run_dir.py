"""`RunDir`: a run folder and its files. It is the only code that reads or writes them.

A run folder (`<out>/<name>/`) holds everything needed to reproduce and report the run:
`config.json` (resolved config), `history.csv` (per-epoch metrics and wall time),
`metrics.json` (status, best epoch, validation and test scores of the restored best model,
timings, seed, versions, device), `best.keras` (the best model) and, unless logging is off,
`tensorboard/` (event files: `dnnlab.training.tensorboard`). While a run is unfinished it also
holds `checkpoint/` (see `dnnlab.training.resume`), and while a process trains into it,
`run.lock`. Tools that add to a finished run (the LR search, MC Dropout) keep their JSON
files beside these, through `read_json` and `write_json`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import keras

from dnnlab.config import RunConfig, config_differences
from dnnlab.errors import DnnlabError
from dnnlab.files import read_json, save_model_atomic, write_json_atomic
from dnnlab.training.history import History, read_history_csv, write_history_csv

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
MODEL_FILE = "best.keras"
CHECKPOINT_DIR = "checkpoint"
TENSORBOARD_DIR = "tensorboard"

COMPLETED = "completed"
INTERRUPTED = "interrupted"  # by Ctrl-C or SIGTERM; running it again resumes it
DIVERGED = "diverged"  # NaN/inf loss; running it again would diverge again, so it is finished too
FINISHED = (COMPLETED, DIVERGED)


class RunDir:
    """The files of one run folder.

    Args:
        path: the folder (`RunConfig.run_dir`); it need not exist yet.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._created: list[Path] = []  # the folders `prepare` made, deepest first

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def history_path(self) -> Path:
        return self.path / HISTORY_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def tensorboard_dir(self) -> Path:
        """The run's TensorBoard logdir (`train/`, `validation/` and the HParams session)."""
        return self.path / TENSORBOARD_DIR

    def prepare(self) -> None:
        """Create the folder, or say in one line why it cannot be used, before any data is loaded."""
        blocker = next((p for p in (self.path, *self.path.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise DnnlabError(f"cannot create run folder {self.path}: {blocker} is a file; pass --out a folder")
        self._created = [p for p in (self.path, *self.path.parents) if not p.exists()]
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DnnlabError(f"cannot create run folder {self.path} ({exc.strerror}); pass a writable --out") from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise DnnlabError(f"run folder {self.path} is not writable; pass a writable --out")

    def remove_if_unused(self) -> None:
        """Remove the folders `prepare` created, as long as nothing was written into them: a run that
        failed before its first file (no data, a bad subset) leaves no folder behind to refuse the next."""
        for folder in self._created:
            try:
                folder.rmdir()  # only an empty folder
            except OSError:
                return
        self._created = []

    # --- config.json ---------------------------------------------------------------------------

    def config(self) -> RunConfig:
        """The saved config; a one-line error if the folder holds no run."""
        if not self.config_path.exists():
            raise DnnlabError(f"{self.path} holds no run ({CONFIG_FILE} is missing); train it first with dnnlab train")
        return RunConfig.from_json(self.config_path)

    def write_config(self, config: RunConfig) -> None:
        write_json_atomic(self.config_path, config.to_dict())

    def check_config(self, config: RunConfig) -> None:
        """Refuse to resume or reuse a folder that holds a run of another config."""
        if not self.config_path.exists():
            return
        saved = read_json(self.config_path)
        if not isinstance(saved, dict):
            raise DnnlabError(f"{self.config_path} is unreadable; delete {self.path} to start afresh")
        found = config_differences(saved, config.to_dict())
        if found:
            raise DnnlabError(
                f"{self.path} holds a run of another config ({'; '.join(found)}); rerun with the "
                f"same settings to resume or reuse it, or pass --name (or delete the folder) to start another"
            )

    # --- metrics.json --------------------------------------------------------------------------

    def metrics(self) -> dict[str, Any] | None:
        """`metrics.json`, or None while the run has written none."""
        metrics = read_json(self.metrics_path)
        return metrics if isinstance(metrics, dict) else None

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json_atomic(self.metrics_path, metrics)

    @property
    def status(self) -> str | None:
        """COMPLETED, INTERRUPTED or DIVERGED; None before the run wrote its metrics."""
        metrics = self.metrics()
        return None if metrics is None else metrics.get("status")

    def finished_status(self, config: RunConfig) -> str | None:
        """COMPLETED or DIVERGED when the folder holds a finished run of `config`, else None.

        Where the folder or the data live does not count (`config.config_differences`), so a
        moved output folder is still reused.
        """
        status, saved = self.status, read_json(self.config_path)
        if status not in FINISHED or not isinstance(saved, dict):
            return None
        return status if not config_differences(saved, config.to_dict()) else None

    # --- history.csv and best.keras ------------------------------------------------------------

    def history(self) -> History:
        """`history.csv` as columns of floats, the 0-based `epoch` column included."""
        return read_history_csv(self.history_path)

    def write_history(self, history: History) -> None:
        write_history_csv(self.history_path, history)

    def load_model(self) -> keras.Model | None:
        """The best model, or None when no epoch completed."""
        return keras.saving.load_model(self.model_path) if self.model_path.exists() else None

    def save_model(self, model: keras.Model) -> None:
        save_model_atomic(model, self.model_path)

    def remove_checkpoints(self) -> None:
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)

    # --- other result files --------------------------------------------------------------------

    def read_json(self, name: str) -> Any | None:
        """Another tool's JSON file in the folder (e.g. `lr_search.json`), or None."""
        return read_json(self.path / name)

    def write_json(self, name: str, obj: Any) -> Path:
        write_json_atomic(self.path / name, obj)
        return self.path / name


def load_run(run_dir: str | Path) -> tuple[RunConfig, dict[str, Any]]:
    """A finished run's config and metrics; a one-line error for a folder that holds none."""
    folder = RunDir(run_dir)
    metrics = folder.metrics()
    if metrics is None:
        raise DnnlabError(
            f"{folder.path} is not a finished run (no readable {METRICS_FILE}); train it first with dnnlab train"
        )
    return folder.config(), metrics
