"""`dnnlab`: a thin command-line layer over the library's functions.

Every user-fixable problem is a `DnnlabError`; it is printed as one line and exits with 2.
"""

from __future__ import annotations

import argparse
import signal
import typing
import sys

import dnnlab  # noqa: F401  (sets the default Keras backend before anything imports keras)
from dnnlab.cli_config import add_config_arguments, add_dataclass_arguments, config_from_args, dataclass_from_args
from dnnlab.config import ExerciseConfig
from dnnlab.errors import DnnlabError

USAGE_ERROR = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag prints one line (not the whole usage) and exits with 2."""

    def error(self, message: str) -> typing.NoReturn:
        raise DnnlabError(f"{self.prog}: {message} (see {self.prog} --help)")


def cmd_train(args: argparse.Namespace) -> int:
    from dnnlab.train import train

    config = config_from_args(args)
    print(f"dnnlab: training {config.variant} (lr={config.lr}) into {config.run_dir}", flush=True)
    result = train(config)
    m = result.metrics
    print(
        f"dnnlab: best epoch {m['best_epoch']}/{m['epochs_run']}: "
        f"valid acc {m['valid_accuracy']:.4f} loss {m['valid_loss']:.4f}, "
        f"test acc {m['test_accuracy']:.4f} loss {m['test_loss']:.4f}, "
        f"{m['mean_epoch_seconds']:.2f} s/epoch; files in {result.run_dir}"
    )
    return 0


def cmd_exercise(args: argparse.Namespace) -> int:
    from dnnlab.exercise import run_exercise

    config = dataclass_from_args(ExerciseConfig, args)
    result = run_exercise(config)
    if result.stopped_by is not None:
        print("dnnlab: exercise interrupted; run the same command again to resume it", file=sys.stderr)
        return 128 + signal.Signals[result.stopped_by]
    print(f"dnnlab: report in {result.report_files['html']} and {result.report_files['md']}; "
          f"table in {result.report_files['csv']}")
    return 0


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
    add_dataclass_arguments(exercise_parser.add_argument_group("exercise options"), ExerciseConfig)
    exercise_parser.set_defaults(handler=cmd_exercise)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except DnnlabError as exc:
        print(f"dnnlab: error: {exc}", file=sys.stderr)
        return USAGE_ERROR



