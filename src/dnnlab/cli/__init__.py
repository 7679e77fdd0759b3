"""The `dnnlab` command line: `main` parses the flags (generated from the configs by `flags`) and
calls the library."""

from dnnlab.cli.main import main

__all__ = ["main"]
