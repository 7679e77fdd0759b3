"""The one way dnnlab makes a figure: matplotlib's object API, one style, one resolution.

`new_figure` gives a `Figure` and its axes without pyplot, so nothing needs a display or
global state, and nothing needs closing; `save_figure` writes it as PNG atomically. Every
plot in the project (exercise, answers, LR range test, search, MC Dropout) goes through here.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dnnlab.files import write_bytes_atomic

DPI = 110  # readable in a report at 100% zoom, and small enough to embed a dozen in one HTML file


def new_figure(width: float, height: float, ncols: int = 1, nrows: int = 1) -> tuple[Figure, list[Axes]]:
    """A figure of `width` x `height` inches with constrained layout, and its axes row by row."""
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, list(figure.subplots(nrows, ncols, squeeze=False).flat)


def grid_figure(count: int, width: float, height: float, max_cols: int = 3) -> tuple[Figure, list[Axes]]:
    """`count` panels of `width` x `height` inches each, in rows of at most `max_cols`; only theirs are visible."""
    ncols = min(max_cols, count)
    nrows = math.ceil(count / ncols)
    figure, axes = new_figure(width * ncols, height * nrows, ncols, nrows)
    for ax in axes[count:]:
        ax.set_visible(False)
    return figure, axes[:count]


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write `figure` to `path` as PNG, atomically; return the path."""
    write_bytes_atomic(path, png_bytes(figure))
    return Path(path)
