"""`dnnlab`: a thin command-line layer over the library's functions.

Every user-fixable problem is a `DnnlabError`; it is printed as one line and exits with 2.
A run stopped by Ctrl-C (or SIGTERM) exits with 128 + the signal number (130 for Ctrl-C),
without a traceback, after saying how to resume it. The library's progress arrives through
the `dnnlab` logger, which `main` shows on stdout (warnings on stderr).

Each command imports its library module when it runs, not at start-up: Keras and the backend
take seconds to import, and `--help` or a bad flag should answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import signal
import sys
import typing

import dnnlab  # noqa: F401  (sets the default Keras backend before anything imports keras)
from dnnlab import log as logs
from dnnlab.cli.flags import add_config_arguments, add_dataclass_arguments, config_from_args, given_fields, text_value
from dnnlab.errors import ERROR_PREFIX, INTERRUPTED_EXIT, USAGE_ERROR, DnnlabError, StorageError, is_storage_failure
from dnnlab.exercise.config import ExerciseConfig
from dnnlab.search.config import SearchConfig, WorkerOptions
from dnnlab.study.config import STUDY_DIR, OptimizerStudyConfig, ScheduleStudyConfig


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag prints one line (not the whole usage) and exits with 2."""

    def error(self, message: str) -> typing.NoReturn:
        raise DnnlabError(f"{self.prog}: {message} (see {self.prog} --help)")


def resume_hint(args: argparse.Namespace) -> str:
    return f"to resume, run the same command again: {shlex.join(['dnnlab', *args.argv])}"


def cmd_train(args: argparse.Namespace) -> int:
    from dnnlab.training.run_dir import DIVERGED, INTERRUPTED
    from dnnlab.training.stops import divergence_message
    from dnnlab.training.train import train

    config = config_from_args(args)
    print(f"dnnlab: training {config.variant} (lr={config.lr}) into {config.run_dir}", flush=True)
    if config.tensorboard:
        print(f"dnnlab: watch it live: tensorboard --logdir {config.run_dir}", flush=True)
    result = train(config)
    m = result.metrics
    if result.status == DIVERGED:
        raise DnnlabError(divergence_message(m["stopped_in_epoch"], m["lr"]))
    if result.status == INTERRUPTED:
        print(
            f"dnnlab: interrupted in epoch {m['stopped_in_epoch']}; the {m['epochs_run']} completed epochs, "
            f"their history and the best model are kept in {result.run_dir}",
            file=sys.stderr,
        )
        print(f"dnnlab: {resume_hint(args)}", file=sys.stderr)
        return 128 + signal.Signals[m["signal"]]
    print(
        f"dnnlab: best epoch {m['best_epoch']}/{m['epochs_run']}: "
        f"valid acc {m['valid_accuracy']:.4f} loss {m['valid_loss']:.4f}, "
        f"test acc {m['test_accuracy']:.4f} loss {m['test_loss']:.4f}, "
        + (f"{m['train_seconds_per_epoch']:.2f} s per training epoch; " if m.get("train_seconds_per_epoch") else "")
        + f"files in {result.run_dir}"
    )
    return 0


def cmd_exercise(args: argparse.Namespace) -> int:
    from dnnlab.exercise.run import run_exercise

    config = ExerciseConfig(**given_fields(ExerciseConfig, args))
    if config.tensorboard:
        print(f"dnnlab: watch every run live: tensorboard --logdir {config.out_dir}", flush=True)
    result = run_exercise(config)
    if result.stopped_by is not None:
        print(f"dnnlab: exercise interrupted; {resume_hint(args)}", file=sys.stderr)
        return 128 + signal.Signals[result.stopped_by]
    print(
        f"dnnlab: report in {result.report_files['html']} and {result.report_files['md']}; "
        f"table in {result.report_files['csv']}"
    )
    return 0


def cmd_mc_dropout(args: argparse.Namespace) -> int:
    from dnnlab.uncertainty.report import FIGURES, REPORT_FILE, format_comparison, mc_dropout_report

    report = mc_dropout_report(
        args.run_dir, split=args.split, samples=args.samples, seed=args.seed, data_dir=args.data_dir
    )
    print(format_comparison(report))
    files = ", ".join([REPORT_FILE, *FIGURES.values()])
    print(f"dnnlab: figures show {args.split}; wrote {files} into {args.run_dir}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from dnnlab.search.run import run_search

    config = config_from_args(args)
    outcome = run_search(config, SearchConfig(**given_fields(SearchConfig, args)))
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(outcome.counts.items()))
    print(
        f"dnnlab: study {outcome.study_name!r} in {outcome.storage}: {counts} "
        f"({outcome.wall_seconds:.0f} s in this worker)"
    )
    if outcome.best is not None:
        best = outcome.best
        print(
            f"dnnlab: best so far: trial {best.number}, val_loss {best.value:.4f}, "
            f"val_acc {best.user_attrs.get('valid_accuracy', float('nan')):.4f}, params {best.params}"
        )
    print(
        f"dnnlab: details and best.json: dnnlab search-report --study {outcome.study_name} "
        f"--storage '{outcome.storage}' --out {config.out}"
    )
    return 0


