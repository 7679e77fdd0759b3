"""CLI flags generated from the config dataclasses: `--lr 3e-4` overrides `TrainConfig.lr`.

Flags exist only for real fields, values are parsed by the field's type, the help text is the
field's `metadata["help"]`, and only the flags the user gave override the preset, so the help
text and the configs cannot drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

from dnnlab.config import SECTIONS, TOP_LEVEL, RunConfig, for_variant


def text_value(flag: str):
    """A string -> string function for argparse that refuses an empty value, which no dnnlab flag takes
    (an empty --out or --data-dir would silently mean the current folder)."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{flag} must not be empty")
        return text

    return parse


def _parser_for(annotation: Any, name: str):
    """A string -> value function for a field type such as `int | None` or `float | str | None`.

    Numbers must be finite (None, not inf, means "no limit") and text must not be empty.
    """
    flag = f"--{name.replace('_', '-')}"
    args = set(typing.get_args(annotation)) if isinstance(annotation, types.UnionType) else {annotation}
    args.discard(type(None))
    if args == {float, str}:  # the learning rate: a number or a keyword such as "auto"
        word = text_value(flag)

        def number_or_word(text: str) -> float | str:
            try:
                return float(text)
            except ValueError:
                return word(text)

        return number_or_word
    (kind,) = args
    if kind is str:
        return text_value(flag)

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} expects {kind.__name__}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{flag} expects a finite number, got {text!r}")
        return value

    return parse


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--variant`, `--config` and one flag per config field; unset flags stay absent."""
    parser.add_argument(
        "--variant",
        type=text_value("--variant"),
        default=argparse.SUPPRESS,
        help="exercise variant preset: elu, bn, selu, alpha-dropout (default: elu)",
    )
    parser.add_argument(
        "--config",
        dest="config_file",
        type=text_value("--config"),
        metavar="JSON",
        default=None,
        help="start from a saved config.json (e.g. a search's best.json); flags override it",
    )
    add_dataclass_arguments(parser, RunConfig, "run options", only=TOP_LEVEL)
    for section, cls in SECTIONS.items():
        add_dataclass_arguments(parser, cls, f"{section} options")


def add_dataclass_arguments(
    parser: argparse.ArgumentParser, cls: type, title: str, only: tuple[str, ...] | None = None
) -> None:
    """One flag per field of dataclass `cls` (or of the fields in `only`), in a help group `title`."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(title)
    for fld in dataclasses.fields(cls):
        if only is not None and fld.name not in only:
            continue
        flag = "--" + fld.name.replace("_", "-")
        default = fld.default if fld.default is not dataclasses.MISSING else None
        # argparse formats help with %, so a literal % must be doubled.
        help_text = f"{fld.metadata['help']} (default: {default})".replace("%", "%%")
        if hints[fld.name] is bool:
            group.add_argument(
                flag, dest=fld.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text
            )
        else:
            group.add_argument(
                flag,
                dest=fld.name,
                type=_parser_for(hints[fld.name], fld.name),
                default=argparse.SUPPRESS,
                metavar=fld.name.upper(),
                help=help_text,
            )


def given_fields(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The fields of dataclass `cls` that the user set on the command line."""
    given = vars(args)
    return {f.name: given[f.name] for f in dataclasses.fields(cls) if f.name in given}


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run config: the saved config or the variant preset, then the user's flags on top."""
    given = vars(args)
    if given.get("config_file"):
        base = RunConfig.from_json(Path(given["config_file"]))
        if "variant" in given:
            base = dataclasses.replace(base, variant=given["variant"])
    else:
        base = for_variant(given.get("variant", "elu"))
    sections = {}
    for section, cls in SECTIONS.items():
        sections[section] = dataclasses.replace(getattr(base, section), **given_fields(cls, args))
    top = {name: given[name] for name in TOP_LEVEL if name in given}
    return dataclasses.replace(base, **sections, **top)
