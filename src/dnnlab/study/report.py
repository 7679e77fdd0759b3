"""The study's report: the measurements per option, the book's ratings beside the measured ranks, one
sentence per option on their agreement, and the figures; as report.md, report.html, results.csv
(one row per option) and cells.csv (one row per cell), in `<out>/study/<study>/`.

Everything is read from the study's storage (`results.cell_results`), so `dnnlab study-report`
rebuilds it on any machine, at any time; an unfinished study gets a report of what has finished.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from dnnlab.config import BUDGET_MAX_EPOCHS, BUDGET_PATIENCE
from dnnlab.files import write_text_atomic
from dnnlab.report.document import Document
from dnnlab.report.figures import save_figure
from dnnlab.report.tables import csv_text
from dnnlab.stats import Interval, mean_interval
from dnnlab.study.book import OPTIMIZER_SOURCE, SCHEDULE_SOURCE
from dnnlab.study.config import StudyConfig
from dnnlab.study.figures import curves_figure, range_tests_figure, schedules_figure
from dnnlab.study.lr import range_tests
from dnnlab.study.options import CATALOGUES, OPTIMIZERS, reference, title
from dnnlab.study.results import OptionResults, by_option, cell_results, common_target, identical_options
from dnnlab.study.verdicts import QUALITY_SAME, SPEED_SAME, Row, rows

TITLES = {
    "optimizers": "Optimizers on CIFAR-10, measured",
    "schedules": "Learning-rate schedules on CIFAR-10, measured",
}


def shown(interval: Interval | None, scale: float = 1.0, digits: int = 1) -> str:
    """`mean (low-high)` with the 95% interval; just the mean for one seed; a dash for none."""
    if interval is None:
        return "—"
    mean = f"{scale * interval.mean:.{digits}f}"
    return mean if interval.n == 1 else f"{mean} ({scale * interval.low:.{digits}f}–{scale * interval.high:.{digits}f})"


def _interval(values: list[float]) -> Interval | None:
    return mean_interval(values) if values else None


def option_figures(option: OptionResults, target: float | None, seeds: int) -> dict[str, Any]:
    """One option's figures over its completed seeds: the numbers behind a table row and a CSV row."""
    hits = [hit for hit in option.to_target(target).values() if hit is not None]
    return {
        "lr": option.lrs(),
        "cells": len(option.cells),
        "seeds": seeds,
        "diverged": len(option.failed),
        "reached_target": len(hits),
        "epochs_to_target": _interval([float(epochs) for epochs, _ in hits]),
        "seconds_to_target": _interval([seconds for _, seconds in hits if seconds is not None]),
        "best_epoch": option.interval("best_epoch"),
        "epochs_run": option.interval("epochs_run"),
        "valid_accuracy": option.interval("valid_accuracy"),
        "valid_loss": option.interval("valid_loss"),
        "cap_limited": sum(c.cap_limited for c in option.cells),
    }


def describe_option(kind: str, name: str) -> str:
    if kind == "optimizers":
        return OPTIMIZERS[name].keras
    return CATALOGUES["schedules"][name].form


def measurement_table(config: StudyConfig, options: dict[str, OptionResults], target: float | None):
    header = [
        "option",
        "Keras" if config.kind == "optimizers" else "form",
        "LR" if config.kind == "optimizers" else "lr0 (1cycle: peak)",
        "cells",
        "reached target",
        "epochs to target",
        "CPU s to target",
        "best epoch",
        "epochs run",
        "valid acc %",
        "valid loss",
    ]
    table = []
    for name, option in options.items():
        f = option_figures(option, target, len(config.seed_list))
        notes = [f"{f[key]} {key.replace('_', '-')}" for key in ("diverged", "cap_limited") if f[key]]
        cells = f"{f['cells']}/{f['seeds']}" + (f" ({', '.join(notes)})" if notes else "")
        table.append(
            [
                title(config.kind, name),
                f"`{describe_option(config.kind, name)}`",
                " / ".join(f"{lr:.2g}" for lr in f["lr"]) or "—",
                cells,
                f"{f['reached_target']}/{f['cells']}",
                shown(f["epochs_to_target"]),
                shown(f["seconds_to_target"]),
                shown(f["best_epoch"]),
                shown(f["epochs_run"]),
                shown(f["valid_accuracy"], 100.0),
                shown(f["valid_loss"], digits=3),
            ]
        )
    return header, table


