"""`run_exercise(config) -> ExerciseResult`: exercise 8 (a-f) end to end, then its report.

Each part is a model (from a variant preset) plus its training budget (`EXERCISE_PARTS`),
turned into one `RunConfig` per seed and trained with `dnnlab.training.train.train`. Finished run
folders (status completed or diverged, same config) are reused and an interrupted one
resumes, so a rerun only trains what is missing. Part e then scores MC Dropout on the trained model, without retraining.
The test set is only ever evaluated: LR search, early stopping and every verdict use validation.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from dnnlab import log as logs
from dnnlab.config import DataConfig, LRSearchConfig, RunConfig
from dnnlab.data import Splits, load_data
from dnnlab.errors import writing
from dnnlab.exercise.config import EXERCISE_PARTS, ExerciseConfig
from dnnlab.exercise.records import RunRecord
from dnnlab.exercise.report import noise_for, write_report
from dnnlab.exercise.tables import table_rows
from dnnlab.report.document import html_table
from dnnlab.training.parallel_runs import Job, train_in_parallel
from dnnlab.training.run_dir import COMPLETED, INTERRUPTED, RunDir
from dnnlab.training.train import train
from dnnlab.uncertainty.report import REPORT_FILE as MC_REPORT_FILE
from dnnlab.uncertainty.report import mc_dropout_report

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedRun:
    part: str  # exercise part key: a, c, d, e, f
    seed_index: int  # 0-based position among the seeds, for progress lines
    config: RunConfig


@dataclass
class ExerciseResult:
    records: list[RunRecord]
    report_files: dict[str, Path]  # empty when the exercise was stopped before the report
    stopped_by: str | None = None  # the signal (e.g. "SIGINT") that interrupted a run, if one did

    def _repr_html_(self) -> str:
        """Jupyter shows the results table (mean ± std over seeds), as the report does, and where the report is."""
        if self.stopped_by is not None:
            note = f"Interrupted ({html.escape(self.stopped_by)}); run the same call again to resume."
        else:
            note = f"Report: <code>{html.escape(str(self.report_files['html']))}</code>" if self.report_files else ""
        return html_table(*table_rows(self.records)) + f"<p>{note}</p>"


class Progress:
    """One log line per phase: which part, seed and phase is running, and the time since the start.

    Keras's epoch bar (or one line per epoch in a log) follows under it.
    """

    def __init__(self, seeds: int, clock: Callable[[], float] = time.perf_counter):
        self.seeds = seeds
        self.clock = clock
        self.start = clock()

    def elapsed(self) -> str:
        seconds = int(self.clock() - self.start)
        return f"{seconds // 60:d}:{seconds % 60:02d}"

    def label(self, part: str, seed_index: int | None = None) -> str:
        where = f"part {part} ({EXERCISE_PARTS[part].name})"
        return where if seed_index is None else f"{where}, seed {seed_index + 1}/{self.seeds}"

    def line(self, message: str, part: str | None = None, seed_index: int | None = None) -> str:
        where = "" if part is None else f"{self.label(part, seed_index)}: "
        return f"[exercise {self.elapsed()}] {where}{message}"

    def __call__(self, message: str, part: str | None = None, seed_index: int | None = None) -> None:
        log.info(self.line(message, part, seed_index), extra=logs.PLAIN)


def part_lr(config: ExerciseConfig, part: str) -> float | str:
    if config.lr == "auto":
        return "auto"
    return EXERCISE_PARTS[part].textbook_lr if config.lr == "textbook" else config.lr


def part_config(config: ExerciseConfig, part: str, seed: int) -> RunConfig:
    """The run config of one part and seed: the part's model and training budget."""
    preset = EXERCISE_PARTS[part]
    train_config = dataclasses.replace(preset.train, lr=part_lr(config, part), seed=seed)
    data, search = DataConfig(data_dir=config.data_dir), LRSearchConfig()
    if config.quick:
        data = dataclasses.replace(data, subset=config.quick_subset)
        train_config = dataclasses.replace(train_config, epochs=min(train_config.epochs, config.quick_epochs))
        search = dataclasses.replace(search, finder_steps=config.quick_finder_steps)
    return RunConfig(
        variant=preset.variant,
        name=f"seed-{seed}",
        out=str(config.out_dir / f"{part}-{preset.name}"),
        tensorboard=config.tensorboard,
        data=data,
        model=preset.model,
        train=train_config,
        lr_search=search,
    )


def plan_runs(config: ExerciseConfig) -> list[PlannedRun]:
    return [
        PlannedRun(part, i, part_config(config, part, config.seed + i))
        for part in config.part_keys
        for i in range(config.seeds)
    ]


def finished_status(config: RunConfig) -> str | None:
    """`completed` or `diverged` when the run's folder holds a finished run of this config, else None."""
    return RunDir(config.run_dir).finished_status(config)


def score_mc_dropout(
    run: RunConfig,
    samples: int,
    splits: Splits,
    model: keras.Model | None,
) -> dict[str, Any]:
    """Part e: deterministic vs MC Dropout on validation and test, by `mc_dropout_report`.

    The same function as `dnnlab mc-dropout` (dropout-only sampling, BN kept in inference
    mode); it writes mc_dropout.json and its figures (of the test set, which judges it) into the run folder.
    """
    return mc_dropout_report(
        run.run_dir, split="test", samples=samples, seed=run.train.seed, splits=splits, model=model
    )


