"""`python -m tests.backend_smoke DATA_DIR OUT`: train and MC Dropout under the backend KERAS_BACKEND names.

Run by `tests/test_backends.py` with another interpreter (a virtualenv with TensorFlow or torch), so
it imports nothing that needs pytest. In one process, to pay the backend's import once:
- `dnnlab train` of a small alpha-dropout net for 2 epochs on the fake CIFAR-10 in DATA_DIR (the
  fake's checksums come from $DNNLAB_TEST_CHECKSUMS, as in `tests.scripted_cli`);
- `dnnlab mc-dropout` on it three times: twice with seed 3, once with seed 4;
- the library's fast `mc_predict` against the plain `naive_mc_predict` on the same images and seed,
  for the trained net and for an untrained one with plain `Dropout` (on torch, an unseeded Dropout
  once ignored its seed generator: the seed did nothing and the fast path's two calls got two masks).
Prints one JSON object for the test to judge; it judges nothing itself.
"""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

from tests.scripted_cli import install_faults

RUN_FLAGS = ["--variant", "alpha-dropout", "--depth", "3", "--width", "32", "--valid-size", "100", "--epochs", "2"]
RUN_FLAGS += ["--batch-size", "32", "--lr", "1e-3", "--no-download"]
MC_SAMPLES = 20


def distribution_version(module: str) -> str | None:
    """The version of the installed distribution that provides `module` (tensorflow-cpu for tensorflow),
    read from its metadata: an answer independent of how dnnlab.provenance reads it."""
    names = metadata.packages_distributions().get(module, [])
    return metadata.version(names[0]) if names else None


def main(data_dir: str, out: str) -> dict:
    install_faults()
    import keras
    import numpy as np

    from dnnlab.cli import main as dnnlab
    from dnnlab.config import ModelConfig
    from dnnlab.data import load_splits
    from dnnlab.models.build import build_model
    from dnnlab.uncertainty.mc_dropout import mc_predict, naive_mc_predict
    from dnnlab.uncertainty.report import REPORT_FILE

    run_dir = Path(out) / "alpha-dropout"
    found: dict = {"backend": keras.backend.backend()}
    found["expected_backend_version"] = distribution_version(found["backend"])
    found["train_exit"] = dnnlab(["train", *RUN_FLAGS, "--data-dir", data_dir, "--out", out])
    found["metrics"] = json.loads((run_dir / "metrics.json").read_text())
    found["event_files"] = len(list((run_dir / "tensorboard").rglob("events.out.tfevents.*")))
    found["mc_dropout"] = []
    for seed in (3, 3, 4):
        code = dnnlab(["mc-dropout", str(run_dir), "--samples", str(MC_SAMPLES), "--seed", str(seed)])
        report = json.loads((run_dir / REPORT_FILE).read_text()) if code == 0 else None
        found["mc_dropout"].append({"exit": code, "seed": seed, "report": report})
    x = load_splits(data_dir, valid_size=100).x_test[:64]
    found["fast_mc"] = {}
    for name, model in (
        ("trained alpha-dropout", keras.saving.load_model(run_dir / "best.keras")),
        ("untrained dropout", build_model(ModelConfig(depth=2, width=16, dropout="dropout", dropout_rate=0.3))),
    ):
        fast, again = (mc_predict(model, x, samples=MC_SAMPLES, seed=5) for _ in range(2))
        naive = naive_mc_predict(model, x, samples=MC_SAMPLES, seed=5)
        found["fast_mc"][name] = {
            "vs_naive_max_abs": float(np.abs(fast.mean_probs - naive.mean_probs).max()),
            "repeat_equal": bool(np.array_equal(fast.mean_probs, again.mean_probs)),
            "std_max": float(fast.std_probs.max()),
        }
    return found


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:3])))
