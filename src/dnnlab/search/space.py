"""What a trial may vary (`SearchSpace`), how a trial's config is made, and the baseline trial's values.

Baseline. A new study's first trial trains the base config, as `dnnlab train` would without a
search: with `--lr` its LR, else the LR `--lr auto` picks (range test plus confirming search),
which the workers compute anyway to centre the LR range. Its seed is the base seed, so it is
the same run as `dnnlab train --lr auto`. The study's best is then never worse than the default
on the study's own measurements; search-report marks the baseline trial.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import optuna

from dnnlab.config import RunConfig
from dnnlab.errors import DnnlabError
from dnnlab.search.config import BATCH_SIZES, SearchConfig


@dataclass(frozen=True)
class SearchSpace:
    """What a trial may vary; None: that hyperparameter is fixed to the base config's value."""

    lr: tuple[float, float] | None  # log-uniform bounds
    dropout_rate: tuple[float, float] | None  # uniform bounds
    batch_sizes: tuple[int, ...] | None  # categorical choices

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))  # tuples as lists, as stored in the study


def centres_on_range_test(config: RunConfig, search: SearchConfig) -> bool:
    """Whether the LR range is centred on the LR range test's suggestion.

    It is when the LR is searched, no `--lr` number gives a centre, and not both bounds are
    given: the range test measures where this model trains on this data, where a textbook LR
    only fits the book's setup.
    """
    bounded = search.lr_low is not None and search.lr_high is not None
    return "lr" in searched_names(config, search) and not bounded and not isinstance(config.train.lr, float | int)


def searched_names(config: RunConfig, search: SearchConfig) -> tuple[str, ...]:
    """`--space`, or lr and batch plus dropout when the model has it; a clear error for a space that cannot work."""
    has_dropout = config.model.dropout != "none"
    names = search.space_names or ("lr", "batch", *(("dropout",) if has_dropout else ()))
    if "dropout" in names and not has_dropout:
        raise DnnlabError(
            f"--space dropout: the {config.variant} model has no dropout layer; "
            "use --variant alpha-dropout or pass --dropout alpha"
        )
    if "lr" not in names and not isinstance(config.train.lr, float | int | None):
        raise DnnlabError("--lr auto needs lr in --space (or pass an LR number to keep it fixed)")
    return names


def resolve_space(config: RunConfig, search: SearchConfig, suggestion: float | None = None) -> SearchSpace:
    """The search space for `config`'s variant: the bounds of each of `searched_names`.

    Args:
        suggestion: the LR range test's suggestion, the LR range's centre when
            `centres_on_range_test` (otherwise the centre is `--lr`, or both bounds are given).
    """
    names = searched_names(config, search)
    lr = None
    if search.lr_low is not None and search.lr_high is not None:
        lr = (search.lr_low, search.lr_high)
    elif "lr" in names:
        center = config.train.lr if isinstance(config.train.lr, float | int) else suggestion
        if center is None:
            raise DnnlabError("the LR range needs a centre: pass --lr, or --lr-low and --lr-high")
        low = search.lr_low if search.lr_low is not None else center / search.lr_span
        high = search.lr_high if search.lr_high is not None else center * search.lr_span
        if not low < high:
            raise DnnlabError(f"the LR range [{low:g}, {high:g}] is empty; pass both --lr-low and --lr-high")
        lr = (float(low), float(high))
    return SearchSpace(
        lr=lr,
        dropout_rate=(search.dropout_low, search.dropout_high) if "dropout" in names else None,
        batch_sizes=BATCH_SIZES if "batch" in names else None,
    )


def baseline_params(config: RunConfig, space: SearchSpace, auto_lr: float | None) -> tuple[dict[str, Any] | None, str]:
    """The searched hyperparameters of the base config, and how they were chosen.

    Returns None and the reason when the base config has no value for a searched hyperparameter
    (the LR is neither a number nor picked by `--lr auto`) or its value lies outside the space.
    """
    numeric = isinstance(config.train.lr, float | int)
    lr = config.train.lr if numeric else auto_lr
    params: dict[str, Any] = {}
    if space.lr is not None:
        if lr is None:
            return None, "the base config has no LR (pass --lr, or leave a bound out to centre on a range test)"
        params["lr"] = float(lr)
    if space.batch_sizes is not None:
        params["batch_size"] = config.train.batch_size
    if space.dropout_rate is not None:
        params["dropout_rate"] = config.model.dropout_rate
    outside = [f"{name} {value:g}" for name, value in params.items() if not _inside(space, name, value)]
    if outside:
        return None, f"the base config's {', '.join(outside)} lies outside the search space"
    return params, "the base config" if numeric or "lr" not in params else "the base config with --lr auto's LR"


def _inside(space: SearchSpace, name: str, value: float) -> bool:
    if name == "batch_size":
        return value in space.batch_sizes
    low, high = space.lr if name == "lr" else space.dropout_rate
    return low <= value <= high


def suggest_params(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """Ask `trial` for each searched hyperparameter; the names are the config fields they set."""
    params: dict[str, Any] = {}
    if space.lr is not None:
        params["lr"] = trial.suggest_float("lr", *space.lr, log=True)
    if space.batch_sizes is not None:
        params["batch_size"] = trial.suggest_categorical("batch_size", list(space.batch_sizes))
    if space.dropout_rate is not None:
        params["dropout_rate"] = trial.suggest_float("dropout_rate", *space.dropout_rate)
    return params


def trial_config(base: RunConfig, params: dict[str, Any], number: int, study_name: str) -> RunConfig:
    """The run config of trial `number`: `base` with the trial's hyperparameters and seed base + number."""
    train = dataclasses.replace(
        base.train,
        lr=params.get("lr", base.train.lr),
        batch_size=params.get("batch_size", base.train.batch_size),
        seed=base.train.seed + number,
    )
    model = dataclasses.replace(base.model, dropout_rate=params.get("dropout_rate", base.model.dropout_rate))
    return dataclasses.replace(base, name=f"{study_name}-trial{number}", train=train, model=model)
