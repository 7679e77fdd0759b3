"""Opening a study's storage: SQLite by default, any SQLAlchemy URL (PostgreSQL) across machines.

The default is SQLite under `<out>/search/`, not Optuna's JournalFileBackend, because a killed
worker's trial must not stay RUNNING forever: Optuna detects dead workers by storage
heartbeats, and only its RDB storage implements them (JournalStorage has no heartbeat). SQLite
serializes writers, which is fine for a few local processes whose writes are a handful per epoch;
a busy timeout makes them wait instead of failing. Across machines pass a server URL
(`--storage postgresql://user@host/db`).
"""

from __future__ import annotations

import random
import shlex
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning

from dnnlab.errors import DnnlabError, writing
from dnnlab.search.config import WorkerOptions

SEARCH_DIR = "search"  # under RunConfig.out
SQLITE_FILE = "optuna.db"
SQLITE_BUSY_TIMEOUT = 60  # seconds a writer waits for SQLite's lock before giving up
STORAGE_ATTEMPTS = 4  # tries to open a storage whose tables another worker may be creating right now


def default_storage_url(out: str | Path, folder: str = SEARCH_DIR) -> str:
    """The SQLite file under `<out>/<folder>/` (`dnnlab study` keeps its own, under `<out>/study/`)."""
    return f"sqlite:///{(Path(out) / folder / SQLITE_FILE).resolve()}"


def display_url(url: str) -> str:
    """`url` with any password masked, for printing."""
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def dashboard_command(url: str) -> str:
    """The shell command that opens storage `url` in optuna-dashboard (`pip install 'dnnlab[dashboard]'`).

    A SQLite path is made absolute, so the command works from any folder; a PostgreSQL URL names
    the psycopg driver, as `open_storage` does. A password is shown masked (***), never printed.
    """
    import sqlalchemy

    try:
        parsed = sqlalchemy.engine.make_url(_with_driver(url))
    except sqlalchemy.exc.ArgumentError:
        return shlex.join(["optuna-dashboard", url])
    database = sqlite_path(url)
    if database is not None:
        parsed = parsed.set(database=str(database.resolve()))
    return shlex.join(["optuna-dashboard", parsed.render_as_string(hide_password=True)])


def _with_driver(url: str) -> str:
    # A bare postgresql:// picks psycopg2 or psycopg 3 depending on the SQLAlchemy version;
    # dnnlab's `postgres` extra installs psycopg 3, so name it.
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url[len(bare) :]
    return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases, in-memory SQLite and unparsable URLs."""
    import sqlalchemy

    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        return None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(parsed.database)
    return None


def open_storage(url: str, worker: WorkerOptions | None = None) -> optuna.storages.RDBStorage:
    """An RDB storage at `url`; with `worker`'s settings, heartbeats on and dead workers' trials retried."""
    import sqlalchemy

    given, url = url, _with_driver(url)
    try:
        sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError as exc:
        raise _storage_error(given, exc) from None
    database = sqlite_path(url)
    if database is not None:
        with writing(database.parent):
            database.parent.mkdir(parents=True, exist_ok=True)
    engine_kwargs: dict[str, Any] = (
        {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats are experimental in Optuna 5
        heartbeat: dict[str, Any] = (
            {}
            if worker is None
            else {
                "heartbeat_interval": worker.heartbeat_interval,
                "grace_period": worker.grace_period,
                "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=worker.max_retry
                ),
            }
        )
        for attempt in range(1, STORAGE_ATTEMPTS + 1):
            try:
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)
            except sqlalchemy.exc.SQLAlchemyError as exc:
                if attempt == STORAGE_ATTEMPTS or not _lost_table_creation_race(exc):
                    raise _storage_error(given, exc) from None
                time.sleep(random.uniform(0.5, 1.5) * attempt)
            except (ImportError, ValueError, optuna.exceptions.StorageInternalError) as exc:
                raise _storage_error(given, exc) from None
    raise AssertionError("unreachable")


def _lost_table_creation_race(exc: Exception) -> bool:
    """Workers starting together on an empty database race to create Optuna's tables (CREATE TABLE
    and CREATE TYPE are check-then-create); the loser finds them on a second try."""
    import sqlalchemy

    if isinstance(exc, sqlalchemy.exc.IntegrityError | sqlalchemy.exc.ProgrammingError):
        return True
    message = str(exc).lower()
    return isinstance(exc, sqlalchemy.exc.OperationalError) and ("already exists" in message or "locked" in message)


def _storage_error(url: str, exc: Exception) -> DnnlabError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hint = (
        "; install the database driver for this URL (PostgreSQL: pip install 'dnnlab[postgres]')"
        if isinstance(exc, ImportError)
        else ""
    )
    return DnnlabError(f"cannot open storage {display_url(url)}: {reason}{hint}")


# How SQLite and PostgreSQL say that a write failed for want of space or permission.
DATABASE_WRITE_FAILURES = (
    "database or disk is full",
    "attempt to write a readonly database",
    "unable to open database file",
    "disk i/o error",
    "no space left on device",
    "could not extend file",
    "permission denied",
)


def database_write_failure(exc: BaseException) -> str | None:
    """The reason, if `exc` (or what it was raised from) is a database's full disk or missing permission."""
    for error in (exc, exc.__cause__, exc.__context__):
        message = str(error).lower() if error is not None else ""
        found = next((reason for reason in DATABASE_WRITE_FAILURES if reason in message), None)
        if found is not None:
            return found
    return None


@contextmanager
def storage_writes(url: str) -> Iterator[None]:
    """Turn a write to storage `url` that failed for want of space or permission into one line naming it.

    Optuna reports it as a StorageInternalError raised from SQLAlchemy's OperationalError. The trials
    finished before it stay in the storage, and a trial's run folder resumes, so the fix is to run
    the same command again.
    """
    import sqlalchemy

    try:
        yield
    except (optuna.exceptions.StorageInternalError, sqlalchemy.exc.OperationalError) as exc:
        reason = database_write_failure(exc)
        if reason is None:
            raise
        raise DnnlabError(
            f"cannot write storage {display_url(url)}: {reason}; free some space or make it writable, "
            "then run the same command again: finished trials are kept"
        ) from exc
