"""Answers to exercise 8's questions c-f, written from the measured numbers.

Verdicts use validation figures only; test figures are reported beside them, never decide.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dnnlab.exercise.config import EXERCISE_PARTS, TEXTBOOK_MC_VALID_ACCURACY
from dnnlab.exercise.records import LR_SEARCH_SECONDS, RunRecord, Stat, by_part, format_stat, stat

# With one seed there is no spread to judge by, so gaps below these are called "about the same":
# 1 point between two trained models, 0.5 point for MC Dropout (it re-scores the same model).
SAME_MODEL_GAP = 0.01
SAME_MC_GAP = 0.005


def verdict(diffs: Stat, same_gap: float) -> str:
    """higher, lower, same, or mixed, for per-seed differences `other - base`.

    One seed: `same` when the gap is below `same_gap`. Several: a direction only when every
    seed agrees and the mean gap exceeds the std of the gaps; otherwise `same` when the mean
    gap is below `same_gap`, else `mixed` (the seeds disagree).
    """
    mean = diffs.mean
    if diffs.std is None:
        return "same" if abs(mean) < same_gap else ("higher" if mean > 0 else "lower")
    if all(d > 0 for d in diffs.values) and mean > diffs.std:
        return "higher"
    if all(d < 0 for d in diffs.values) and -mean > diffs.std:
        return "lower"
    return "same" if abs(mean) < same_gap else "mixed"


def paired(base: Sequence[RunRecord], other: Sequence[RunRecord], key: str) -> Stat | None:
    """Per-seed differences `other - base` of figure `key`, over the seeds both parts ran."""
    base_by_seed = {r.seed: r.value(key) for r in base}
    diffs = tuple(
        r.value(key) - base_by_seed[r.seed]
        for r in other
        if base_by_seed.get(r.seed) is not None and r.value(key) is not None
    )
    return Stat(diffs) if diffs else None


def epochs_to_reach(history: dict[str, list[float]], target: float) -> tuple[int, float] | None:
    """(1-based epoch, training seconds) when validation loss first reaches `target`, or None."""
    losses = history["val_loss"]
    times = history.get("epoch_time", [math.nan] * len(losses))
    for i, loss in enumerate(losses):
        if loss <= target:
            return i + 1, float(np.sum(times[: i + 1]))
    return None


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _pm(records: Sequence[RunRecord], key: str, kind: str = "percent") -> str:
    text = format_stat(stat(records, key), kind)
    return text + "%" if kind == "percent" and text != "—" else text


def _seeds_note(n: int) -> str:
    return "one seed, so the spread is unknown: rerun with --seeds 3" if n == 1 else f"over {n} seeds"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}×" if b > 0 else "∞×"


def accuracy_sentence(
    name: str, base_name: str, base: Sequence[RunRecord], other: Sequence[RunRecord], same_gap: float = SAME_MODEL_GAP
) -> str:
    """Validation accuracy of `other` against `base` (with test beside it) and a verdict."""
    diff = paired(base, other, "valid_accuracy")
    if diff is None:
        return f"No common seeds, so {name} and {base_name} cannot be compared."
    conclusion = {
        "higher": f"{name} produced a better model",
        "lower": f"{name} produced a worse model",
        "same": f"{name} did not produce a better model: the accuracies are about the same",
        "mixed": f"{name} did not produce a consistently better model: the seeds disagree",
    }[verdict(diff, same_gap)]
    return (
        f"Validation accuracy {_pm(other, 'valid_accuracy')} for {name} vs {_pm(base, 'valid_accuracy')} "
        f"for {base_name} ({100 * diff.mean:+.1f} points; test {_pm(other, 'test_accuracy')} vs "
        f"{_pm(base, 'test_accuracy')}): {conclusion} ({_seeds_note(len(diff.values))})."
    )


def convergence_sentence(name: str, base_name: str, base: Sequence[RunRecord], other: Sequence[RunRecord]) -> str:
    """Epochs and training seconds for `other` to reach `base`'s best validation loss (seed by seed)."""
    other_by_seed = {r.seed: r for r in other}
    pairs = [(b, other_by_seed[b.seed]) for b in base if b.seed in other_by_seed]
    if not pairs:
        return f"No common seeds, so {name} and {base_name} cannot be compared."
    target = float(np.mean([b.best_valid_loss() for b, _ in pairs]))
    reached = [(b, epochs_to_reach(o.history, b.best_valid_loss())) for b, o in pairs]
    hits = [(b, hit) for b, hit in reached if hit is not None]
    if not hits:
        longest = max(len(o.history["val_loss"]) for _, o in pairs)
        return (
            f"{name} never reached {base_name}'s best validation loss ({target:.3f}) within its "
            f"{longest} epochs (its own best: {np.mean([o.best_valid_loss() for _, o in pairs]):.3f}), "
            f"so it did not converge faster to that level."
        )
    epochs = float(np.mean([hit[0] for _, hit in hits]))
    seconds = float(np.mean([hit[1] for _, hit in hits]))
    # The base reaches its own best loss at its best epoch, by definition.
    base_hits = [epochs_to_reach(b.history, b.best_valid_loss()) for b, _ in hits]
    base_epochs = float(np.mean([hit[0] for hit in base_hits]))
    base_seconds = float(np.mean([hit[1] for hit in base_hits]))
    epoch_ratio, time_ratio = _ratio(base_epochs, epochs), _ratio(base_seconds, seconds)
    if epochs < base_epochs and seconds < base_seconds:
        conclusion = f"{name} converged faster, by {epoch_ratio} in epochs and {time_ratio} in wall time"
    elif epochs < base_epochs:
        conclusion = f"{name} converged in fewer epochs ({epoch_ratio}) but not faster in wall time"
    elif seconds < base_seconds:
        conclusion = f"{name} needed as many epochs or more but less wall time ({time_ratio})"
    else:
        conclusion = f"{name} did not converge faster"
    missed = len(pairs) - len(hits)
    missed_note = f" ({missed} of {len(pairs)} seeds never reached it)" if missed else ""
    return (
        f"{name} reached {base_name}'s best validation loss ({target:.3f}) after {epochs:.1f} epochs "
        f"({seconds:.0f} s of training){missed_note}; {base_name} needed {base_epochs:.1f} epochs "
        f"({base_seconds:.0f} s): {conclusion}."
    )


