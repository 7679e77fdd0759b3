"""Replay recorded validation-loss curves against finished studies under other pruning rules.

For each study, rule (percentile, warm-up epochs) and curve, prints the epoch at which Optuna's
PercentilePruner would have stopped that curve, judged against the study's COMPLETE trials, or
"-" if it would have kept it to the end. The curves are `history.csv` files of real runs (for
example the `--lr auto` runs of `dnnlab exercise --seeds 3`), and each study's best trial is
also replayed against the study's other completed trials. A replay on recorded curves, not a
run: the pruner sees all completed trials here, not only those finished earlier.

    .venv/bin/python benchmarks/prune_replay.py --study bn=sqlite:///runs/search/optuna.db \\
        --curve runs/exercise/c-bn/seed-42/history.csv
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import optuna


def pruned_at(curve: list[float], others: list[list[float]], percentile: float, warmup: int) -> int | None:
    """The 1-based epoch at which the rule stops `curve`, or None.

    As Optuna's PercentilePruner (minimizing): at step e >= warmup, the curve's best value so far
    against the percentile of the other trials' values at step e.
    """
    best = np.inf
    for step, value in enumerate(curve):
        best = min(best, value)
        at_step = [other[step] for other in others if len(other) > step]
        if step >= warmup and at_step and best > np.percentile(at_step, percentile):
            return step + 1
    return None


def completed_curves(storage: str, name: str) -> dict[int, list[float]]:
    study = optuna.load_study(study_name=name, storage=storage)
    return {
        t.number: [t.intermediate_values[k] for k in sorted(t.intermediate_values)]
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    }


def history_curve(path: Path) -> list[float]:
    with path.open() as f:
        return [float(row["val_loss"]) for row in csv.DictReader(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", action="append", required=True, metavar="NAME=STORAGE_URL")
    parser.add_argument("--curve", action="append", default=[], type=Path, metavar="HISTORY_CSV")
    parser.add_argument("--percentiles", default="50,75,90")
    parser.add_argument("--warmups", default="3,6,9,12")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies = {}
    for i, spec in enumerate(args.study, 1):
        name, _, url = spec.partition("=")
        studies[f"S{i}"] = completed_curves(url, name)
        print(f"S{i}: study {name!r} in {url}, {len(studies[f'S{i}'])} complete trials")
    curves = {f"C{i}": history_curve(path) for i, path in enumerate(args.curve, 1)}
    for label, path in zip(curves, args.curve):
        print(f"{label}: {path}")
    print("| study | percentile | warm-up epochs | " + " | ".join(curves) + " | study's best trial |")
    print("|---|---|---|" + "---|" * (len(curves) + 1))
    for name, completed in studies.items():
        best_number = min(completed, key=lambda n: min(completed[n]))
        for percentile in map(float, args.percentiles.split(",")):
            for warmup in map(int, args.warmups.split(",")):
                cells = [pruned_at(curve, list(completed.values()), percentile, warmup) for curve in curves.values()]
                others = [c for n, c in completed.items() if n != best_number]
                cells.append(pruned_at(completed[best_number], others, percentile, warmup))
                shown = " | ".join("-" if cell is None else str(cell) for cell in cells)
                print(f"| {name} | {percentile:g} | {warmup} | {shown} |")


if __name__ == "__main__":
    main()
