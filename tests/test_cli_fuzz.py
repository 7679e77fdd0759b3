"""Every flag of every command, given an invalid value: one line, exit 2, nothing left behind (issue 17).

The cases are generated from the parser (`dnnlab.cli.main.build_parser`), so a new flag is covered
without a new test. A flag's kind is read off how argparse parses it, not from a list:
- a switch (`--quick`, `--no-download`) given a value;
- a fixed set of choices (`--split`): an unknown choice, an empty string;
- a number (`int` / `float` fields): not a number, a fraction for an int, empty, -1, nan, inf
  (no dnnlab number may be negative, and none may be infinite: `None` says "no limit");
- a number or a word (`--lr`): empty, -1, nan, inf, an unknown word;
- text: empty, and an unknown name unless the flag names something new (`FREE_TEXT`).
`EDGES` adds the first out-of-range value above a field's range, from the configs' validation.

Every case runs in-process through `dnnlab.cli.main(argv)`, from an empty working folder, with a
fresh `--out` for the commands that have one, no CIFAR-10 to be found and no download: a value that
slipped through would fail later, with a line that does not name the flag, or leave files.
`test_invalid_values_fail_cleanly_at_process_level` runs a few of them as real processes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dnnlab.data
from dnnlab.cli.main import build_parser, main
from dnnlab.errors import ERROR_PREFIX, USAGE_ERROR
from tests.test_cli import subcommands

REPO = Path(__file__).resolve().parents[1]
RUN_DIR = "RUN_DIR"  # a positional: the test fills in an empty folder (no run in it)
# Values that let a command reach its flags' checks: the positional run folder, and the study a report reads.
REQUIRED = {"run_dir": RUN_DIR, "study": "no-such-study"}
# Text flags that name something new, so that any non-empty name is valid (only "" is not).
FREE_TEXT = {
    "name": "a run folder's name under --out",
    "study": "a new study's name (the reports' --study must exist: not exempt there)",
    "out": "a folder to create",
}
REPORTS_READ_A_STUDY = {"dnnlab search-report", "dnnlab study-report"}
# The first values past the upper end of a field's range, from the configs' checks.
EDGES = {
    "dropout_rate": ["1"],
    "momentum": ["1"],
    "dropout_low": ["0.3"],  # not below --dropout-high's default
    "dropout_high": ["1"],
    "prune_percentile": ["100"],
    "lr_span": ["1"],
    "finder_steps": ["1"],
    "quick_finder_steps": ["1"],
    "valid_size": ["50000"],
    "subset": ["45001"],  # CIFAR-10 has 45,000 training images beside the 5,000 validation ones
    "seed": ["4294967296"],  # NumPy's seeds end at 2**32 - 1
    "grace_period": ["20"],  # not above --heartbeat-interval's default
    "finder_start_lr": ["10"],  # not below --finder-end-lr's default
    "samples": ["0"],
    "top": ["0"],
}


def _parses(action: argparse.Action, text: str):
    try:
        return (action.type or str)(text)
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        return None


def invalid_values(command: str, action: argparse.Action) -> list[str]:
    """The values no flag of this kind may take (see the module's docstring), then `EDGES`."""
    if action.nargs == 0:  # a switch: --quick, --no-download
        return []  # covered by `switch_cases`: a value attached with "="
    if action.choices is not None:
        return ["no-such-choice", ""]
    number = _parses(action, "7")
    if isinstance(number, int | float):
        values = ["x", "", "-1", "nan", "inf"]
        values += ["1.5"] if isinstance(number, int) else []
        if isinstance(_parses(action, "word"), str):  # a number or a keyword (--lr auto)
            values.remove("x")
            values.append("no-such-word")
        return values + EDGES.get(action.dest, [])
    free = action.dest in FREE_TEXT and not (action.dest == "study" and command in REPORTS_READ_A_STUDY)
    return ["", *([] if free else ["no-such-name"])]


def base_argv(name: str, parser: argparse.ArgumentParser, run_dir: Path, out: Path) -> list[str]:
    """The command, its required values and a fresh --out: everything but the flag under test."""
    argv = name.split()[1:]
    for action in parser._actions:
        if action.required and not action.option_strings:
            assert action.dest in REQUIRED, f"{name}: give the positional {action.dest} a value in REQUIRED"
            argv.append(str(run_dir))
        elif action.required:
            assert action.dest in REQUIRED, f"{name}: give the required {action.option_strings[0]} a value in REQUIRED"
            argv += [action.option_strings[0], REQUIRED[action.dest]]
    if "--out" in parser._option_string_actions:
        argv += ["--out", str(out)]
    return argv


def flag_cases() -> list:
    cases = []
    for name, parser in subcommands(build_parser()).items():
        if any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
            continue  # `dnnlab study` itself: its kinds are commands of their own
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flag = action.option_strings[0] if action.option_strings else action.dest
            if action.nargs == 0:
                values = [f"{option}=maybe" for option in action.option_strings]
            else:
                values = invalid_values(name, action)
            for value in values:
                cases.append(pytest.param(name, action.dest, flag, value, id=f"{name[7:]} {flag} {value!r}"))
    return cases


CASES = flag_cases()


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """No CIFAR-10 anywhere and no download: a command that got past its checks fails at loading."""
    monkeypatch.setenv(dnnlab.data.DATA_ENV, str(tmp_path / "no-data"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))

    def refuse(*args, **kwargs):
        raise RuntimeError("the test forbids downloads")

    monkeypatch.setattr(dnnlab.data, "download_cifar10", refuse)


def files_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("command, dest, flag, value", CASES)
def test_an_invalid_value_gets_one_line_exit_2_and_writes_nothing(
    command, dest, flag, value, tmp_path, monkeypatch, capsys, no_data
):
    cwd, out, run_dir = tmp_path / "cwd", tmp_path / "out", tmp_path / "run"
    cwd.mkdir()
    run_dir.mkdir()
    monkeypatch.chdir(cwd)
    parser = subcommands(build_parser())[command]
    argv = base_argv(command, parser, run_dir, out)
    if flag.startswith("--") and value.startswith(flag):  # a switch given a value
        argv.append(value)
    elif flag.startswith("--"):
        argv += [flag, value]
    else:  # the positional under test replaces the test's run folder
        argv[argv.index(str(run_dir))] = value

    code = main(argv)

    stderr = capsys.readouterr().err
    lines = stderr.strip().splitlines()
    assert code == USAGE_ERROR, f"{argv} exited {code}:\n{stderr}"
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), stderr
    assert "Traceback" not in stderr

    def words(text: str) -> str:
        return text.lower().replace("_", " ").replace("-", " ")

    # The flag is named, or the unknown name given (a path or URL: "cannot open storage no-such-name").
    named = words(flag) in words(lines[0]) or (value.startswith("no-such-") and value in lines[0])
    assert named, f"the line names neither {flag} nor {value!r}"
    assert files_under(out) == [] and files_under(cwd) == [] and files_under(run_dir) == []


