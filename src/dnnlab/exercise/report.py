"""The exercise-8 report: results table (also CSV and JSON), plots, and answers written from the
measured numbers, as report.md and a standalone report.html."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dnnlab.config import BUDGET_MAX_EPOCHS, BUDGET_PATIENCE
from dnnlab.exercise.comparisons import STORED_NOISE, noise_json, noise_levels, read_noise
from dnnlab.exercise.config import ExerciseConfig
from dnnlab.exercise.figures import accuracy_figure, curves_figure, lr_finder_figure, mc_figure
from dnnlab.exercise.prose import MIN_ACCURACY_GAP, MIN_MC_GAP, MIN_TIME_RATIO, QUESTIONS, Noise, answers
from dnnlab.exercise.records import RunRecord, by_part
from dnnlab.exercise.tables import results_json, run_csv_rows, summary_csv_rows, table_rows
from dnnlab.files import write_json_atomic, write_text_atomic
from dnnlab.provenance import describe_device
from dnnlab.report.document import Document
from dnnlab.report.figures import save_figure
from dnnlab.report.tables import csv_text
from dnnlab.uncertainty.report import FIGURES as MC_FIGURES


def describe_run(records: Sequence[RunRecord], config: ExerciseConfig) -> str:
    train_sizes = sorted({int(r.metrics.get("train_size", 0)) for r in records})
    if config.lr == "auto":
        lr = "searched per part and seed (LR range test + short confirming search on validation loss)"
    elif config.lr == "textbook":
        lr = "the book's hand-picked learning rates"
    else:
        lr = f"{config.lr:g} for every part"
    devices = "; ".join(dict.fromkeys(describe_device(r.metrics.get("device")) for r in records))
    return (
        f"Parts {', '.join(by_part(records))}, {config.seeds} seed(s) from {config.seed}, "
        f"{'/'.join(str(n) for n in train_sizes)} training images"
        f"{' (--quick: a subset and few epochs, not comparable with the book)' if config.quick else ''}. "
        f"Learning rate: {lr}. Trained on {devices or 'no recorded device'}. Every Nadam part trains under "
        f"one early-stopping rule: patience {BUDGET_PATIENCE} on validation loss, at most {BUDGET_MAX_EPOCHS} "
        "epochs; part f runs the book's 15-epoch cycle. Early stopping, best epochs and the accuracy verdicts "
        "use the validation set (held out from the training images); the test set selects nothing, and judges "
        "MC Dropout."
        + (
            f" Up to {config.jobs} runs trained at once (--jobs), each in its own process: wall times include "
            "sharing the CPU, so speed verdicts use CPU seconds; --jobs 1 gives wall times without that."
            if config.jobs > 1
            else ""
        )
    )


def unfinished_note(records: Sequence[RunRecord]) -> str | None:
    """One sentence naming the runs that did not complete, or None."""
    unfinished = [
        f"part {r.part} seed {r.seed}: {r.metrics.get('status')} ({r.run_dir})" for r in records if not r.completed
    ]
    return None if not unfinished else ("Left out of every table and answer: " + "; ".join(unfinished) + ".")


def build_document(
    records: Sequence[RunRecord], config: ExerciseConfig, figures: dict[str, Path], noise: Noise | None = None
) -> Document:
    doc = Document("Exercise 8: deep nets on CIFAR-10, measured")
    doc.paragraph(describe_run(records, config))
    note = unfinished_note(records)
    if note:
        doc.paragraph(f"**{note}**")
    doc.heading("Results")
    header, rows = table_rows(records)
    doc.table(header, rows)
    doc.paragraph(
        'Figures are mean ± sample std over seeds. "book" columns are the textbook\'s published '
        "numbers (Géron, one seed, validation accuracy), shown for reference only. s/epoch and CPU s/epoch "
        "are training only (no validation), without the first epoch, which also compiles; time to the best "
        "epoch counts whole epochs; the total includes the LR search and the evaluation. A cap-limited run "
        "had its best epoch within the patience of the epoch cap, so it may have stopped too soon. "
        "Also in `results.csv`, `results.json` and, per run, `runs.csv`."
    )
    doc.heading("Answers")
    for key, text in answers(records, noise).items():
        doc.paragraph(f"**{QUESTIONS[key]}** {text}")
    doc.paragraph(
        "Verdict rule: runs of two parts with the same seed are paired; a direction is claimed only when the "
        "95% Student-t interval of the paired differences (of log ratios, for times) excludes no difference, "
        f"and the gap is at least {100 * MIN_ACCURACY_GAP:.0f} point of accuracy ({100 * MIN_MC_GAP:.1f} for MC "
        f"Dropout) or {100 * (MIN_TIME_RATIO - 1):.0f}% of time. With one seed there is no interval: the gap is "
        "judged against the seed-to-seed noise of the same comparison, measured earlier over several seeds; "
        "without one, one seed decides nothing."
        + "".join(sorted({f" The noise levels used here were measured by {n.source}." for n in (noise or {}).values()}))
    )
    captions = {
        "curves_epoch": "Validation loss and accuracy per epoch, every part and seed.",
        "curves_time": "The same against cumulative training CPU seconds (LR search and validation excluded; "
        "the first, compiling epoch counted at the run's steady rate).",
        "lr_finder": "LR range test of each part (first seed), with the learning rate the search chose.",
        "accuracy": "Validation and test accuracy per part; black bars: the book's validation accuracy.",
        "mc_dropout": "Part e: deterministic vs MC Dropout predictions of the same trained model.",
        "mc_reliability": "Part e (first seed), test set: reliability diagram, deterministic vs MC Dropout.",
        "mc_coverage": "Part e (first seed), test set: accuracy as the most uncertain predictions are set aside first.",
    }
    doc.figures(figures, captions)
    return doc


NOISE_FILE = "noise_levels.json"


def noise_for(config: ExerciseConfig) -> Noise:
    """The noise levels one-seed verdicts are judged against (`--noise-levels`, else the shipped ones);
    none for several seeds, which have their own intervals."""
    return read_noise(config.noise_levels or STORED_NOISE) if config.seeds == 1 else {}


def write_report(records: Sequence[RunRecord], config: ExerciseConfig, noise: Noise | None = None) -> dict[str, Path]:
    """Write the tables, figures and report.md/report.html into `config.out_dir`; return their paths.

    With several seeds it also writes `noise_levels.json`, each comparison's seed-to-seed noise,
    which one-seed runs are judged against (`noise`, by default `noise_for(config)`).
    """
    out = config.out_dir
    by = by_part(records)
    results = results_json(records, config)
    files = {"json": out / "results.json", "csv": out / "results.csv", "runs_csv": out / "runs.csv"}
    if config.seeds > 1:
        source = f"dnnlab exercise --seeds {config.seeds} --seed {config.seed} into {out}"
        files["noise"] = out / NOISE_FILE
        write_json_atomic(files["noise"], noise_json(noise_levels(by, source)))
    write_json_atomic(files["json"], results)
    write_text_atomic(files["csv"], csv_text(summary_csv_rows(results)))
    write_text_atomic(files["runs_csv"], csv_text(run_csv_rows(results)))
    candidates = (
        {}
        if not by
        else {
            "curves_epoch": curves_figure(by, "epoch"),
            "curves_time": curves_figure(by, "time"),
            "lr_finder": lr_finder_figure(by),
            "accuracy": accuracy_figure(by),
            "mc_dropout": mc_figure(by["e"]) if any(r.mc is not None for r in by.get("e", [])) else None,
        }
    )
    figures = {name: save_figure(fig, out / f"{name}.png") for name, fig in candidates.items() if fig is not None}
    scored = [r for r in by.get("e", []) if r.mc is not None]
    for name in ("reliability", "coverage") if scored else ():
        path = scored[0].run_dir / MC_FIGURES[name]  # drawn by mc_dropout_report beside the run
        if path.exists():
            figures[f"mc_{name}"] = path
    noise = noise_for(config) if noise is None else noise
    md, html = build_document(records, config, figures, noise).write(out, "report")
    return {**files, **{f"figure_{name}": path for name, path in figures.items()}, "md": md, "html": html}
