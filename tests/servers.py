"""Real servers for tests: start one on 127.0.0.1, wait until its HTTP API answers, stop it (its whole
process group, so tensorboard's data-server child goes too)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent  # the test's virtualenv: where `tensorboard` and `optuna-dashboard` are
START_TIMEOUT = 120  # seconds; a shared 2-core machine can be slow to start a server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, data: bytes | None = None) -> object:
    headers = {"Content-Type": "application/json", "X-XSRF-Protected": "1"} if data is not None else {}
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=10) as response:
        return json.loads(response.read())


@contextmanager
def server(argv: list[str], ready_path: str, log: Path) -> Iterator[str]:
    """Run `argv` (which must serve on the port after `--port`) until `GET ready_path` answers; yield its base URL."""
    port = argv[argv.index("--port") + 1]
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"{argv[0]} exited with {proc.returncode}:\n{log.read_text()}")
            try:
                get_json(base + ready_path)
                break
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{argv[0]} did not answer within {START_TIMEOUT} s:\n{log.read_text()}"
                    ) from None
                time.sleep(0.2)
        yield base
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (its own: start_new_session), SIGKILL if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        proc.wait()
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def scalar_tags(base: str, runs: set[str] = frozenset(), min_runs: int = 1) -> dict | None:
    """TensorBoard's `{run: {tag: ...}}` once it lists every run in `runs` and at least `min_runs`; else None."""
    tags = get_json(base + "/data/plugin/scalars/tags")
    return tags if runs <= set(tags) and len(tags) >= min_runs else None


def wait_until(condition, timeout: float, what: str):
    """Poll `condition()` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)
    return found
