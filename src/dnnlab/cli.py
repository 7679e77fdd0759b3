"""`dnnlab`: a thin command-line layer over the library's functions.

Every user-fixable problem is a `DnnlabError`; it is printed as one line and exits with 2.
"""

from __future__ import annotations

import argparse
import typing
import sys

import dnnlab  # noqa: F401  (sets the default Keras backend before anything imports keras)
from dnnlab.cli_config import add_config_arguments, config_from_args
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


def cmd_lr_find(args: argparse.Namespace) -> int:
    from dnnlab.lr_finder import CSV_FILE, PLOT_FILE, lr_find
    from dnnlab.train import load_data

    config = config_from_args(args)
    result = lr_find(config, load_data(config), config.run_dir)
    print(f"dnnlab: suggested lr {result.suggestion:.3g} ({result.rule} rule); curve in "
          f"{config.run_dir / CSV_FILE}, plot in {config.run_dir / PLOT_FILE}")
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
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except DnnlabError as exc:
        print(f"dnnlab: error: {exc}", file=sys.stderr)
        return USAGE_ERROR