def load_mc(config: RunConfig, samples: int) -> dict[str, Any] | None:
    """The run's saved MC Dropout report if it used `samples` samples and the run's seed, else None."""
    saved = RunDir(config.run_dir).read_json(MC_REPORT_FILE)
    if not isinstance(saved, dict):
        return None
    return saved if (saved.get("samples"), saved.get("seed")) == (samples, config.train.seed) else None


def phase(run: RunConfig) -> str:
    return "LR search, then training" if run.train.lr == "auto" else f"training (lr={run.train.lr:g})"


def train_apart(
    items: list[PlannedRun], config: ExerciseConfig, splits: Splits, progress: Progress, verbose: int | None
) -> str | None:
    """Train `items` `config.jobs` at a time, each in its own process; the stopping signal, if any."""
    progress(
        f"training {len(items)} runs, {config.jobs} at a time in their own processes "
        f"(their output is labelled; --jobs 1 trains one after another)"
    )
    jobs = [Job(progress.label(item.part, item.seed_index), item.config) for item in items]

    def done(job: Job, exit_code: int) -> None:
        metrics = RunDir(job.config.run_dir).metrics()
        if metrics is None:
            progress(f"{job.label}: stopped before its first epoch (exit {exit_code})")
            return
        best = f"best epoch {metrics.get('best_epoch')}/{metrics.get('epochs_run')}"
        accuracy = metrics.get("valid_accuracy")
        shown = f", valid acc {accuracy:.2%}" if isinstance(accuracy, float) else ""
        progress(f"{job.label}: {metrics.get('status')}, {best}{shown}; files in {job.config.run_dir}")

    with writing(config.out_dir):
        config.out_dir.mkdir(parents=True, exist_ok=True)
    return train_in_parallel(
        jobs,
        splits,
        config.jobs,
        config.out_dir,
        on_start=lambda job: progress(f"{job.label}: {phase(job.config)}"),
        on_done=done,
        verbose=verbose,
    )


def run_exercise(
    config: ExerciseConfig,
    splits: Splits | None = None,
    progress: Progress | None = None,
    verbose: int | None = None,
) -> ExerciseResult:
    """Train (or reuse) every planned run, score MC Dropout for part e, write the report.

    A run interrupted by Ctrl-C ends the exercise before the report (`stopped_by` says so);
    the same call again resumes it. A diverged run is reported as such and left out of the tables.

    Args:
        config: which parts and seeds, the LR policy and where to write.
        splits: prepared data; loaded once from `config` when some run needs it (tests inject synthetic data).
        progress: the progress lines (to the `dnnlab` logger); tests pass one with a scripted clock.
        verbose: Keras's verbosity for training (None: a bar on a terminal, a line per epoch in logs).
    """
    progress = progress or Progress(config.seeds)
    plan = plan_runs(config)
    noise = noise_for(config)  # read now: a bad --noise-levels should fail before hours of training

    def get_splits() -> Splits:
        nonlocal splits
        if splits is None:  # only when some run needs data, and once: every run reads the same data
            progress(f"loading CIFAR-10{' (quick subset)' if config.quick else ''}")
            splits = load_data(plan[0].config.data)
        return splits

    to_train = [item for item in plan if finished_status(item.config) is None] if config.jobs > 1 else []
    trained_apart: set[Path] = set()
    if len(to_train) > 1:
        stopped = train_apart(to_train, config, get_splits(), progress, verbose)
        if stopped is not None:
            progress("interrupted; run the same command again to resume (finished runs are reused)")
            return ExerciseResult([], {}, stopped_by=stopped)
        trained_apart = {item.config.run_dir for item in to_train}

    records = []
    for item in plan:
        run = item.config
        model = None
        status = finished_status(run)
        if status is not None:
            if run.run_dir not in trained_apart:
                progress(f"reusing the {status} run in {run.run_dir}", item.part, item.seed_index)
        else:
            data = get_splits()  # loaded before the phase line, so that line heads the epoch output
            progress(phase(run), item.part, item.seed_index)
            result = train(run, data, verbose=verbose)
            if result.status == INTERRUPTED:
                progress(
                    "interrupted; run the same command again to resume (finished runs are reused)",
                    item.part,
                    item.seed_index,
                )
                return ExerciseResult(records, {}, stopped_by=result.metrics.get("signal") or "SIGINT")
            if result.status != COMPLETED:
                progress(
                    f"the run ended {result.status}; it is left out of the tables ({run.run_dir})",
                    item.part,
                    item.seed_index,
                )
            model = result.model
        folder = RunDir(run.run_dir)
        metrics = folder.metrics()
        mc = None
        if item.part == "e" and metrics.get("status") == COMPLETED:
            mc = load_mc(run, config.mc_samples)
            if mc is None:
                progress(f"MC Dropout ({config.mc_samples} samples)", item.part, item.seed_index)
                mc = score_mc_dropout(run, config.mc_samples, get_splits(), model)
        # Everything reported is read back from the run folder, so the tables equal the files.
        records.append(
            RunRecord(
                part=item.part,
                seed=run.train.seed,
                run_dir=run.run_dir,
                metrics=metrics,
                history=folder.history(),
                train=run.train,
                mc=mc,
            )
        )
    progress(f"writing the report into {config.out_dir}")
    files = write_report(records, config, noise)
    progress(f"done: {files['html']}")
    return ExerciseResult(records=records, report_files=files)
