"""Each optimizer's learning rate: one LR range test per optimizer, shared by every worker and seed.

The first worker that needs an optimizer's LR runs the range test (`dnnlab.lr.finder.lr_find`,
first seed, constant LR, the study's `--rule`) and stores the result in the study's user
attributes; every other worker and seed reuses it, as `dnnlab search` reuses its range test.
Two workers that start the same test at one instant both run it; the stored result is kept,
and each cell records the LR it trained with.

The range test's curve is stored with it (thinned to `CURVE_POINTS`), so the report can plot it
on any machine. The cells' LRs: an optimizer study's option trains at the rule's LR; a
schedule study's options start from the rule's LR of its optimizer, and 1cycle peaks at the
turning point, the LR of the lowest smoothed loss (`dnnlab.lr.rules.turning_point`), as the
exercise's part f does. With the default rule `minimum` (a tenth of the turning point), the
cycle starts where the other schedules start.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import optuna

from dnnlab.data import Splits
from dnnlab.lr.finder import lr_find
from dnnlab.lr.rules import turning_point
from dnnlab.study.cells import range_test_config
from dnnlab.study.config import StudyConfig

log = logging.getLogger(__name__)

ATTR_PREFIX = "lr_range_test:"  # + optimizer name: a study user attribute
CURVE_POINTS = 200


def lr_key(config: StudyConfig, option: str) -> str:
    """The optimizer whose range test sets `option`'s LR."""
    return option if config.kind == "optimizers" else config.optimizer


def stored_range_test(study: optuna.Study, optimizer: str) -> dict[str, Any] | None:
    return study.user_attrs.get(ATTR_PREFIX + optimizer)


def range_tests(study: optuna.Study) -> dict[str, dict[str, Any]]:
    """Every stored range test, by optimizer."""
    return {key[len(ATTR_PREFIX) :]: value for key, value in study.user_attrs.items() if key.startswith(ATTR_PREFIX)}


def option_lr(study: optuna.Study, config: StudyConfig, option: str, splits: Splits) -> float:
    """The LR `option`'s cells train at (1cycle: its peak), from the stored or a new range test."""
    key = lr_key(config, option)
    found = stored_range_test(study, key)
    if found is None:
        found = run_range_test(config, key, splits)
        stored = stored_range_test(study, key)  # read from the storage again: another worker may have stored one
        if stored is None:
            study.set_user_attr(ATTR_PREFIX + key, found)
        else:
            found = stored
    return found["turning_point"] if option == "1cycle" else found["lr"]


def run_range_test(config: StudyConfig, optimizer: str, splits: Splits) -> dict[str, Any]:
    run = range_test_config(config, optimizer)
    log.info("LR range test of %s (%s rule); other workers and seeds reuse it", optimizer, config.rule)
    result = lr_find(run, splits, run.run_dir)
    lrs, smoothed = np.asarray(result.curve.lrs), np.asarray(result.curve.smoothed)
    keep = np.unique(np.linspace(0, len(lrs) - 1, min(CURVE_POINTS, len(lrs))).round().astype(int))
    return {
        "rule": result.rule,
        "lr": float(result.suggestion),
        "turning_point": float(turning_point(result.curve.lrs, result.curve.smoothed)),
        "seconds": float(result.curve.seconds),
        "curve": {
            "lrs": [float(v) for v in lrs[keep]],
            "smoothed": [float(v) if math.isfinite(v) else None for v in smoothed[keep]],
        },
    }
