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


def cmd_mc_dropout(args: argparse.Namespace) -> int:
    from dnnlab.mc_dropout_report import FIGURES, REPORT_FILE, format_comparison, mc_dropout_report

    report = mc_dropout_report(args.run_dir, split=args.split, samples=args.samples, seed=args.seed,
                               data_dir=args.data_dir)
    print(format_comparison(report))
    files = ", ".join([REPORT_FILE, *FIGURES.values()])
    print(f"dnnlab: figures show {args.split}; wrote {files} into {args.run_dir}")
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
    mc_parser = commands.add_parser(
        "mc-dropout",
        help="compare deterministic and MC Dropout predictions of a trained run (exercise 8e)",
        description="Deterministic vs MC Dropout accuracy, NLL, Brier and ECE on the validation and test "
                    "sets; writes mc_dropout.json and figures into RUN_DIR.",
    )
    mc_parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by dnnlab train")
    mc_parser.add_argument("--samples", type=int, default=100, help="dropout samples per image (default: 100)")
    mc_parser.add_argument("--split", choices=("valid", "test"), default="test",
                           help="the split the figures show; the table covers both (default: test)")
    mc_parser.add_argument("--seed", type=int, default=0, help="seed of the dropout masks (default: 0)")
    mc_parser.add_argument("--data-dir", default=None, metavar="PATH",
                           help="folder holding cifar-10-batches-py/ (default: the run's setting)")
    mc_parser.set_defaults(handler=cmd_mc_dropout)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except DnnlabError as exc:
        print(f"dnnlab: error: {exc}", file=sys.stderr)
        return USAGE_ERROR



