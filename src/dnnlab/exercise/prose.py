"""Answers to exercise 8's questions c-f, written from the measured numbers.

Every comparing sentence gives the paired difference (or ratio) over seeds, its 95% interval and
the number of seeds, and claims a direction only when `dnnlab.stats.decide` does. With one seed
the verdict is judged against the stored seed-to-seed noise of that comparison (`comparisons`).
Accuracy verdicts use validation figures (test beside them); MC Dropout is judged on the test
split, which selected nothing; speed and time verdicts use training CPU seconds without the
compiling first epoch, which sharing the cores with another run barely changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from dnnlab.exercise.comparisons import (
    cpu_seconds_per_epoch,
    cpu_seconds_to_best,
    differences,
    mc_gains,
    ratios,
    reach,
)
from dnnlab.exercise.config import EXERCISE_PARTS, TEXTBOOK_MC_VALID_ACCURACY
from dnnlab.exercise.records import RunRecord, by_part, format_stat, stat
from dnnlab.stats import HIGHER, LOWER, SAME, NoiseLevel, Verdict, decide, evidence

# Gaps too small to matter, even when certain: 1 point between two trained models, 0.5 point for
# MC Dropout (it re-scores the same model), 5% for times.
MIN_ACCURACY_GAP = 0.01
MIN_MC_GAP = 0.005
MIN_TIME_RATIO = 1.05

Noise = Mapping[str, NoiseLevel]


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _pm(records: Sequence[RunRecord], key: str, kind: str = "percent") -> str:
    text = format_stat(stat(records, key), kind)
    return text + "%" if kind == "percent" and text != "—" else text


def _seeds(n: int) -> str:
    return "one seed" if n == 1 else f"{n} seeds"


def cap_note(*arms: Sequence[RunRecord]) -> str:
    """A caveat naming the cap-limited runs among `arms`, or nothing."""
    runs = [run for arm in arms for run in arm]
    limited = [f"part {r.part} seed {r.seed}" for r in runs if r.cap_limited]
    if not limited:
        return ""
    return (
        f" Caveat: {len(limited)} of {len(runs)} runs compared here were cap-limited ({', '.join(limited)}): their "
        "best epoch was near the epoch cap, so a longer run might have ended better."
    )


def _judge(values: list[float], name: str, noise: Noise, min_effect: float, ratio: bool = False) -> Verdict | None:
    if not values:
        return None
    null = 1.0 if ratio else 0.0
    return decide(
        values, null=null, min_effect=math.log(min_effect) if ratio else min_effect, noise=noise.get(name), ratio=ratio
    )


def accuracy_sentence(
    name: str, base_name: str, base: Sequence[RunRecord], other: Sequence[RunRecord], comparison: str, noise: Noise
) -> str:
    """Validation accuracy of `other` against `base` (test beside it), paired by seed, and a verdict."""
    verdict = _judge(differences(base, other, "valid_accuracy"), comparison, noise, MIN_ACCURACY_GAP)
    if verdict is None:
        return f"No common seeds, so {name} and {base_name} cannot be compared."
    conclusion = {
        HIGHER: f"{name} produced a better model",
        LOWER: f"{name} produced a worse model",
        SAME: f"{name} did not produce a better model: the accuracies are equal within {100 * MIN_ACCURACY_GAP:.0f} "
        "point",
    }.get(verdict.direction, f"this cannot tell whether {name} produced a better model")
    return (
        f"Validation accuracy {_pm(other, 'valid_accuracy')} for {name} vs {_pm(base, 'valid_accuracy')} for "
        f"{base_name} (test {_pm(other, 'test_accuracy')} vs {_pm(base, 'test_accuracy')}); the paired difference "
        f"is {evidence(verdict)}: {conclusion}."
    )


def convergence_sentence(
    name: str, base_name: str, base: Sequence[RunRecord], other: Sequence[RunRecord], comparison: str, noise: Noise
) -> str:
    """Epochs and training CPU seconds for `other` to reach `base`'s best validation loss, seed by seed."""
    found = reach(base, other)
    if not found.seeds:
        return f"No common seeds, so {name} and {base_name} cannot be compared."
    target = f"{base_name}'s best validation loss ({np.mean(found.targets):.3f}"
    target += ")" if len(found.seeds) == 1 else f" on average over {len(found.seeds)} seeds)"
    if not found.all_reached:
        return (
            f"{name} reached {target} in only {found.reached} of {len(found.seeds)} seeds, so it cannot be said "
            f"to converge faster to that level."
        )
    epochs, base_epochs = np.mean(found.other_epochs), np.mean(found.base_epochs)
    verdict = _judge(found.seconds_ratios(), comparison, noise, MIN_TIME_RATIO, ratio=True)
    text = f"{name} reached {target} after {epochs:.1f} epochs, {base_name} after {base_epochs:.1f} (its best epoch)"
    if verdict is None:
        return text + "; no training CPU times were recorded, so time cannot be compared."
    conclusion = {
        LOWER: f"{name} converged faster",
        HIGHER: f"{name} converged more slowly",
        SAME: f"{name} converged as fast",
    }.get(verdict.direction, f"this cannot tell whether {name} converged faster")
    return (
        f"{text}; its training CPU time to get there, as a ratio to {base_name}'s, was {evidence(verdict, '×')}: "
        f"{conclusion}."
    )