def speed_sentence(name: str, base_name: str, base: Sequence[RunRecord], other: Sequence[RunRecord]) -> str:
    """Seconds per epoch of `other` against `base`."""
    mine, theirs = stat(other, "mean_epoch_seconds"), stat(base, "mean_epoch_seconds")
    if mine is None or theirs is None:
        return "No epoch times were recorded."
    ratio = mine.mean / theirs.mean
    if ratio > 1.05:
        effect = f"{ratio:.2f}× slower per epoch"
    elif ratio < 0.95:
        effect = f"{1 / ratio:.2f}× faster per epoch"
    else:
        effect = "about the same speed per epoch"
    return (
        f"An epoch took {mine.mean:.1f} s with {name} (batch {_batch(other)}) vs {theirs.mean:.1f} s with "
        f"{base_name} (batch {_batch(base)}): {effect}."
    )


def _batch(records: Sequence[RunRecord]) -> int:
    return EXERCISE_PARTS[records[0].part].train.batch_size


def answer_architecture(key: str, by: dict[str, list[RunRecord]]) -> str:
    """c or d: converging faster, a better model, training speed; all against part a (elu)."""
    name = {"c": "BN", "d": "SELU"}[key]
    if key not in by or "a" not in by:
        return f"Not answered: run parts a and {key} (`--parts a,{key}`)."
    base, other = by["a"], by[key]
    book = EXERCISE_PARTS[key].textbook_valid_accuracy
    return " ".join(
        [
            convergence_sentence(name, "elu", base, other),
            accuracy_sentence(name, "elu", base, other),
            speed_sentence(name, "elu", base, other),
            f"The book reported {_pct(book)} vs {_pct(EXERCISE_PARTS['a'].textbook_valid_accuracy)} (one seed, "
            "validation accuracy).",
        ]
    )


