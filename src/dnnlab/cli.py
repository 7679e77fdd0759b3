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


def cmd_answers(args: argparse.Namespace) -> int:
    from dnnlab.answers.runner import parse_questions, run_answers

    run_answers(parse_questions(args.questions), args.quick, args.out, args.data_dir)
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

    answers_parser = commands.add_parser(
        "answers",
        help="answer the chapter's questions 1-7 with experiments",
        description="Run the experiments behind questions 1-7; writes answers.md, answers.html and answers.json.",
    )
    answers_parser.add_argument("--questions", default="1,2,3,4,5,6,7", help="which questions, e.g. 1,5 (default: all)")
    answers_parser.add_argument("--quick", action="store_true",
                                help="a 5,000-image subset, short training, smaller nets: all seven within 10 minutes on 2 cores")
    answers_parser.add_argument("--out", default="answers", help="folder for the report and figures (default: answers)")
    answers_parser.add_argument("--data-dir", default=None, help="folder holding cifar-10-batches-py/ "
                                "(default: $DNNLAB_DATA, then ~/.keras/datasets)")
    answers_parser.set_defaults(handler=cmd_answers)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except DnnlabError as exc:
        print(f"dnnlab: error: {exc}", file=sys.stderr)
        return USAGE_ERROR



