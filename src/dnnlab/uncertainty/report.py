"""Exercise 8e: does MC Dropout improve a trained run "without retraining"? Deterministic vs MC, in numbers and plots.

`mc_dropout_report(run_dir)` loads the run's best model and data, compares the deterministic
prediction with MC Dropout on the validation and test sets, and writes `mc_dropout.json` plus
three figures into the run folder. The exercise report and `dnnlab mc-dropout` both call it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from dnnlab.config import check_seeds, one_of, require
from dnnlab.data import Splits, check_data_dir, load_data
from dnnlab.errors import DnnlabError
from dnnlab.models.compile import EVAL_BATCH_SIZE
from dnnlab.training.run_dir import RunDir, load_run
from dnnlab.uncertainty.mc_dropout import mc_predict
from dnnlab.uncertainty.metrics import accuracy_vs_coverage, prediction_metrics, predictive_entropy, softmax
from dnnlab.uncertainty.plots import plot_accuracy_coverage, plot_entropy_histograms, plot_reliability

log = logging.getLogger(__name__)

REPORT_FILE = "mc_dropout.json"
FIGURES = {
    "reliability": "mc_dropout_reliability.png",
    "coverage": "mc_dropout_coverage.png",
    "entropy": "mc_dropout_entropy.png",
}
SPLITS = ("valid", "test")
COVERAGE_POINTS = 20  # the curve is stored at coverage 5%, 10%, ..., 100%
DETERMINISTIC = "deterministic"


def load_best_model(run_dir: str | Path) -> keras.Model:
    model = RunDir(run_dir).load_model()
    if model is None:
        raise DnnlabError(f"{RunDir(run_dir).model_path} not found; train the run first with dnnlab train")
    return model


def _mean_by_correctness(values: np.ndarray, correct: np.ndarray) -> dict[str, float | None]:
    return {
        name: float(values[mask].mean()) if mask.any() else None
        for name, mask in (("correct", correct), ("wrong", ~correct))
    }


def mc_dropout_report(
    run_dir: str | Path,
    split: str = "test",
    samples: int = 100,
    seed: int = 0,
    data_dir: str | None = None,
    splits: Splits | None = None,
    model: keras.Model | None = None,
) -> dict[str, Any]:
    """Compare deterministic and MC Dropout predictions of a finished run; write them into the run folder.

    Args:
        run_dir: a folder written by `dnnlab train` (config.json, metrics.json, best.keras).
        split: the split the figures show ("valid" or "test"); metrics cover both.
        samples: MC Dropout samples per image (default 100, as in the textbook).
        seed: seeds the dropout masks, so the report is reproducible.
        data_dir: where CIFAR-10 is, overriding the run's config (e.g. on another machine).
        splits: data already loaded (e.g. by the exercise report, to load it once for many runs).
        model: the run's model already loaded; default: `run_dir/best.keras`.

    Returns the dict saved as `mc_dropout.json`: per split, `deterministic` and `mc` metrics
    (accuracy, nll, brier, ece), mean entropy and mutual information of correct vs wrong
    predictions and the MC wall time; the accuracy-vs-coverage curve of `split`; figure names.
    """
    # The arguments first, then the run: a bad flag is named before a missing run or data is.
    one_of(split, SPLITS, "--split")
    require(samples >= 1, f"--samples must be >= 1, got {samples}")
    check_seeds(seed)
    if splits is None:
        check_data_dir(data_dir)
    run_dir = Path(run_dir)
    config, _ = load_run(run_dir)
    if splits is None:
        if data_dir is not None:
            config = dataclasses.replace(config, data=dataclasses.replace(config.data, data_dir=data_dir))
        splits = load_data(config.data)
    model = model if model is not None else load_best_model(run_dir)
    mc_name = f"MC Dropout ({samples})"
    report: dict[str, Any] = {
        "run_dir": str(run_dir),
        "variant": config.variant,
        "samples": samples,
        "seed": seed,
        "plots_split": split,
    }
    shown: dict[str, Any] = {}
    for name in SPLITS:
        x, y = getattr(splits, f"x_{name}"), getattr(splits, f"y_{name}")
        log.info("MC Dropout on %s: %d samples x %d images", name, samples, len(x))
        deterministic = softmax(model.predict(x, batch_size=EVAL_BATCH_SIZE, verbose=0))
        started = time.perf_counter()
        mc = mc_predict(model, x, samples=samples, seed=seed)
        seconds = time.perf_counter() - started
        correct = mc.mean_probs.argmax(axis=1) == y
        report[name] = {
            "n": int(len(y)),
            DETERMINISTIC: prediction_metrics(deterministic, y),
            "mc": prediction_metrics(mc.mean_probs, y),
            "mc_entropy": _mean_by_correctness(mc.entropy, correct),
            "mc_mutual_information": _mean_by_correctness(mc.mutual_information, correct),
            "mc_seconds": seconds,  # wall time; the first split includes tracing and compiling
        }
        if name == split:
            shown = {
                "y": y,
                "probs": {DETERMINISTIC: deterministic, mc_name: mc.mean_probs},
                "entropy": {DETERMINISTIC: predictive_entropy(deterministic), mc_name: mc.entropy},
            }
    correct = {key: p.argmax(axis=1) == shown["y"] for key, p in shown["probs"].items()}
    curves = {key: accuracy_vs_coverage(shown["entropy"][key], correct[key]) for key in shown["probs"]}
    n = len(shown["y"])
    at = np.round(np.linspace(1 / COVERAGE_POINTS, 1, COVERAGE_POINTS) * n).astype(int).clip(1, n) - 1
    report["coverage"] = {
        "coverage": curves[DETERMINISTIC][0][at].tolist(),
        DETERMINISTIC: curves[DETERMINISTIC][1][at].tolist(),
        "mc": curves[mc_name][1][at].tolist(),
    }
    plot_reliability(shown["probs"], shown["y"], run_dir / FIGURES["reliability"])
    plot_accuracy_coverage(curves, run_dir / FIGURES["coverage"])
    plot_entropy_histograms(shown["entropy"], correct, run_dir / FIGURES["entropy"])
    report["figures"] = dict(FIGURES)
    RunDir(run_dir).write_json(REPORT_FILE, report)
    return report


COMPARISON_HEADER = ["split", "prediction", "accuracy", "nll", "brier", "ece"]


def comparison_rows(report: dict[str, Any]) -> list[list[str]]:
    """Deterministic vs MC Dropout, one row per split and prediction (`COMPARISON_HEADER`'s columns)."""
    rows = []
    for name in SPLITS:
        for key, label in ((DETERMINISTIC, DETERMINISTIC), ("mc", f"MC Dropout ({report['samples']})")):
            m = report[name][key]
            rows.append([name, label, *(f"{m[metric]:.4f}" for metric in ("accuracy", "nll", "brier", "ece"))])
    return rows


def format_comparison(report: dict[str, Any]) -> str:
    """The deterministic-vs-MC table for a terminal."""
    widths = (-6, -18, 8, 7, 7, 7)  # negative: left-aligned
    lines = [
        " ".join(f"{cell:{'<' if w < 0 else '>'}{abs(w)}}" for cell, w in zip(row, widths))
        for row in [COMPARISON_HEADER, *comparison_rows(report)]
    ]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])