def answer_mc_dropout(by: dict[str, list[RunRecord]]) -> str:
    """e: does MC Dropout beat the deterministic predictions of the same trained model?"""
    runs = [r for r in by.get("e", []) if r.mc is not None]
    if not runs:
        return "Not answered: run part e (`--parts e`)."
    samples = runs[0].mc["samples"]
    diffs = Stat(tuple(r.value("mc_valid_accuracy") - r.value("det_valid_accuracy") for r in runs))
    conclusion = {
        "higher": "MC Dropout improved accuracy",
        "lower": "MC Dropout lowered accuracy",
        "same": "MC Dropout did not change accuracy meaningfully",
        "mixed": "MC Dropout did not improve accuracy consistently: the seeds disagree",
    }[verdict(diffs, SAME_MC_GAP)]
    text = (
        f"With {samples} samples and no retraining, validation accuracy went from "
        f"{_pm(runs, 'det_valid_accuracy')} (deterministic) to {_pm(runs, 'mc_valid_accuracy')} "
        f"({100 * diffs.mean:+.1f} points) and test accuracy from {_pm(runs, 'det_test_accuracy')} to "
        f"{_pm(runs, 'mc_test_accuracy')}: {conclusion} ({_seeds_note(len(runs))})."
    )
    calibration = [
        f"{label} {_pm(runs, f'det_valid_{key}', 'loss')} → {_pm(runs, f'mc_valid_{key}', 'loss')}"
        for key, label in (("nll", "NLL"), ("brier", "Brier score"), ("ece", "ECE"))
        if stat(runs, f"det_valid_{key}") is not None and stat(runs, f"mc_valid_{key}") is not None
    ]
    if calibration:
        text += f" On validation, {', '.join(calibration)} (lower is better)."
    return text + (
        f" The book reported {_pct(EXERCISE_PARTS['e'].textbook_valid_accuracy)} deterministic and "
        f"{_pct(TEXTBOOK_MC_VALID_ACCURACY)} with MC Dropout (one seed, validation accuracy)."
    )


def answer_1cycle(by: dict[str, list[RunRecord]]) -> str:
    """f: does 1cycle (SGD, batch 128) train faster and better than the same net with Nadam (e)?"""
    if "f" not in by:
        return "Not answered: run part f (`--parts f`)."
    ref_key = "e" if "e" in by else ("a" if "a" in by else None)
    if ref_key is None:
        return "Not answered: run part f with part e (the same network with Nadam): `--parts e,f`."
    base, other = by[ref_key], by["f"]
    ref_name = f"{ref_key} ({EXERCISE_PARTS[ref_key].name}, Nadam)"
    to_best, ref_to_best = stat(other, "time_to_best_seconds"), stat(base, "time_to_best_seconds")
    total, ref_total = stat(other, "wall_seconds"), stat(base, "wall_seconds")
    faster = to_best.mean < ref_to_best.mean
    searched = " including its LR search" if stat(other, LR_SEARCH_SECONDS) is not None else ""
    speed = (
        f"1cycle reached its best validation loss after {to_best.mean:.0f} s of training "
        f"({stat(other, 'best_epoch').mean:.1f} epochs at {stat(other, 'mean_epoch_seconds').mean:.1f} s/epoch, "
        f"batch {_batch(other)}), {ref_name} after {ref_to_best.mean:.0f} s "
        f"({stat(base, 'best_epoch').mean:.1f} epochs at {stat(base, 'mean_epoch_seconds').mean:.1f} s/epoch, "
        f"batch {_batch(base)}); "
        f"the whole run{searched} took {total.mean:.0f} s vs {ref_total.mean:.0f} s: "
        + (
            f"1cycle trained {_ratio(ref_to_best.mean, to_best.mean)} faster to its best model."
            if faster
            else "1cycle did not train faster."
        )
    )
    book = (
        f" The book reported {_pct(EXERCISE_PARTS['f'].textbook_valid_accuracy)} in 15 epochs "
        f"(one seed, validation accuracy)."
    )
    return " ".join([speed, accuracy_sentence("1cycle", ref_name, base, other)]) + book


def answers(records: Sequence[RunRecord]) -> dict[str, str]:
    """The exercise's questions c, d, e and f, each answered from the records."""
    by = by_part(records)
    return {
        "c": answer_architecture("c", by),
        "d": answer_architecture("d", by),
        "e": answer_mc_dropout(by),
        "f": answer_1cycle(by),
    }


QUESTIONS = {
    "c": "c. Is the model with Batch Normalization converging faster, is it a better model, "
    "and how does BN affect training speed?",
    "d": "d. The same questions with SELU (self-normalizing net).",
    "e": "e. Does MC Dropout improve accuracy, without retraining?",
    "f": "f. Does 1cycle scheduling improve training speed and accuracy?",
}