def cmd_search_report(args: argparse.Namespace) -> int:
    from dnnlab.search.report import search_report
    from dnnlab.search.storage import default_storage_url

    report = search_report(args.study, args.storage or default_storage_url(args.out), args.out, args.top)
    print(report.text())
    return 0


def study_report_line(files: dict) -> str:
    return f"dnnlab: report in {files['html']} and {files['md']}; tables in {files['csv']} and {files['cells_csv']}"


def cmd_study(args: argparse.Namespace) -> int:
    from dnnlab.study.run import run_study

    config = args.study_class(**given_fields(args.study_class, args))
    outcome = run_study(config)
    print(
        f"dnnlab: study {outcome.study_name!r} in {outcome.storage}: {outcome.cells_done} of {outcome.cells} cells "
        f"finished ({outcome.wall_seconds:.0f} s in this worker)"
    )
    if outcome.report_files:
        print(study_report_line(outcome.report_files))
    else:
        print(
            f"dnnlab: the report is written when every cell has finished; for what has finished so far: dnnlab "
            f"study-report --study {outcome.study_name} --storage '{outcome.storage}' --out {config.out}"
        )
    return 0


def cmd_study_report(args: argparse.Namespace) -> int:
    from dnnlab.search.storage import default_storage_url
    from dnnlab.study.run import study_report

    files = study_report(args.study, args.storage or default_storage_url(args.out, STUDY_DIR), args.out)
    print(study_report_line(files))
    return 0


def cmd_answers(args: argparse.Namespace) -> int:
    from dnnlab.answers.runner import parse_questions, run_answers

    run_answers(parse_questions(args.questions), args.quick, args.out, args.data_dir)
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    from dnnlab.data import load_data
    from dnnlab.lr.finder import CSV_FILE, PLOT_FILE, lr_find

    config = config_from_args(args)
    result = lr_find(config, load_data(config.data), config.run_dir)
    print(
        f"dnnlab: suggested lr {result.suggestion:.3g} ({result.rule} rule); curve in "
        f"{config.run_dir / CSV_FILE}, plot in {config.run_dir / PLOT_FILE}"
    )
    return 0


def add_study_commands(commands) -> None:
    """`dnnlab study optimizers|schedules` and `dnnlab study-report`."""
    study_parser = commands.add_parser(
        "study",
        help="the chapter's optimizer table or LR-schedule claims, measured over seeds; workers share one --storage",
        description="Train every option with every seed (one cell each) on the exercise's net and compare them "
        "with the book. Every worker (process or machine) started with the same --study and --storage fills the "
        "same grid of cells; the report is written when the last cell finishes.",
    )
    kinds = study_parser.add_subparsers(
        dest="kind", metavar="KIND", help="what to compare: optimizers or schedules", parser_class=OneLineParser
    )
    kinds.required = True
    shared = tuple(f.name for f in dataclasses.fields(WorkerOptions))
    for cls, what in (
        (OptimizerStudyConfig, "SGD, momentum, Nesterov, AdaGrad, RMSProp, Adam, AdaMax, Nadam, AdamW (Table 11-2)"),
        (ScheduleStudyConfig, "constant, power, exponential, piecewise, performance, 1cycle LR schedules"),
    ):
        kind_parser = kinds.add_parser(cls.kind, help=what, description=f"Compare {what} on CIFAR-10.")
        own = tuple(f.name for f in dataclasses.fields(cls) if f.name not in shared)
        add_dataclass_arguments(kind_parser, cls, "study options", only=own)
        add_dataclass_arguments(kind_parser, WorkerOptions, "worker options (as dnnlab search's)")
        kind_parser.set_defaults(handler=cmd_study, study_class=cls)
    report_parser = commands.add_parser(
        "study-report",
        help="(re)write the report of an optimizer or schedule study, finished or not",
        description="Read the study's cells from its storage; writes report.html/.md, results.csv, cells.csv and "
        "figures into <out>/study/<study>/.",
    )
    add_study_arguments(report_parser, "study", "parent folder of the report")
    report_parser.set_defaults(handler=cmd_study_report)


