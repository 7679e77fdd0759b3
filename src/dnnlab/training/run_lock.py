"""One process per run folder: `<run_dir>/run.lock`, holding its owner's pid.

The lock is an advisory `flock` on that file. The kernel drops it when the owner exits, even on
`kill -9` or a power cut, so a lock file left behind by a dead process is stale by construction:
the next run takes it over, with no pid guessing (a dead owner's pid may already belong to another
process). The pid in the file only names the owner in the refusal message. POSIX only, like the
rest of the tooling (Makefile, .venv/bin).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from dnnlab.errors import DnnlabError

LOCK_FILE = "run.lock"


class RunLockedError(DnnlabError):
    """Another live process is training into this run folder."""


def _read_pid(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


class RunLock:
    """Exclusive use of a run folder; a context manager.

    Args:
        run_dir: the run folder; it must exist.

    Attributes:
        stale_owner: after `acquire`, the pid of a dead owner whose lock was taken over, else None.
    """

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_FILE
        self.stale_owner: int | None = None
        self._fd: int | None = None

    def acquire(self) -> None:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _read_pid(fd)
                os.close(fd)
                who = f"process {owner}" if owner else "another process"
                raise RunLockedError(
                    f"{self.path.parent} is in use by {who} (lock {self.path}); wait for that run to "
                    f"finish, or pass --name to train into another folder"
                ) from None
            # The previous owner unlinks the file on release; if that happened between our open and
            # our flock, we hold a lock on a deleted file and must retry on the current one.
            try:
                current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                break
            os.close(fd)
        previous = _read_pid(fd)
        self.stale_owner = previous if previous not in (None, os.getpid()) else None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        # Unlink before closing: closing drops the flock, and a newcomer must not lock a file we
        # are about to delete (it re-checks the inode, see `acquire`).
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()
