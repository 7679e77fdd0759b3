"""dnnlab under Keras's other backends (issue 17): a small train and MC Dropout under TensorFlow and torch.

JAX is the default and what every other test runs on. Each other backend runs in an interpreter of
its own, which `make test` names: $DNNLAB_TEST_TF_PYTHON is the `.venv-tf` virtualenv it makes
(dnnlab plus tensorflow-cpu), $DNNLAB_TEST_TORCH_PYTHON an optional one with torch. Without one,
the test uses this interpreter if it has the backend's package, else it skips with the reason.
The interpreter imports this checkout (PYTHONPATH), whatever dnnlab it has installed.
The work is `tests/backend_smoke.py`; this test judges what it reports.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_fake_cifar

REPO = Path(__file__).resolve().parents[1]
BACKENDS = {"tensorflow": "DNNLAB_TEST_TF_PYTHON", "torch": "DNNLAB_TEST_TORCH_PYTHON"}
TIMEOUT = 600  # seconds; TensorFlow's import alone takes several on the shared 2 cores


def interpreter(backend: str) -> str:
    """The Python to run `backend` with, or a skip saying how to provide one."""
    variable = BACKENDS[backend]
    given = os.environ.get(variable)
    if given:
        if not Path(given).exists():
            pytest.fail(f"${variable} names {given}, which does not exist (make test creates .venv-tf)")
        return given
    if importlib.util.find_spec(backend) is not None:
        return sys.executable
    pytest.skip(
        f"{backend} is not installed here and ${variable} is not set: `make test` sets DNNLAB_TEST_TF_PYTHON "
        f"to its .venv-tf; for torch, point DNNLAB_TEST_TORCH_PYTHON at a Python with dnnlab's dependencies and torch"
    )


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    _, checksums = write_fake_cifar(root, per_batch=120)  # 600 training images: 500 train, 100 validate
    (root / "checksums.json").write_text(json.dumps(checksums))
    return root


def run_smoke(backend: str, fake_data: Path, out: Path) -> dict:
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
        "DNNLAB_TEST_CHECKSUMS": str(fake_data / "checksums.json"),
        "KERAS_HOME": str(out.parent / "keras-home"),
    }
    done = subprocess.run(
        [interpreter(backend), "-m", "tests.backend_smoke", str(fake_data), str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, f"{backend}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_train_and_mc_dropout_under_another_backend(backend, fake_data, tmp_path):
    found = run_smoke(backend, fake_data, tmp_path / "runs")

    assert found["backend"] == backend  # the user's KERAS_BACKEND won over dnnlab's default
    assert found["train_exit"] == 0
    metrics = found["metrics"]
    versions = metrics["versions"]
    assert versions["backend"] == backend
    assert found["expected_backend_version"] and versions["backend_version"] == found["expected_backend_version"]
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 2
    for key in ("valid_loss", "test_loss"):
        assert math.isfinite(metrics[key]) and metrics[key] > 0, key
    for key in ("valid_accuracy", "test_accuracy"):
        assert 0 <= metrics[key] <= 1, key
    assert found["event_files"] >= 2  # TensorBoard logs: train/ and validation/ at least

    first, again, other = found["mc_dropout"]
    assert [r["exit"] for r in found["mc_dropout"]] == [0, 0, 0]
    for split in ("valid", "test"):
        mc, deterministic = first["report"][split]["mc"], first["report"][split]["deterministic"]
        assert 0 <= mc["accuracy"] <= 1 and math.isfinite(mc["nll"]) and 0 <= mc["ece"] <= 1
        assert mc != deterministic  # the dropout was on
        assert again["report"][split]["mc"] == mc  # a seed reproduces the masks
        assert other["report"][split]["mc"] != mc  # and another seed changes them
        assert other["report"][split]["deterministic"] == deterministic
    # The fast path (folded first dropout layer, cached trunk) equals running the whole net per sample,
    # and a seed reproduces it, for AlphaDropout and for plain Dropout.
    assert len(found["fast_mc"]) == 2
    for name, fast in found["fast_mc"].items():
        assert fast["vs_naive_max_abs"] < 1e-5, name
        assert fast["repeat_equal"] and fast["std_max"] > 0, name
