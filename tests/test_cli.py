import argparse
import subprocess
import sys

import pytest

from dnnlab.cli.flags import config_from_args
from dnnlab.cli.main import build_parser


def run_cli(*args, env_extra=None, cwd=None):
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "dnnlab", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "--variant", "resnet"], "unknown --variant 'resnet'"),
        (["train", "--lr", "-0.1"], "--lr must be a positive number"),
        (["train", "--lr", "0"], "--lr must be a positive number"),
        (["train", "--batch-size", "0"], "--batch-size must be >= 1"),
        (["train", "--epochs", "-3"], "--epochs must be >= 1"),
        (["train", "--batch-size", "ten"], "--batch-size expects int"),
        (["train", "--learning-rate", "1"], "unrecognized arguments"),
        (["train", "--data-dir", "/no/such/dir", "--no-download"], "--data-dir /no/such/dir does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, fragment):
    proc = run_cli(*args, "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert fragment in lines[0] and "Traceback" not in proc.stderr


def test_flags_override_only_given_fields():
    args = build_parser().parse_args(
        ["train", "--variant", "selu", "--lr", "3e-4", "--batch-size", "64", "--subset", "100", "--no-download"]
    )
    config = config_from_args(args)
    assert config.variant == "selu" and config.model.activation == "selu"
    assert config.model.initializer == "lecun_normal"  # from the preset, untouched
    assert config.train.lr == 3e-4 and config.train.batch_size == 64 and config.train.epochs == 100
    assert config.data.subset == 100 and config.data.download is False


def test_config_file_is_a_base_for_flags(tmp_path):
    import json

    from dnnlab.config import for_variant

    path = tmp_path / "best.json"
    path.write_text(json.dumps(for_variant("bn", lr=1e-3, batch_size=128).to_dict()))
    config = config_from_args(build_parser().parse_args(["train", "--config", str(path), "--epochs", "7"]))
    assert config.model.batch_norm and config.train.lr == 1e-3
    assert config.train.batch_size == 128 and config.train.epochs == 7


def test_help_lists_defaults():
    proc = run_cli("train", "--help")
    assert proc.returncode == 0
    assert "--patience PATIENCE" in proc.stdout and "(default: 20)" in proc.stdout


def subcommands(parser: argparse.ArgumentParser, prefix: str = "dnnlab") -> dict[str, argparse.ArgumentParser]:
    """Every command and nested subcommand (`dnnlab study optimizers`), by its full name."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                found[f"{prefix} {name}"] = command
                found.update(subcommands(command, f"{prefix} {name}"))
    return found


def test_every_flag_of_every_command_has_help():
    commands = subcommands(build_parser())
    expected = {
        "train",
        "exercise",
        "search",
        "search-report",
        "answers",
        "lr-find",
        "mc-dropout",
        "study",
        "study-report",
    }
    assert set(commands) >= {f"dnnlab {name}" for name in expected} | {
        "dnnlab study optimizers",
        "dnnlab study schedules",
    }
    for name, command in commands.items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = (action.help or "").split("(default:")[0].strip()
            assert text, f"{name} {'/'.join(action.option_strings) or action.dest} has no help"
