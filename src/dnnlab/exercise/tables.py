"""The report's results table, and the same figures as `results.json`, `results.csv` and `runs.csv`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from dnnlab.exercise.config import EXERCISE_PARTS, TEXTBOOK_MC_VALID_ACCURACY, ExerciseConfig
from dnnlab.exercise.records import COLUMNS, RunRecord, by_part, format_stat, stat


def table_rows(records: Sequence[RunRecord]) -> tuple[list[str], list[list[str]]]:
    """The report's results table: one row per part, mean ± std over seeds, the book beside ours."""
    header = [
        "part",
        "seeds",
        "book LR",
        *[c.header for c in COLUMNS[:4]],
        "book valid acc %",
        *[c.header for c in COLUMNS[4:]],
        "cap-limited",
    ]
    rows = []
    for key, runs in by_part(records).items():
        part = EXERCISE_PARTS[key]
        cells = [format_stat(stat(runs, c.key), c.kind) for c in COLUMNS]
        book = f"{100 * part.textbook_valid_accuracy:.1f}"
        if key == "e":
            book += f" (MC {100 * TEXTBOOK_MC_VALID_ACCURACY:.1f})"
        limited = sum(r.cap_limited for r in runs)
        cells.append(f"{limited} of {len(runs)}" if limited else "no")
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
        parts.append(
            {
                "part": key,
                "variant": part.variant,
                "title": part.title,
                "textbook_lr": part.textbook_lr,
                "textbook_valid_accuracy": part.textbook_valid_accuracy,
                "textbook_mc_valid_accuracy": TEXTBOOK_MC_VALID_ACCURACY if key == "e" else None,
                "runs": [
                    {
                        "seed": r.seed,
                        "run_dir": str(r.run_dir),
                        "cap_limited": r.cap_limited,
                        **{c.key: r.value(c.key) for c in COLUMNS if r.value(c.key) is not None},
                    }
                    for r in runs
                ],
                "summary": summary,
                "cap_limited_runs": sum(r.cap_limited for r in runs),
            }
        )
    return {"exercise": None if config is None else dataclasses.asdict(config), "parts": parts}


def summary_csv_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """`results.csv`: one row per part with `<figure>_mean` and `<figure>_std` columns."""
    rows = []
    for part in results["parts"]:
        row: dict[str, Any] = {
            "part": part["part"],
            "variant": part["variant"],
            "seeds": len(part["runs"]),
            "textbook_lr": part["textbook_lr"],
            "textbook_valid_accuracy": part["textbook_valid_accuracy"],
            "cap_limited_runs": part["cap_limited_runs"],
        }
        for column in COLUMNS:
            value = part["summary"].get(column.key)
            row[f"{column.key}_mean"] = "" if value is None else value["mean"]
            row[f"{column.key}_std"] = "" if value is None or value["std"] is None else value["std"]
        rows.append(row)
    return rows


def run_csv_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """`runs.csv`: one row per part and seed, the run folder's own numbers."""
    return [
        {"part": part["part"], "variant": part["variant"], **run} for part in results["parts"] for run in part["runs"]
    ]
