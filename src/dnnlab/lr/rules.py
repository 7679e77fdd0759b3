"""The rules that turn an LR range test's curve into a suggested LR: pure functions, chosen by name.

Each rule is `(lrs, losses) -> lr` on the smoothed curve. `RULES` is the one list of them:
`dnnlab.config` validates `--rule` against it, and `suggest` applies one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dnnlab.errors import DnnlabError

MIN_POINTS = 5  # fewer usable points than this cannot show a trend
SKIP_FRACTION = 0.10  # `steepest` ignores the first 10%: tiny LRs, where the loss is flat and noisy
SLOPE_SPAN = 0.5  # `steepest` measures each slope across half a decade of LR


def usable_curve(lrs: Sequence[float], losses: Sequence[float], rule: str) -> tuple[np.ndarray, np.ndarray]:
    """The curve up to its first non-finite loss, checked to have `MIN_POINTS` points."""
    lrs = np.asarray(lrs, dtype=float)
    losses = np.asarray(losses, dtype=float)
    if lrs.shape != losses.shape or lrs.ndim != 1:
        raise ValueError(f"lrs and losses must be 1-D and equally long, got {lrs.shape} and {losses.shape}")
    bad = np.flatnonzero(~np.isfinite(losses))
    end = int(bad[0]) if bad.size else len(losses)
    lrs, losses = lrs[:end], losses[:end]
    if np.any(lrs <= 0) or np.any(np.diff(lrs) <= 0):
        raise ValueError("lrs must be positive and increasing")
    if end < MIN_POINTS:
        raise DnnlabError(
            f"the LR range test has only {end} usable points (need >= {MIN_POINTS}) for the "
            f"{rule!r} rule: the loss diverged at once or the test was too short; lower --finder-start-lr "
            "or raise --finder-steps"
        )
    return lrs, losses


def steepest(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """The LR where the loss falls fastest per unit of **log** LR, after the first 10% of points.

    The slope is taken against log(LR) because the sweep is exponential: against the LR
    itself, the tiny steps at small LRs would inflate their slopes and win. Each slope spans
    `SLOPE_SPAN` decades rather than two neighbours: a real sweep has ~130 points per decade,
    and the smoothed loss still wiggles between them (measured on CIFAR-10 `elu`: neighbour
    slopes picked 3.6e-7, far before the descent, where this picks 1.1e-5).
    """
    lrs, losses = usable_curve(lrs, losses, "steepest")
    skip = int(len(lrs) * SKIP_FRACTION)
    if len(lrs) - skip < MIN_POINTS:
        raise DnnlabError(
            f"the LR range test has only {len(lrs) - skip} usable points after skipping the first "
            f"{skip} (need >= {MIN_POINTS}); raise --finder-steps"
        )
    lrs, losses = lrs[skip:], losses[skip:]
    decades = np.log10(lrs)
    low = np.searchsorted(decades, decades - SLOPE_SPAN / 2)  # first point in the span
    high = np.searchsorted(decades, decades + SLOPE_SPAN / 2, side="right") - 1  # last point in it
    # Where points are sparser than the span, the span shrinks to the neighbours (np.gradient's slopes).
    low = np.minimum(low, np.maximum(np.arange(len(lrs)) - 1, 0))
    high = np.maximum(high, np.minimum(np.arange(len(lrs)) + 1, len(lrs) - 1))
    slopes = (losses[high] - losses[low]) / (decades[high] - decades[low])
    return float(lrs[int(np.argmin(slopes))])


def minimum(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """A tenth of the LR at the lowest loss: just below where the loss turns back up."""
    return turning_point(lrs, losses) / 10


def turning_point(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """The LR at the lowest loss, where the loss turns back up.

    The peak of a 1cycle schedule: the cycle starts a tenth below it and passes through it only
    briefly (Smith 2018). Measured on CIFAR-10 8f (SGD, batch 128): `minimum` gave a 6.2e-3 peak
    and 50.0% validation accuracy; the textbook's hand-picked peak, 0.05, sits next to this point.
    """
    lrs, losses = usable_curve(lrs, losses, "turning-point")
    return float(lrs[int(np.argmin(losses))])


def valley(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """fastai's `valley`: the middle of the longest stretch over which the loss keeps falling.

    The stretch is the longest decreasing subsequence of the loss; fastai picks the point
    half-way along it (https://github.com/fastai/fastai, `fastai/callback/schedule.py`).
    """
    lrs, losses = usable_curve(lrs, losses, "valley")
    n = len(losses)
    run = np.ones(n, dtype=int)  # run[i]: length of the longest decreasing subsequence ending at i
    for i in range(1, n):
        higher = run[:i][losses[:i] > losses[i]]
        if higher.size:
            run[i] = higher.max() + 1
    end = int(np.argmax(run))  # the first longest one, as fastai's strict comparison picks
    start = end - int(run[end])
    sections = (end - start) / 3
    index = start + int(sections) + int(sections / 2)
    return float(lrs[min(max(index, 0), n - 1)])


RULES: dict[str, Callable[[Sequence[float], Sequence[float]], float]] = {
    "steepest": steepest,
    "minimum": minimum,
    "valley": valley,
    "turning-point": turning_point,
}


def suggest(rule: str, lrs: Sequence[float], losses: Sequence[float]) -> float:
    if rule not in RULES:
        raise DnnlabError(f"unknown LR rule {rule!r}; choose one of: {', '.join(RULES)}")
    return RULES[rule](lrs, losses)