def speed_sentence(
    name: str, base_name: str, base: Sequence[RunRecord], other: Sequence[RunRecord], comparison: str, noise: Noise
) -> str:
    """Training CPU seconds per epoch of `other` against `base` (wall seconds beside them)."""
    verdict = _judge(ratios(base, other, cpu_seconds_per_epoch), comparison, noise, MIN_TIME_RATIO, ratio=True)
    if verdict is None:
        return "No training CPU times were recorded, so speed cannot be compared."
    conclusion = {
        HIGHER: f"{name} made each epoch slower",
        LOWER: f"{name} made each epoch faster",
        SAME: f"{name} did not change the cost of an epoch",
    }.get(verdict.direction, f"this cannot tell whether {name} changed the cost of an epoch")
    return (
        f"A training epoch cost {_pm(other, 'train_cpu_seconds_per_epoch', 'seconds')} CPU s with {name} vs "
        f"{_pm(base, 'train_cpu_seconds_per_epoch', 'seconds')} with {base_name} (wall "
        f"{_pm(other, 'train_seconds_per_epoch', 'seconds')} vs {_pm(base, 'train_seconds_per_epoch', 'seconds')} s; "
        f"batch {_batch(other)} vs {_batch(base)}; first, compiling epoch excluded), a ratio of "
        f"{evidence(verdict, '×')}: {conclusion}."
    )


def _batch(records: Sequence[RunRecord]) -> int:
    return EXERCISE_PARTS[records[0].part].train.batch_size


def answer_architecture(key: str, by: dict[str, list[RunRecord]], noise: Noise) -> str:
    """c or d: converging faster, a better model, training speed; all against part a (elu)."""
    name = {"c": "BN", "d": "SELU"}[key]
    if key not in by or "a" not in by:
        return f"Not answered: run parts a and {key} (`--parts a,{key}`)."
    base, other = by["a"], by[key]
    book = EXERCISE_PARTS[key].textbook_valid_accuracy
    return " ".join(
        [
            convergence_sentence(name, "elu", base, other, f"convergence {key}-a", noise),
            accuracy_sentence(name, "elu", base, other, f"accuracy {key}-a", noise),
            speed_sentence(name, "elu", base, other, f"speed {key}-a", noise),
            f"The book reported {_pct(book)} vs {_pct(EXERCISE_PARTS['a'].textbook_valid_accuracy)} (one seed, "
            "validation accuracy)." + cap_note(base, other),
        ]
    )


