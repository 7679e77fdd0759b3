"""One channel for progress: the `dnnlab` logger.

Library code logs to `logging.getLogger(__name__)` (children of "dnnlab") and never prints.
Entry points (the CLI, a parallel-run worker) call `configure()` once, which shows INFO lines
on stdout as `dnnlab: <message>` and warnings on stderr, as the CLI always printed them. A
library user gets Python's defaults (warnings only) and can route or silence "dnnlab" as any
other logger.

A line that carries its own prefix (the exercise's `[exercise 1:02] ...`, a worker's echoed
output) is logged with `extra=PLAIN`.
"""

from __future__ import annotations

import logging
import sys
from typing import IO

ROOT = "dnnlab"
DEFAULT_PREFIX = "dnnlab: "
PLAIN = {"prefix": ""}  # extra= for a line that brings its own prefix


class _PrefixFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{getattr(record, 'prefix', DEFAULT_PREFIX)}{record.getMessage()}"


class _Below(logging.Filter):
    """Passes records below `level` (stdout takes what stderr does not)."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


class _CurrentStream(logging.StreamHandler):
    """A handler that writes to whatever `sys.stdout` / `sys.stderr` is at emit time, so a test's
    captured streams (pytest's capsys) and a redirected stream see the lines."""

    def __init__(self, name: str):
        super().__init__()
        self.name_of_stream = name

    @property
    def stream(self) -> IO[str]:  # type: ignore[override]
        return getattr(sys, self.name_of_stream)

    @stream.setter
    def stream(self, value) -> None:  # logging.StreamHandler.__init__ assigns it
        pass


def configure(level: int = logging.INFO) -> None:
    """Show the dnnlab logger's INFO lines on stdout and its warnings on stderr (idempotent)."""
    logger = logging.getLogger(ROOT)
    for handler in list(logger.handlers):
        if isinstance(handler, _CurrentStream):
            logger.removeHandler(handler)
    out, err = _CurrentStream("stdout"), _CurrentStream("stderr")
    out.addFilter(_Below(logging.WARNING))
    err.setLevel(logging.WARNING)
    for handler in (out, err):
        handler.setFormatter(_PrefixFormatter())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
