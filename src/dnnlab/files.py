"""Result files: atomic writes (a crash never leaves a half-written result behind) and JSON reads.

A write that fails for want of space or permission raises `StorageError` naming the file, after
removing its temp file: the good file it was to replace is untouched.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from dnnlab.errors import writing


def fsync_path(path: str | Path) -> None:
    """Flush a file's data, or a directory's entries (after a rename), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_beside(path: Path) -> Path:
    """A fresh hidden name in `path`'s folder, for staging a write to `path`."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, fsync it, then rename it over `path`.

    The rename is atomic on POSIX, so readers see either the old file or the new one.
    """
    path = Path(path)
    tmp = temp_path_beside(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        # Not tempfile.mkstemp: its 0600 mode would make every result file private to its writer.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_model_atomic(model, path: str | Path) -> None:
    """`model.save(path)` through a temp file beside `path` and a rename, like the writes above."""
    path = Path(path)
    tmp = temp_path_beside(path).with_suffix(path.suffix)  # Keras picks the format from the suffix
    with writing(path):
        try:
            model.save(tmp)
            fsync_path(tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def read_json(path: str | Path) -> Any | None:
    """The JSON in `path`, or None when the file is missing, unreadable or not JSON.

    For files whose absence is a normal state (a run not finished yet, a report not made yet);
    callers that need the file say so themselves.
    """
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None