def book_table(kind: str, table_rows: list[Row]):
    header = [
        "option",
        "book: speed",
        "measured speed rank",
        "book: quality",
        "measured quality rank",
        "the book and us",
    ]
    rank = lambda r: "—" if r is None else str(r)  # noqa: E731
    return header, [
        [r.title, r.book_speed, rank(r.speed_rank), r.book_quality, rank(r.quality_rank), r.verdict] for r in table_rows
    ]


def csv_rows(config: StudyConfig, options: dict[str, OptionResults], target: float | None, table_rows: list[Row]):
    """results.csv: one row per option with every figure's mean and interval, ranks and verdict."""
    out = []
    for row in table_rows:
        f = option_figures(options[row.name], target, len(config.seed_list))
        line: dict[str, Any] = {"option": row.name, "lr": " ".join(f"{lr:.6g}" for lr in f["lr"]), "target": target}
        for key in ("cells", "diverged", "reached_target", "cap_limited"):
            line[key] = f[key]
        for key in (
            "epochs_to_target",
            "seconds_to_target",
            "best_epoch",
            "epochs_run",
            "valid_accuracy",
            "valid_loss",
        ):
            interval = f[key]
            line[f"{key}_mean"] = "" if interval is None else interval.mean
            line[f"{key}_low"] = "" if interval is None or interval.n < 2 else interval.low
            line[f"{key}_high"] = "" if interval is None or interval.n < 2 else interval.high
        line.update(
            book_speed=row.book_speed,
            speed_rank=row.speed_rank,
            book_quality=row.book_quality,
            quality_rank=row.quality_rank,
            verdict=row.verdict,
        )
        out.append(line)
    return out


def cell_csv_rows(options: dict[str, OptionResults], target: float | None) -> list[dict[str, Any]]:
    """cells.csv: one row per cell, as its trial recorded it."""
    out = []
    for option in options.values():
        for cell in sorted([*option.cells, *option.failed], key=lambda c: c.seed):
            hit = cell.to_target(target) if target is not None else None
            out.append(
                {
                    "option": cell.option,
                    "seed": cell.seed,
                    "trial": cell.trial,
                    "worker": cell.worker,
                    "lr": cell.lr,
                    "status": cell.status,
                    "best_epoch": cell.best_epoch,
                    "epochs_run": cell.epochs_run,
                    "valid_accuracy": cell.valid_accuracy,
                    "valid_loss": cell.valid_loss,
                    "cap_limited": cell.cap_limited,
                    "epochs_to_target": "" if hit is None else hit[0],
                    "seconds_to_target": "" if hit is None else hit[1],
                    "training_cpu_seconds": cell.cpu_seconds_to(cell.epochs_run),
                }
            )
    return out


