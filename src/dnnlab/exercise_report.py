"""The exercise-8 report: a results table (also CSV and JSON), plots, and answers written from
the measured numbers.

Everything here is a function of `RunRecord`s (a run folder's metrics, history and MC Dropout
scores), so tests feed scripted results and check the sentences change with the numbers.
Verdicts use validation figures only; test figures are reported beside them, never decide.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dnnlab.atomic import write_json_atomic, write_text_atomic
from dnnlab.config import EXERCISE_PARTS, TEXTBOOK_MC_VALID_ACCURACY, ExerciseConfig
from dnnlab.document import Document, save_figure
from dnnlab.lr_finder import CSV_FILE as LR_FINDER_CSV, read_curve
from dnnlab.mc_dropout_report import DETERMINISTIC, FIGURES as MC_FIGURES
from dnnlab.train import COMPLETED

LR_SEARCH_SECONDS = "lr_search_seconds"  # metrics.json's lr_search.seconds, as a table column
MC_KINDS = {"det": DETERMINISTIC, "mc": "mc"}  # flat-name prefix -> mc_dropout.json section
# With one seed there is no spread to judge by, so gaps below these are called "about the same":
# 1 point between two trained models, 0.5 point for MC Dropout (it re-scores the same model).
SAME_MODEL_GAP = 0.01
SAME_MC_GAP = 0.005


@dataclass(frozen=True)
class RunRecord:
    """One trained run as read back from its folder."""

    part: str  # exercise part key: a, c, d, e, f
    seed: int
    run_dir: Path
    metrics: dict[str, Any]  # metrics.json
    history: dict[str, list[float]]  # history.csv columns
    mc: dict[str, Any] | None = None  # mc_dropout.json (part e; see dnnlab.mc_dropout_report)

    def value(self, key: str) -> float | None:
        """A figure of this run by flat name: a metrics.json key, `lr_search_seconds`, or
        `<det|mc>_<valid|test>_<metric>` from mc_dropout.json."""
        if key == LR_SEARCH_SECONDS:
            source, key = self.metrics.get("lr_search"), "seconds"
        elif key.startswith(("mc_", "det_")):
            kind, split, key = key.split("_", 2)
            source = None if self.mc is None else self.mc[split][MC_KINDS[kind]]
        else:
            source = self.metrics
        value = None if source is None else source.get(key)
        return None if value is None else float(value)

    @property
    def completed(self) -> bool:
        return self.metrics.get("status") == COMPLETED

    def best_valid_loss(self) -> float:
        return float(np.nanmin(self.history["val_loss"]))


@dataclass(frozen=True)
class Stat:
    """Values of one figure over seeds; `std` is the sample std (None for one seed)."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float | None:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else None


@dataclass(frozen=True)
class Column:
    key: str  # metrics.json (or mc_dropout.json for mc_*) key
    header: str
    kind: str  # how to format: percent, loss, lr, count, seconds


COLUMNS = (
    Column("lr", "chosen LR", "lr"),
    Column("epochs_run", "epochs run", "count"),
    Column("best_epoch", "best epoch", "count"),
    Column("valid_accuracy", "valid acc %", "percent"),
    Column("valid_loss", "valid loss", "loss"),
    Column("test_accuracy", "test acc %", "percent"),
    Column("test_loss", "test loss", "loss"),
    Column("mean_epoch_seconds", "s/epoch", "seconds"),
    Column("time_to_best_seconds", "s to best epoch", "seconds"),
    Column(LR_SEARCH_SECONDS, "s LR search", "seconds"),
    Column("wall_seconds", "s total", "seconds"),
    Column("mc_valid_accuracy", "MC valid acc %", "percent"),
    Column("mc_test_accuracy", "MC test acc %", "percent"),
)


def stat(records: Sequence[RunRecord], key: str) -> Stat | None:
    values = [record.value(key) for record in records]
    present = tuple(v for v in values if v is not None)
    return Stat(present) if present else None