def answer_mc_dropout(by: dict[str, list[RunRecord]], noise: Noise) -> str:
    """e: does MC Dropout beat the deterministic predictions of the same trained model? Judged on test."""
    runs = [r for r in by.get("e", []) if r.mc is not None]
    if not runs:
        return "Not answered: run part e (`--parts e`)."
    verdict = _judge(mc_gains(runs, "test"), "mc e", noise, MIN_MC_GAP)
    conclusion = {
        HIGHER: "MC Dropout improved accuracy",
        LOWER: "MC Dropout lowered accuracy",
        SAME: f"MC Dropout did not change accuracy by {100 * MIN_MC_GAP:.1f} point or more",
    }.get(verdict.direction, "this cannot tell whether MC Dropout improved accuracy")
    text = (
        f"With {runs[0].mc['samples']} samples and no retraining, test accuracy went from "
        f"{_pm(runs, 'det_test_accuracy')} (deterministic) to {_pm(runs, 'mc_test_accuracy')}, a paired gain of "
        f"{evidence(verdict)}: {conclusion}. The test split judges because it chose nothing (validation chose the "
        f"checkpoint and the LR); on validation it went from {_pm(runs, 'det_valid_accuracy')} to "
        f"{_pm(runs, 'mc_valid_accuracy')}."
    )
    calibration = [
        f"{label} {_pm(runs, f'det_test_{key}', 'loss')} → {_pm(runs, f'mc_test_{key}', 'loss')}"
        for key, label in (("nll", "NLL"), ("brier", "Brier score"), ("ece", "ECE"))
        if stat(runs, f"det_test_{key}") is not None and stat(runs, f"mc_test_{key}") is not None
    ]
    if calibration:
        text += f" On test, {', '.join(calibration)} (lower is better)."
    return text + (
        f" The book reported {_pct(EXERCISE_PARTS['e'].textbook_valid_accuracy)} deterministic and "
        f"{_pct(TEXTBOOK_MC_VALID_ACCURACY)} with MC Dropout (one seed, validation accuracy)."
    )


def answer_1cycle(by: dict[str, list[RunRecord]], noise: Noise) -> str:
    """f: does 1cycle (SGD, batch 128) train faster and better than the same net with Nadam (e)?"""
    if "f" not in by:
        return "Not answered: run part f (`--parts f`)."
    if "e" not in by:
        return "Not answered: run part f with part e (the same network with Nadam): `--parts e,f`."
    base, other = by["e"], by["f"]
    ref_name = "e (alpha-dropout, Nadam)"
    verdict = _judge(ratios(base, other, cpu_seconds_to_best), "time to best f-e", noise, MIN_TIME_RATIO, ratio=True)
    speed = (
        f"1cycle reached its best validation loss at epoch {_pm(other, 'best_epoch', 'count')} of its 15, "
        f"{ref_name} at epoch {_pm(base, 'best_epoch', 'count')} (batch 128 both)"
    )
    if verdict is None:
        speed += "; no training CPU times were recorded, so time cannot be compared."
    else:
        conclusion = {
            LOWER: "1cycle trained faster to its best model",
            HIGHER: "1cycle trained more slowly to its best model",
            SAME: "1cycle trained as fast to its best model",
        }.get(verdict.direction, "this cannot tell whether 1cycle trained faster to its best model")
        speed += (
            f"; its training CPU time to that epoch, as a ratio to e's, was {evidence(verdict, '×')}: {conclusion}."
        )
    book = (
        f" The book reported {_pct(EXERCISE_PARTS['f'].textbook_valid_accuracy)} in 15 epochs "
        f"(one seed, validation accuracy)."
    )
    return (
        " ".join([speed, accuracy_sentence("1cycle", ref_name, base, other, "accuracy f-e", noise)])
        + book
        + (cap_note(base))
    )


def answers(records: Sequence[RunRecord], noise: Noise | None = None) -> dict[str, str]:
    """The exercise's questions c, d, e and f, each answered from the records.

    `noise`: seed-to-seed noise levels by comparison name, used only where a comparison has one seed.
    """
    by, noise = by_part(records), noise or {}
    return {
        "c": answer_architecture("c", by, noise),
        "d": answer_architecture("d", by, noise),
        "e": answer_mc_dropout(by, noise),
        "f": answer_1cycle(by, noise),
    }


QUESTIONS = {
    "c": "c. Is the model with Batch Normalization converging faster, is it a better model, "
    "and how does BN affect training speed?",
    "d": "d. The same questions with SELU (self-normalizing net).",
    "e": "e. Does MC Dropout improve accuracy, without retraining?",
    "f": "f. Does 1cycle scheduling improve training speed and accuracy?",
}
