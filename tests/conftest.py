"""Shared fixtures: small synthetic data in the official CIFAR-10 format, and real-data skips."""

from __future__ import annotations

import glob
import os
import pickle
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")

from dnnlab import log  # noqa: E402
from dnnlab.data import BATCHES_DIR, DATA_ENV, META_FILE, TEST_FILE, TRAIN_FILES, Splits, file_md5, make_splits  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def dnnlab_log_lines():
    """The `dnnlab` logger shown as the CLI shows it (stdout/stderr), so tests read it with capsys."""
    log.configure()


LABEL_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def write_fake_cifar(root: Path, per_batch: int = 20, seed: int = 0) -> tuple[Path, dict[str, str]]:
    """A tiny CIFAR-10 folder in the official pickle layout; returns it and its md5 table."""
    rng = np.random.default_rng(seed)
    folder = root / BATCHES_DIR
    folder.mkdir(parents=True)
    for name in (*TRAIN_FILES, TEST_FILE):
        batch = {
            b"batch_label": name.encode(),
            b"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, size=per_batch)],
            b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / META_FILE).write_bytes(pickle.dumps({b"label_names": LABEL_NAMES, b"num_vis": 3072}))
    checksums = {p.name: file_md5(p) for p in folder.iterdir()}
    return folder, checksums


@pytest.fixture
def fake_cifar(tmp_path):
    return write_fake_cifar(tmp_path / "data")


def synthetic_splits(
    n_train: int = 512, n_valid: int = 256, n_test: int = 256, seed: int = 0, noise: float = 40.0
) -> Splits:
    """Learnable toy images: each class is a fixed random 0-255 pattern plus noise."""
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0, 255, size=(10, 32, 32, 3))
    n = n_train + n_valid + n_test
    labels = rng.integers(0, 10, size=n)
    images = np.clip(prototypes[labels] + rng.normal(0, noise, size=(n, 32, 32, 3)), 0, 255).astype(np.uint8)
    return make_splits(
        images[: n_valid + n_train],
        labels[: n_valid + n_train],
        images[n_valid + n_train :],
        labels[n_valid + n_train :],
        valid_size=n_valid,
    )


@pytest.fixture
def toy_splits() -> Splits:
    return synthetic_splits()


def real_data_dir() -> Path | None:
    root = os.environ.get(DATA_ENV)
    if not root:
        return None
    path = Path(root)
    return path if (path / BATCHES_DIR).is_dir() or path.name == BATCHES_DIR else None


requires_real_data = pytest.mark.skipif(
    real_data_dir() is None,
    reason=f"real CIFAR-10 not found: set {DATA_ENV} to the folder holding {BATCHES_DIR}/ (CI does)",
)


POSTGRES_ENV = "DNNLAB_TEST_POSTGRES_URL"
PG_SCRIPT = Path(__file__).resolve().parent / "postgres_server.sh"


def postgres_binary() -> str | None:
    found = shutil.which("initdb") or sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return (found if isinstance(found, str) else found[-1]) if found else None


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL URL: $DNNLAB_TEST_POSTGRES_URL (.ci/run sets it), else a throwaway server on 127.0.0.1."""
    if os.environ.get(POSTGRES_ENV):
        yield os.environ[POSTGRES_ENV]
        return
    if postgres_binary() is None:
        pytest.skip(
            f"no PostgreSQL server: set {POSTGRES_ENV} or install the postgresql package "
            "(.ci/run does: apt-get install postgresql)"
        )
    # Not under pytest's tmp dir: that is private to this user, and the server may run as `postgres`.
    folder = Path(tempfile.gettempdir()) / f"dnnlab-pg-{uuid.uuid4().hex[:8]}"
    started = subprocess.run([str(PG_SCRIPT), "start", str(folder)], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, f"could not start PostgreSQL: {started.stderr}"
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run([str(PG_SCRIPT), "stop", str(folder)], capture_output=True, timeout=120)
