"""The exercise's comparisons as per-seed numbers, and their seed-to-seed noise levels.

Each comparison pairs two parts' runs by seed and yields one number per seed: a difference
(accuracy) or a ratio (times). `dnnlab.stats.decide` judges them; with one seed it needs the
comparison's noise level, measured from a multi-seed run and stored with where it came from
(`noise_levels.json` in this package; a multi-seed `dnnlab exercise` writes a fresh one beside
its report, and `--noise` points at another).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnnlab.errors import DnnlabError
from dnnlab.exercise.records import RunRecord
from dnnlab.stats import NoiseLevel, paired_differences, paired_ratios
from dnnlab.training.history import first_epoch_at_or_below

STORED_NOISE = Path(__file__).with_name("noise_levels.json")


def by_seed(runs: Sequence[RunRecord]) -> dict[int, RunRecord]:
    return {run.seed: run for run in runs}


def common_seeds(base: Sequence[RunRecord], other: Sequence[RunRecord]) -> list[int]:
    return sorted(set(by_seed(base)) & set(by_seed(other)))


def differences(base: Sequence[RunRecord], other: Sequence[RunRecord], key: str) -> list[float]:
    """`other - base` of figure `key` per common seed (seeds where either lacks it are skipped)."""
    return paired_differences(*({seed: r.value(key) for seed, r in by_seed(runs).items()} for runs in (base, other)))


def ratios(
    base: Sequence[RunRecord],
    other: Sequence[RunRecord],
    figure: Callable[[RunRecord], float | None],
) -> list[float]:
    """`figure(other) / figure(base)` per common seed (positive figures: times; others are skipped)."""

    def positive(run: RunRecord) -> float | None:
        value = figure(run)
        return value if value is not None and value > 0 else None

    return paired_ratios(*({seed: positive(r) for seed, r in by_seed(runs).items()} for runs in (base, other)))


def mc_gains(runs: Sequence[RunRecord], split: str) -> list[float]:
    """MC Dropout accuracy minus deterministic accuracy of the same model, per seed, on `split`."""
    gains = [(r.value(f"mc_{split}_accuracy"), r.value(f"det_{split}_accuracy")) for r in runs if r.mc is not None]
    return [mc - det for mc, det in gains if mc is not None and det is not None]


@dataclass(frozen=True)
class Reach:
    """When, per seed, each arm first reached the base arm's best validation loss of that seed."""

    seeds: list[int]
    targets: list[float]  # the base's best validation loss, per seed
    base_epochs: list[int]  # the base reaches its own best at its best epoch
    other_epochs: list[int | None]  # None: never reached
    base_seconds: list[float | None]  # training CPU seconds to those epochs, compiling excluded
    other_seconds: list[float | None]

    @property
    def all_reached(self) -> bool:
        return bool(self.seeds) and all(e is not None for e in self.other_epochs)

    @property
    def reached(self) -> int:
        return sum(e is not None for e in self.other_epochs)

    def epoch_ratios(self) -> list[float]:
        return [o / b for o, b in zip(self.other_epochs, self.base_epochs) if o is not None]

    def seconds_ratios(self) -> list[float]:
        return [o / b for o, b in zip(self.other_seconds, self.base_seconds) if o and b]


def reach(base: Sequence[RunRecord], other: Sequence[RunRecord]) -> Reach:
    b, o = by_seed(base), by_seed(other)
    seeds = common_seeds(base, other)
    targets = [b[s].best_valid_loss() for s in seeds]
    base_epochs = [first_epoch_at_or_below(b[s].history["val_loss"], t) for s, t in zip(seeds, targets)]
    other_epochs = [first_epoch_at_or_below(o[s].history["val_loss"], t) for s, t in zip(seeds, targets)]
    return Reach(
        seeds=seeds,
        targets=targets,
        base_epochs=base_epochs,
        other_epochs=other_epochs,
        base_seconds=[b[s].cpu_seconds_to(e) for s, e in zip(seeds, base_epochs)],
        other_seconds=[o[s].cpu_seconds_to(e) if e is not None else None for s, e in zip(seeds, other_epochs)],
    )


def cpu_seconds_per_epoch(run: RunRecord) -> float | None:
    return run.value("train_cpu_seconds_per_epoch")


def cpu_seconds_to_best(run: RunRecord) -> float | None:
    best = run.metrics.get("best_epoch")
    return None if best is None else run.cpu_seconds_to(best)


# ---------------------------------------------------------------------------------------------
# Noise levels: the std over seeds of each comparison's per-seed number (log of it, for ratios).


def comparison_values(by: dict[str, list[RunRecord]]) -> dict[str, tuple[list[float], bool]]:
    """Every comparison the report judges, by name: its per-seed numbers and whether they are ratios."""
    found: dict[str, tuple[list[float], bool]] = {}
    for key in ("c", "d"):
        if key in by and "a" in by:
            base, other = by["a"], by[key]
            found[f"accuracy {key}-a"] = (differences(base, other, "valid_accuracy"), False)
            found[f"speed {key}-a"] = (ratios(base, other, cpu_seconds_per_epoch), True)
            found[f"convergence {key}-a"] = (reach(base, other).seconds_ratios(), True)
    if "e" in by:
        found["mc e"] = (mc_gains(by["e"], "test"), False)
    if "f" in by and "e" in by:
        found["accuracy f-e"] = (differences(by["e"], by["f"], "valid_accuracy"), False)
        found["time to best f-e"] = (ratios(by["e"], by["f"], cpu_seconds_to_best), True)
    return found


def noise_levels(by: dict[str, list[RunRecord]], source: str) -> dict[str, NoiseLevel]:
    """The std of every comparison with at least two seeds (of log ratios for times)."""
    levels = {}
    for name, (values, is_ratio) in comparison_values(by).items():
        values = np.log(values) if is_ratio else np.asarray(values, dtype=float)
        if len(values) >= 2 and np.all(np.isfinite(values)):
            levels[name] = NoiseLevel(std=float(np.std(values, ddof=1)), n=len(values), source=source)
    return levels


def noise_json(levels: dict[str, NoiseLevel]) -> dict:
    return {name: {"std": n.std, "n": n.n, "source": n.source} for name, n in levels.items()}


def read_noise(path: str | Path = STORED_NOISE) -> dict[str, NoiseLevel]:
    """Noise levels saved by `noise_json`; a one-line error for a file that is not one."""
    try:
        raw = json.loads(Path(path).read_text())
        return {name: NoiseLevel(float(v["std"]), int(v["n"]), str(v["source"])) for name, v in raw.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DnnlabError(
            f"cannot read noise levels from {path} ({exc}); pass a noise_levels.json that "
            "dnnlab exercise --seeds 3 wrote"
        ) from None
