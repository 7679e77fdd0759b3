"""The one exception type the CLI turns into a one-line message and exit code 2, and the exit codes."""

from __future__ import annotations

import errno
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USAGE_ERROR = 2  # a DnnlabError: one line on stderr
ERROR_PREFIX = "dnnlab: error: "  # how that line starts (parallel_runs reads a worker's reason after it)
INTERRUPTED_EXIT = 128 + signal.SIGINT  # the shell's convention for a Ctrl-C'd command

# Writes that fail for a reason the user fixes outside dnnlab: no space, over quota, a file too
# big for the filesystem; no permission, a read-only filesystem.
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
NO_PERMISSION_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


class DnnlabError(Exception):
    """A problem the user can fix; its message names the problem and the fix."""


class StorageError(DnnlabError):
    """A write that failed for want of space or permission.

    Its message names the path and the cause. Every write of a result is atomic (a temp file renamed
    into place) and a run commits a checkpoint per epoch, so the same command, run again once the
    cause is fixed, keeps what was written and resumes a run from its last completed epoch.
    """

    def __init__(self, path: str | Path, cause: OSError):
        self.path, self.cause = Path(path), cause
        fix = "free some space" if cause.errno in NO_SPACE_ERRNOS else "make it writable"
        reason = cause.strerror or str(cause)
        super().__init__(
            f"cannot write {path}: {reason}; {fix} (or choose another folder), then run the same command again: "
            "what was written is kept and an unfinished run resumes from its last completed epoch"
        )


def is_storage_failure(exc: BaseException) -> bool:
    """True for an OSError of a full disk, a quota, missing permission or a read-only filesystem."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS | NO_PERMISSION_ERRNOS


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn a storage failure inside the block into a `StorageError` naming `path`.

    Many writes fail with an OSError that names no file (a write to an open handle, a flush in a
    writer thread, a library's own save): the block says which path it was writing.
    """
    try:
        yield
    except OSError as exc:
        if is_storage_failure(exc):
            raise StorageError(path, exc) from exc
        raise