def study_span(study: optuna.Study) -> tuple[float | None, int]:
    """Seconds from the first cell's start to the last cell's end, and how many worker processes finished cells."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if "option" in t.user_attrs]
    if not done:
        return None, 0
    span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    return span.total_seconds(), len({t.user_attrs.get("worker") for t in done})


def describe(config: StudyConfig, options: dict[str, OptionResults], study: optuna.Study) -> str:
    cells = [c for o in options.values() for c in [*o.cells, *o.failed]]
    sizes = sorted({c.train_size for c in cells if c.train_size})
    total = len(config.names) * len(config.seed_list)
    seconds, workers = study_span(study)
    one_cycle = (
        f" 1cycle runs its whole cycle of {min(config.one_cycle_epochs, config.max_epochs)} epochs (early stopping "
        "would cut the cycle short) and keeps its best epoch."
        if config.kind == "schedules" and "1cycle" in config.names
        else ""
    )
    driver = f" All schedules drive {OPTIMIZERS[config.optimizer].keras}." if config.kind == "schedules" else ""
    lr_rule = (
        f"Each optimizer's LR comes from its LR range test (first seed, {config.rule} rule)"
        if config.kind == "optimizers"
        else f"lr0 comes from the LR range test of the optimizer (first seed, {config.rule} rule); 1cycle peaks at "
        "the range test's turning point (the LR of the lowest loss), as the exercise's part f does"
    )
    budget = (
        f"at most {config.max_epochs} epochs (--quick: not comparable with the book)"
        if config.quick
        else f"patience {BUDGET_PATIENCE}, at most {BUDGET_MAX_EPOCHS} epochs"
    )
    wall = (
        ""
        if seconds is None
        else f" Study wall time: {seconds / 60:.1f} min (first cell's start to last cell's end), "
        f"{workers} worker process(es)."
    )
    return (
        f"{len(config.names)} options × {len(config.seed_list)} seed(s) "
        f"({', '.join(map(str, config.seed_list))}) of the exercise's {config.depth}×{config.width} ELU + He-init "
        f"net, batch {config.batch_size}, on "
        f"{'/'.join(map(str, sizes)) or '?'} CIFAR-10 training images: {len(cells)} of {total} cells finished."
        f"{driver} {lr_rule}. Every cell: early stopping on validation loss ({budget}), best weights restored."
        f"{one_cycle}{wall}"
    )


def build_document(config, options, target, table_rows, study, figures) -> Document:
    kind = config.kind
    doc = Document(TITLES[kind])
    doc.paragraph(describe(config, options, study))
    doc.heading("Measurements")
    doc.table(*measurement_table(config, options, target))
    doc.paragraph(
        "Mean over seeds with its 95% Student-t interval in brackets (one seed: the value alone), unclipped: "
        "from two or three seeds it can reach values no run can have, such as fewer than 0 epochs or more than "
        "the cap, which says how little those seeds pin the mean down. Common target: "
        f"validation loss {'—' if target is None else f'{target:.3f}'}, the worst of the options' mean best "
        "validation losses; epochs and seconds to it are counted over the seeds that reached it. Seconds are "
        "training CPU seconds (`train_cpu_time` in history.csv: no validation, and the first, compiling epoch "
        "counted at the run's steady rate), which barely change when workers share the cores; speed is judged in "
        "epochs. Accuracy and loss are those of the best epoch (lowest validation loss). Also in `results.csv` "
        "and, per cell, `cells.csv`."
    )
    doc.heading("The book beside the measurements")
    doc.table(*book_table(kind, table_rows))
    source = OPTIMIZER_SOURCE if kind == "optimizers" else SCHEDULE_SOURCE
    doc.paragraph(
        f"Book: {source}. Each row is compared with {title(kind, reference(kind, tuple(options)))}"
        + (" (the book's stars become the expected direction against it)" if kind == "optimizers" else "")
        + ", on the seeds both ran, with the exercise's paired statistics: a direction only when the 95% interval "
        f"of the per-seed differences excludes none and the gap is at least {100 * QUALITY_SAME:.0f} point of "
        f'validation accuracy (quality) or {SPEED_SAME:g}× in epochs to the target (speed); "the same" when the '
        "whole interval lies within that; otherwise not distinguishable. Speed is compared only where every seed "
        "reached the target. Rank = 1 + the number of options measured better on that aspect (options nothing "
        "separates share a rank; — : not measured)."
    )
    doc.bullets([r.sentence for r in table_rows])
    for first, second, seeds in identical_options(options):
        doc.paragraph(
            f"{title(kind, second)} and {title(kind, first)} trained identically: in each of their {seeds} seed(s) the "
            "validation loss of every epoch is the same to the last digit, so what tells them apart changed no "
            "float32 result on this net at these learning rates."
        )
    captions = {
        "curves_epoch": "Validation loss and accuracy per epoch, every cell; dotted: the common target.",
        "curves_time": "The same against training CPU seconds (compiling excluded).",
        "lr_range_tests": "The LR range test of each optimizer, with the LR the rule picked.",
        "schedules": "Each schedule's learning rate over the epochs it ran (first seed), as its optimizer computed it.",
    }
    doc.figures(figures, captions)
    return doc


def write_report(study: optuna.Study, config: StudyConfig) -> dict[str, Path]:
    """Write report.md/.html, results.csv, cells.csv and the figures into `config.folder`; return the paths."""
    folder = config.folder
    options = by_option(cell_results(study), config.names)
    target = common_target(options)
    table_rows = rows(config.kind, options, target)
    files = {"csv": folder / "results.csv", "cells_csv": folder / "cells.csv"}
    write_text_atomic(files["csv"], csv_text(csv_rows(config, options, target, table_rows)))
    write_text_atomic(files["cells_csv"], csv_text(cell_csv_rows(options, target)))
    tests = range_tests(study)
    candidates = {
        "curves_epoch": curves_figure(config.kind, options, target, "epoch"),
        "curves_time": curves_figure(config.kind, options, target, "time"),
        "lr_range_tests": range_tests_figure(tests, one_cycle=config.kind == "schedules" and "1cycle" in config.names),
        "schedules": schedules_figure(options, config.batch_size) if config.kind == "schedules" else None,
    }
    figures = {name: save_figure(fig, folder / f"{name}.png") for name, fig in candidates.items() if fig is not None}
    md, html = build_document(config, options, target, table_rows, study, figures).write(folder, "report")
    return {**files, **{f"figure_{name}": path for name, path in figures.items()}, "md": md, "html": html}