def add_study_arguments(parser: argparse.ArgumentParser, command: str, out_help: str) -> None:
    """--study, --storage and --out of a report on the studies `dnnlab <command>` makes."""
    parser.add_argument(
        "--study", type=text_value("--study"), required=True, help=f"the study name (dnnlab {command}'s --study)"
    )
    parser.add_argument(
        "--storage",
        type=text_value("--storage"),
        default=None,
        help=f"SQLAlchemy URL of the study (default: SQLite under <out>/{command}/)",
    )
    parser.add_argument("--out", type=text_value("--out"), default="runs", help=f"{out_help} (default: runs)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="dnnlab", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    commands.required = True
    train_parser = commands.add_parser(
        "train",
        help="train one exercise-8 variant on CIFAR-10",
        description="Train one variant with Nadam and early stopping; writes runs/<name>/.",
    )
    add_config_arguments(train_parser)
    train_parser.set_defaults(handler=cmd_train)
    exercise_parser = commands.add_parser(
        "exercise",
        help="run exercise 8 (a-f) and write its report",
        description="Train every part of exercise 8 (LR searched per part), score MC Dropout for e, and "
        "write report.html/report.md with the results table, plots and answers. Completed "
        "parts are reused on a rerun.",
    )
    add_dataclass_arguments(exercise_parser, ExerciseConfig, "exercise options")
    exercise_parser.set_defaults(handler=cmd_exercise)
    mc_parser = commands.add_parser(
        "mc-dropout",
        help="compare deterministic and MC Dropout predictions of a trained run (exercise 8e)",
        description="Deterministic vs MC Dropout accuracy, NLL, Brier and ECE on the validation and test "
        "sets; writes mc_dropout.json and figures into RUN_DIR.",
    )
    mc_parser.add_argument(
        "run_dir", type=text_value("RUN_DIR"), metavar="RUN_DIR", help="a run folder written by dnnlab train"
    )
    mc_parser.add_argument("--samples", type=int, default=100, help="dropout samples per image (default: 100)")
    mc_parser.add_argument(
        "--split",
        choices=("valid", "test"),
        default="test",
        help="the split the figures show; the table covers both (default: test)",
    )
    mc_parser.add_argument("--seed", type=int, default=0, help="seed of the dropout masks (default: 0)")
    mc_parser.add_argument(
        "--data-dir",
        type=text_value("--data-dir"),
        default=None,
        metavar="PATH",
        help="folder holding cifar-10-batches-py/ (default: the run's setting)",
    )
    mc_parser.set_defaults(handler=cmd_mc_dropout)
    search_parser = commands.add_parser(
        "search",
        help="hyperparameter search with Optuna; run it on many machines against one --storage",
        description="Add trials to an Optuna study until it has --trials finished ones. Every worker "
        "(process or machine) started with the same --study and --storage joins the same study.",
    )
    add_config_arguments(search_parser)
    add_dataclass_arguments(search_parser, SearchConfig, "search options")
    search_parser.set_defaults(handler=cmd_search)
    report_parser = commands.add_parser(
        "search-report",
        help="best trials, parameter importances, history plot and best.json of a study",
        description="Summarize a study; writes <out>/search/<study>/history.png and best.json.",
    )
    add_study_arguments(report_parser, "search", "parent folder of run folders")
    report_parser.add_argument("--top", type=int, default=5, help="how many best trials to list (default: 5)")
    report_parser.set_defaults(handler=cmd_search_report)
    add_study_commands(commands)

    answers_parser = commands.add_parser(
        "answers",
        help="answer the chapter's questions 1-7 with experiments",
        description="Run the experiments behind questions 1-7; writes answers.md, answers.html and answers.json.",
    )
    answers_parser.add_argument(
        "--questions",
        type=text_value("--questions"),
        default="1,2,3,4,5,6,7",
        help="which questions, e.g. 1,5 (default: all)",
    )
    answers_parser.add_argument(
        "--quick",
        action="store_true",
        help="a 5,000-image subset, short training, smaller nets: all seven within 10 minutes on 2 cores",
    )
    answers_parser.add_argument(
        "--out",
        type=text_value("--out"),
        default="answers",
        help="folder for the report and figures (default: answers)",
    )
    answers_parser.add_argument(
        "--data-dir",
        type=text_value("--data-dir"),
        default=None,
        help="folder holding cifar-10-batches-py/ (default: $DNNLAB_DATA, then ~/.keras/datasets)",
    )
    answers_parser.set_defaults(handler=cmd_answers)
    finder_parser = commands.add_parser(
        "lr-find",
        help="LR range test: suggest a learning rate and plot the loss against it",
        description="Run the LR range test for one variant; writes lr_finder.csv and lr_finder.png "
        "into runs/<name>/ and prints the suggestion. Takes the same flags as train.",
    )
    add_config_arguments(finder_parser)
    finder_parser.set_defaults(handler=cmd_lr_find)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = None
    logs.configure()
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv
        return args.handler(args)
    except DnnlabError as exc:
        print(f"{ERROR_PREFIX}{exc}", file=sys.stderr)
        return USAGE_ERROR
    except OSError as exc:
        if not is_storage_failure(exc):
            raise
        # A write outside the wrapped ones (they name their file): the OSError's own file, if any.
        print(f"{ERROR_PREFIX}{StorageError(exc.filename or 'a file', exc)}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:  # a Ctrl-C outside training's own handler (loading data, a second Ctrl-C)
        hint = f"; {resume_hint(args)}" if args is not None else ""
        print(f"\ndnnlab: aborted{hint}", file=sys.stderr)
        return INTERRUPTED_EXIT