def test_every_command_and_kind_of_flag_is_covered():
    """The generator still sees every command and each kind of flag (a refactor must not empty it)."""
    commands = {case.values[0] for case in CASES}
    assert commands == {
        "dnnlab train",
        "dnnlab exercise",
        "dnnlab mc-dropout",
        "dnnlab search",
        "dnnlab search-report",
        "dnnlab study optimizers",
        "dnnlab study schedules",
        "dnnlab study-report",
        "dnnlab answers",
        "dnnlab lr-find",
    }
    by_flag = {(case.values[0], case.values[2]): [] for case in CASES}
    for case in CASES:
        by_flag[(case.values[0], case.values[2])].append(case.values[3])
    assert "no-such-name" in by_flag[("dnnlab train", "--activation")]
    assert "no-such-name" in by_flag[("dnnlab train", "--initializer")]
    assert {"x", "1.5", "-1"} <= set(by_flag[("dnnlab train", "--epochs")])
    assert {"no-such-word", "nan"} <= set(by_flag[("dnnlab train", "--lr")])
    assert "--quick=maybe" in by_flag[("dnnlab exercise", "--quick")]
    assert "no-such-choice" in by_flag[("dnnlab mc-dropout", "--split")]
    assert by_flag[("dnnlab train", "--name")] == [""]
    assert len(CASES) > 400


PROCESS_CASES = [
    ["train", "--activation", "foo"],
    ["exercise", "--parts", "z"],
    ["study", "optimizers", "--seed", "-1"],
    ["mc-dropout", "no-such-run", "--samples", "0"],
]


@pytest.mark.parametrize("args", PROCESS_CASES, ids=[" ".join(a) for a in PROCESS_CASES])
def test_invalid_values_fail_cleanly_at_process_level(args, tmp_path):
    """As a user sees it: the installed interpreter, one stderr line, exit 2, no traceback, no files."""
    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    argv = [*args, "--out", str(out)] if args[0] != "mc-dropout" else args
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras-home")}  # Keras writes its keras.json there
    done = subprocess.run(
        [sys.executable, "-m", "dnnlab", *argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == USAGE_ERROR, done.stderr
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX) and "Traceback" not in done.stderr, done.stderr
    assert not out.exists() and list(cwd.iterdir()) == []