def by_part(records: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
    """Completed runs grouped by part, in exercise order, each sorted by seed.

    A diverged (or otherwise unfinished) run has no trustworthy scores: it is listed apart
    (see `unfinished_note`), never averaged in.
    """
    grouped = {key: sorted((r for r in records if r.part == key and r.completed), key=lambda r: r.seed)
               for key in EXERCISE_PARTS}
    return {key: runs for key, runs in grouped.items() if runs}


def _number(value: float, kind: str, like: float | None = None) -> str:
    """`value` formatted for its kind; a std takes the decimals of its mean (`like`)."""
    like = value if like is None else like
    if kind == "percent":
        return f"{100 * value:.1f}"
    if kind == "loss":
        return f"{value:.3f}"
    if kind == "lr":
        return f"{value:.2g}"
    if kind == "count":
        return f"{value:.0f}" if float(like).is_integer() and float(value).is_integer() else f"{value:.1f}"
    return f"{value:.1f}" if like < 10 else f"{value:.0f}"


def format_stat(value: Stat | None, kind: str) -> str:
    """`mean ± std` (just the value for one seed); an em dash when there is nothing."""
    if value is None:
        return "—"
    text = _number(value.mean, kind)
    return text if value.std is None else f"{text} ± {_number(value.std, kind, like=value.mean)}"


# ---------------------------------------------------------------------------------------------
# Tables


def table_rows(records: Sequence[RunRecord]) -> tuple[list[str], list[list[str]]]:
    """The report's results table: one row per part, mean ± std over seeds, the book beside ours."""
    header = ["part", "seeds", "book LR", *[c.header for c in COLUMNS[:4]], "book valid acc %",
              *[c.header for c in COLUMNS[4:]]]
    rows = []
    for key, runs in by_part(records).items():
        part = EXERCISE_PARTS[key]
        cells = [format_stat(stat(runs, c.key), c.kind) for c in COLUMNS]
        book = f"{100 * part.textbook_valid_accuracy:.1f}"
        if key == "e":
            book += f" (MC {100 * TEXTBOOK_MC_VALID_ACCURACY:.1f})"
        rows.append([part.title, str(len(runs)), f"{part.textbook_lr:g}", *cells[:4], book, *cells[4:]])
    return header, rows


def results_json(records: Sequence[RunRecord], config: ExerciseConfig | None = None) -> dict[str, Any]:
    """Every part's per-seed figures (copied from the run folders) and their mean and std."""
    parts = []
    for key, runs in by_part(records).items():
        part = EXERCISE_PARTS[key]
        summary = {}
        for column in COLUMNS:
            value = stat(runs, column.key)
            if value is not None:
                summary[column.key] = {"mean": value.mean, "std": value.std, "values": list(value.values)}
        parts.append({
            "part": key,
            "variant": part.variant,
            "title": part.title,
            "textbook_lr": part.textbook_lr,
            "textbook_valid_accuracy": part.textbook_valid_accuracy,
            "textbook_mc_valid_accuracy": TEXTBOOK_MC_VALID_ACCURACY if key == "e" else None,
            "runs": [{"seed": r.seed, "run_dir": str(r.run_dir),
                      **{c.key: r.value(c.key) for c in COLUMNS if r.value(c.key) is not None}} for r in runs],
            "summary": summary,
        })
    return {"exercise": None if config is None else dataclasses.asdict(config), "parts": parts}


def csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    fields = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def summary_csv_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """`results.csv`: one row per part with `<figure>_mean` and `<figure>_std` columns."""
    rows = []
    for part in results["parts"]:
        row: dict[str, Any] = {"part": part["part"], "variant": part["variant"], "seeds": len(part["runs"]),
                               "textbook_lr": part["textbook_lr"],
                               "textbook_valid_accuracy": part["textbook_valid_accuracy"]}
        for column in COLUMNS:
            value = part["summary"].get(column.key)
            row[f"{column.key}_mean"] = "" if value is None else value["mean"]
            row[f"{column.key}_std"] = "" if value is None or value["std"] is None else value["std"]
        rows.append(row)
    return rows


def run_csv_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """`runs.csv`: one row per part and seed, the run folder's own numbers."""
    return [{"part": part["part"], "variant": part["variant"], **run} for part in results["parts"]
            for run in part["runs"]]


# ---------------------------------------------------------------------------------------------
# Answers: sentences computed from the records


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
    diffs = tuple(r.value(key) - base_by_seed[r.seed] for r in other
                  if base_by_seed.get(r.seed) is not None and r.value(key) is not None)
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


def accuracy_sentence(name: str, base_name: str, base: Sequence[RunRecord], other: Sequence[RunRecord],
                      same_gap: float = SAME_MODEL_GAP) -> str:
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
    return (f"Validation accuracy {_pm(other, 'valid_accuracy')} for {name} vs {_pm(base, 'valid_accuracy')} "
            f"for {base_name} ({100 * diff.mean:+.1f} points; test {_pm(other, 'test_accuracy')} vs "
            f"{_pm(base, 'test_accuracy')}): {conclusion} ({_seeds_note(len(diff.values))}).")


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
        return (f"{name} never reached {base_name}'s best validation loss ({target:.3f}) within its "
                f"{longest} epochs (its own best: {np.mean([o.best_valid_loss() for _, o in pairs]):.3f}), "
                f"so it did not converge faster to that level.")
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
    return (f"{name} reached {base_name}'s best validation loss ({target:.3f}) after {epochs:.1f} epochs "
            f"({seconds:.0f} s of training){missed_note}; {base_name} needed {base_epochs:.1f} epochs "
            f"({base_seconds:.0f} s): {conclusion}.")


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
    return (f"An epoch took {mine.mean:.1f} s with {name} (batch {_batch(other)}) vs {theirs.mean:.1f} s with "
            f"{base_name} (batch {_batch(base)}): {effect}.")


def _batch(records: Sequence[RunRecord]) -> int:
    return EXERCISE_PARTS[records[0].part].train.batch_size


def answer_architecture(key: str, by: dict[str, list[RunRecord]]) -> str:
    """c or d: converging faster, a better model, training speed; all against part a (elu)."""
    name = {"c": "BN", "d": "SELU"}[key]
    if key not in by or "a" not in by:
        return f"Not answered: run parts a and {key} (`--parts a,{key}`)."
    base, other = by["a"], by[key]
    book = EXERCISE_PARTS[key].textbook_valid_accuracy
    return " ".join([
        convergence_sentence(name, "elu", base, other),
        accuracy_sentence(name, "elu", base, other),
        speed_sentence(name, "elu", base, other),
        f"The book reported {_pct(book)} vs {_pct(EXERCISE_PARTS['a'].textbook_valid_accuracy)} (one seed, "
        "validation accuracy).",
    ])


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
    text = (f"With {samples} samples and no retraining, validation accuracy went from "
            f"{_pm(runs, 'det_valid_accuracy')} (deterministic) to {_pm(runs, 'mc_valid_accuracy')} "
            f"({100 * diffs.mean:+.1f} points) and test accuracy from {_pm(runs, 'det_test_accuracy')} to "
            f"{_pm(runs, 'mc_test_accuracy')}: {conclusion} ({_seeds_note(len(runs))}).")
    calibration = [f"{label} {_pm(runs, f'det_valid_{key}', 'loss')} → {_pm(runs, f'mc_valid_{key}', 'loss')}"
                   for key, label in (("nll", "NLL"), ("brier", "Brier score"), ("ece", "ECE"))
                   if stat(runs, f"det_valid_{key}") is not None and stat(runs, f"mc_valid_{key}") is not None]
    if calibration:
        text += f" On validation, {', '.join(calibration)} (lower is better)."
    return text + (f" The book reported {_pct(EXERCISE_PARTS['e'].textbook_valid_accuracy)} deterministic and "
                   f"{_pct(TEXTBOOK_MC_VALID_ACCURACY)} with MC Dropout (one seed, validation accuracy).")


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
    speed = (f"1cycle reached its best validation loss after {to_best.mean:.0f} s of training "
             f"({stat(other, 'best_epoch').mean:.1f} epochs at {stat(other, 'mean_epoch_seconds').mean:.1f} s/epoch, "
             f"batch {_batch(other)}), {ref_name} after {ref_to_best.mean:.0f} s "
             f"({stat(base, 'best_epoch').mean:.1f} epochs at {stat(base, 'mean_epoch_seconds').mean:.1f} s/epoch, "
             f"batch {_batch(base)}); "
             f"the whole run{searched} took {total.mean:.0f} s vs {ref_total.mean:.0f} s: "
             + (f"1cycle trained {_ratio(ref_to_best.mean, to_best.mean)} faster to its best model."
                if faster else "1cycle did not train faster."))
    book = (f" The book reported {_pct(EXERCISE_PARTS['f'].textbook_valid_accuracy)} in 15 epochs "
            f"(one seed, validation accuracy).")
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


# ---------------------------------------------------------------------------------------------
# Figures (matplotlib's object API: no global pyplot state, no display needed)


def _figure(width: float, height: float, ncols: int = 1, nrows: int = 1):
    """A figure and its axes as a flat list (row by row)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, list(fig.subplots(nrows, ncols, squeeze=False).flat)


def _color(key: str) -> str:
    return f"C{list(EXERCISE_PARTS).index(key)}"


def curves_figure(by: dict[str, list[RunRecord]], against: str = "epoch"):
    """Validation loss and accuracy of every run, per epoch or against cumulative training time."""
    fig, (loss_ax, acc_ax) = _figure(12, 4.2, 2)
    for key, runs in by.items():
        for i, run in enumerate(runs):
            n = len(run.history["val_loss"])
            if against == "epoch":
                x = np.arange(1, n + 1)
            else:
                x = np.cumsum(run.history.get("epoch_time", [math.nan] * n))
            label = f"{key}: {EXERCISE_PARTS[key].name}" if i == 0 else None
            loss_ax.plot(x, run.history["val_loss"], color=_color(key), alpha=0.85, label=label)
            acc_ax.plot(x, 100 * np.asarray(run.history["val_accuracy"]), color=_color(key), alpha=0.85)
    xlabel = "epoch" if against == "epoch" else "training time (s)"
    loss_ax.set(xlabel=xlabel, ylabel="validation loss", title="Validation loss")
    acc_ax.set(xlabel=xlabel, ylabel="validation accuracy (%)", title="Validation accuracy")
    loss_ax.legend(fontsize=8)
    for ax in (loss_ax, acc_ax):
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
    return fig


def lr_finder_figure(by: dict[str, list[RunRecord]]):
    """Each part's LR range test (first seed) with the LR the search chose; None if none was run."""
    tested = [(key, runs[0]) for key, runs in by.items() if (runs[0].run_dir / LR_FINDER_CSV).exists()]
    if not tested:
        return None
    ncols = min(3, len(tested))
    nrows = math.ceil(len(tested) / ncols)
    fig, axes = _figure(4.0 * ncols, 3.2 * nrows, ncols, nrows)
    for ax in axes[len(tested):]:
        ax.set_visible(False)
    for ax, (key, run) in zip(axes, tested):
        lrs, _, smoothed = read_curve(run.run_dir / LR_FINDER_CSV)
        lrs, losses = np.asarray(lrs), np.asarray(smoothed)
        ax.plot(lrs, losses, color=_color(key))
        search = run.metrics.get("lr_search") or {}
        if search.get("suggestion") is not None:
            ax.axvline(search["suggestion"], color="grey", linestyle=":",
                       label=f"range test ({search.get('rule')}) {search['suggestion']:.2g}")
        ax.axvline(run.metrics["lr"], color="k", linestyle="--", label=f"chosen {run.metrics['lr']:.2g}")
        ax.set(xscale="log", xlabel="learning rate", ylabel="smoothed loss",
               title=f"{key}: {EXERCISE_PARTS[key].name} (seed {run.seed})")
        finite = losses[np.isfinite(losses)]
        if finite.size:  # the exploding tail would flatten the interesting part
            ax.set_ylim(finite.min() * 0.95, min(finite.max(), 2 * finite[0]) * 1.05)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return fig


def accuracy_figure(by: dict[str, list[RunRecord]]):
    """Validation and test accuracy per part (mean, std error bars) and the book's validation figure."""
    fig, (ax,) = _figure(max(5.0, 1.6 * len(by)), 4)
    x = np.arange(len(by))
    for offset, key, label in ((-0.2, "valid_accuracy", "validation"), (0.2, "test_accuracy", "test")):
        stats = [stat(runs, key) for runs in by.values()]
        ax.bar(x + offset, [100 * s.mean for s in stats], width=0.38, label=f"ours: {label}",
               yerr=[100 * (s.std or 0.0) for s in stats], capsize=4, alpha=0.85 if label == "test" else 0.5)
    ax.scatter(x - 0.2, [100 * EXERCISE_PARTS[key].textbook_valid_accuracy for key in by], marker="_", s=600,
               color="k", zorder=3, label="book: validation (one seed)")
    ax.set_xticks(x, [f"{key}: {EXERCISE_PARTS[key].name}" for key in by], fontsize=8)
    ax.set(ylabel="accuracy (%)", title="Accuracy per part (error bars: std over seeds)")
    low = min(100 * stat(runs, "test_accuracy").mean for runs in by.values())
    ax.set_ylim(max(0.0, low - 15), None)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    return fig


def mc_figure(runs: Sequence[RunRecord]):
    """Part e: deterministic vs MC Dropout accuracy and NLL (mean ± std over seeds), valid and test.

    Points, not bars: the differences are fractions of a point and bars would need a cut axis.
    """
    runs = [r for r in runs if r.mc is not None]
    metrics = [(key, label, scale) for key, label, scale in (("accuracy", "accuracy (%)", 100.0), ("nll", "NLL", 1.0))
               if stat(runs, f"det_valid_{key}") is not None]
    fig, axes = _figure(5 * len(metrics), 3.6, len(metrics))
    x = np.arange(2)
    for ax, (metric, label, scale) in zip(axes, metrics):
        mc_name = f"MC Dropout ({runs[0].mc['samples']} samples)"
        for offset, kind, name in ((-0.1, "det", "deterministic"), (0.1, "mc", mc_name)):
            stats = [stat(runs, f"{kind}_{split}_{metric}") for split in ("valid", "test")]
            ax.errorbar(x + offset, [scale * s.mean for s in stats], yerr=[scale * (s.std or 0.0) for s in stats],
                        fmt="o", capsize=4, label=name)
        ax.set_xticks(x, ["validation", "test"])
        ax.set_xlim(-0.5, 1.5)
        ax.set(ylabel=label, title=f"8e: {label}")
        if metric == "accuracy":
            _widen(ax, MC_ACCURACY_MIN_SPAN)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    return fig


# Matplotlib fits the y-axis to the points, so accuracies 0.02 points apart filled the plot as if
# they differed a lot; 2 points of axis keep gaps under the 0.5-point "same" rule looking small.
MC_ACCURACY_MIN_SPAN = 2.0


def _widen(ax, span: float) -> None:
    """Make `ax`'s y-axis at least `span` tall, around its current centre."""
    low, high = ax.get_ylim()
    if high - low < span:
        centre = (low + high) / 2
        ax.set_ylim(centre - span / 2, centre + span / 2)


# ---------------------------------------------------------------------------------------------
# The report


def describe_run(records: Sequence[RunRecord], config: ExerciseConfig) -> str:
    train_sizes = sorted({int(r.metrics.get("train_size", 0)) for r in records})
    if config.lr == "auto":
        lr = "searched per part and seed (LR range test + short confirming search on validation loss)"
    elif config.lr == "textbook":
        lr = "the book's hand-picked learning rates"
    else:
        lr = f"{config.lr:g} for every part"
    return (f"Parts {', '.join(by_part(records))}, {config.seeds} seed(s) from {config.seed}, "
            f"{'/'.join(str(n) for n in train_sizes)} training images"
            f"{' (--quick: a subset and few epochs, not comparable with the book)' if config.quick else ''}. "
            f"Learning rate: {lr}. Early stopping, best epochs and every verdict below use the validation "
            "set (held out from the training images); the test set is only evaluated."
            + (f" Up to {config.jobs} runs trained at once (--jobs), each in its own process, so their times "
               "include sharing the CPU; --jobs 1 gives times without that." if config.jobs > 1 else ""))


def unfinished_note(records: Sequence[RunRecord]) -> str | None:
    """One sentence naming the runs that did not complete, or None."""
    unfinished = [f"part {r.part} seed {r.seed}: {r.metrics.get('status')} ({r.run_dir})"
                  for r in records if not r.completed]
    return None if not unfinished else ("Left out of every table and answer: " + "; ".join(unfinished) + ".")


def build_document(records: Sequence[RunRecord], config: ExerciseConfig,
                   figures: dict[str, Path]) -> Document:
    doc = Document("Exercise 8: deep nets on CIFAR-10, measured")
    doc.paragraph(describe_run(records, config))
    note = unfinished_note(records)
    if note:
        doc.paragraph(f"**{note}**")
    doc.heading("Results")
    header, rows = table_rows(records)
    doc.table(header, rows)
    doc.paragraph("Figures are mean ± sample std over seeds. \"book\" columns are the textbook's published "
                  "numbers (Géron, one seed, validation accuracy), shown for reference only. Time to the "
                  "best epoch counts training epochs; the total includes the LR search and the evaluation. "
                  "Also in `results.csv`, `results.json` and, per run, `runs.csv`.")
    doc.heading("Answers")
    for key, text in answers(records).items():
        doc.paragraph(f"**{QUESTIONS[key]}** {text}")
    doc.paragraph("Verdict rule: per-seed paired differences; a direction is claimed when every seed agrees "
                  "and the mean gap exceeds the std of the gaps. With one seed, gaps under "
                  f"{100 * SAME_MODEL_GAP:.1f} point ({100 * SAME_MC_GAP:.1f} for MC Dropout) count as about "
                  "the same.")
    doc.heading("Figures")
    captions = {
        "curves_epoch": "Validation loss and accuracy per epoch, every part and seed.",
        "curves_time": "The same against cumulative training time (LR search excluded; the first epoch "
                       "includes compiling the model).",
        "lr_finder": "LR range test of each part (first seed), with the learning rate the search chose.",
        "accuracy": "Validation and test accuracy per part; black bars: the book's validation accuracy.",
        "mc_dropout": "Part e: deterministic vs MC Dropout predictions of the same trained model.",
        "mc_reliability": "Part e (first seed), validation set: reliability diagram, deterministic vs MC Dropout.",
        "mc_coverage": "Part e (first seed), validation set: accuracy as the most uncertain predictions are "
                       "set aside first.",
    }
    for name, path in figures.items():
        doc.figure(path, captions[name])
    return doc


def write_report(records: Sequence[RunRecord], config: ExerciseConfig) -> dict[str, Path]:
    """Write the tables, figures and report.md/report.html into `config.out_dir`; return their paths."""
    out = config.out_dir
    by = by_part(records)
    results = results_json(records, config)
    files = {"json": out / "results.json", "csv": out / "results.csv", "runs_csv": out / "runs.csv"}
    write_json_atomic(files["json"], results)
    write_text_atomic(files["csv"], csv_text(summary_csv_rows(results)))
    write_text_atomic(files["runs_csv"], csv_text(run_csv_rows(results)))
    candidates = {} if not by else {
        "curves_epoch": curves_figure(by, "epoch"),
        "curves_time": curves_figure(by, "time"),
        "lr_finder": lr_finder_figure(by),
        "accuracy": accuracy_figure(by),
        "mc_dropout": mc_figure(by["e"]) if any(r.mc is not None for r in by.get("e", [])) else None,
    }
    figures = {name: save_figure(fig, out / f"{name}.png") for name, fig in candidates.items() if fig is not None}
    scored = [r for r in by.get("e", []) if r.mc is not None]
    for name in ("reliability", "coverage") if scored else ():
        path = scored[0].run_dir / MC_FIGURES[name]  # drawn by mc_dropout_report beside the run
        if path.exists():
            figures[f"mc_{name}"] = path
    md, html = build_document(records, config, figures).write(out, "report")
    return {**files, **{f"figure_{name}": path for name, path in figures.items()}, "md": md, "html": html}
