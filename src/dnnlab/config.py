"""Typed, frozen configs of one training run: one dataclass per concern, validated on construction.

Every field carries its one-line help in `metadata["help"]` (the CLI's `--help` shows it), and
the longer reasons behind some defaults are in docs/design-notes.md. Presets for the exercise's
variants are named `ModelConfig`s (see `VARIANTS`), not copies of code. The CLI only overrides
fields (see `dnnlab.cli.flags`), and the resolved `RunConfig` is saved with every run.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnnlab.errors import DnnlabError
from dnnlab.files import read_json
from dnnlab.keras_names import ACTIVATION, INITIALIZER, name_problem
from dnnlab.lr.rules import RULES


class ConfigError(DnnlabError):
    """A config field has a bad value."""


def require(condition: bool, message: str) -> None:
    """Raise `ConfigError(message)` unless `condition` holds."""
    if not condition:
        raise ConfigError(message)


def option(default: Any, help: str) -> Any:
    """A dataclass field with a default and its `--help` text."""
    return field(default=default, metadata={"help": help})


def one_of(value: str, choices: tuple[str, ...] | list[str], flag: str) -> None:
    require(value in choices, f"{flag} must be one of {', '.join(choices)}, got {value!r}")


def nonempty(value: str | None, flag: str) -> None:
    """A path or name may be None (its default) but not empty: an empty path would mean the current folder."""
    require(value is None or (isinstance(value, str) and value.strip() != ""), f"{flag} must not be empty")


MAX_SEED = 2**32 - 1  # NumPy's seeds (keras.utils.set_random_seed seeds NumPy too) are 0 .. 2**32 - 1


def check_seeds(first: int, count: int = 1, flag: str = "--seed") -> None:
    """Seeds `first` .. `first + count - 1` must all be valid seeds."""
    many = f" (for {count} seeds)" if count > 1 else ""
    last = MAX_SEED - count + 1
    require(0 <= first <= last, f"{flag} must be in 0..{last}{many}, got {first}")


CIFAR10_TRAIN_IMAGES = 50_000  # the official training set, validation included


def check_subset(subset: int | None, valid_size: int = 5000, flag: str = "--subset") -> None:
    """A subset of the training images must fit in what the validation split leaves of CIFAR-10's."""
    available = CIFAR10_TRAIN_IMAGES - valid_size
    require(
        subset is None or 0 < subset <= available,
        f"{flag} must be in 1..{available} (CIFAR-10's training images beside the validation split), got {subset}",
    )


INPUT_SCALINGS = ("none", "unit", "standardize")
DROPOUT_KINDS = ("none", "dropout", "alpha")
# Keras's optimizers with the textbook's hyperparameters (`dnnlab.models.compile.make_optimizer`).
# "sgd" takes `momentum` (0 for plain SGD); "nesterov" is SGD with Nesterov momentum.
OPTIMIZERS = ("nadam", "sgd", "nesterov", "adagrad", "rmsprop", "adam", "adamax", "adamw")
# The textbook's LR schedules (`dnnlab.schedules.decay`, `dnnlab.schedules.one_cycle`).
SCHEDULES = ("constant", "power", "exponential", "piecewise", "performance", "1cycle")


@dataclass(frozen=True)
class DataConfig:
    data_dir: str | None = option(
        None, "folder holding cifar-10-batches-py/; None: $DNNLAB_DATA, then ~/.keras/datasets"
    )
    subset: int | None = option(None, "train on the first N of the 45,000 training images (quick tries); None: all")
    valid_size: int = option(5000, "the textbook holds out the first 5,000 training images for validation")
    download: bool = option(True, "download the official archive when no local copy is found")

    def __post_init__(self) -> None:
        nonempty(self.data_dir, "--data-dir")
        require(
            0 < self.valid_size < CIFAR10_TRAIN_IMAGES,
            f"--valid-size must be in 1..{CIFAR10_TRAIN_IMAGES - 1}, got {self.valid_size}",
        )
        check_subset(self.subset, self.valid_size)


@dataclass(frozen=True)
class ModelConfig:
    depth: int = option(20, "hidden Dense layers (exercise 8a)")
    width: int = option(100, "units per hidden layer (exercise 8a)")
    activation: str = option("elu", "any Keras activation name for the hidden layers")
    initializer: str = option("he_normal", "He init suits ELU/ReLU; SELU needs lecun_normal")
    batch_norm: bool = option(False, "BN after each hidden Dense, before its activation (8c)")
    input_batch_norm: bool = option(False, "an extra BN on the flattened inputs (optional in 8c)")
    dropout: str = option("none", "none | dropout | alpha: a dropout layer before the output layer (8e)")
    dropout_rate: float = option(0.1, "the rate of that dropout layer")
    input_scaling: str = option(
        "unit",
        "how pixels reach the first layer, inside the model: unit (/255) | standardize (per-feature, "
        "what SELU assumes) | none (raw 0-255)",
    )

    def __post_init__(self) -> None:
        require(self.depth >= 1, f"--depth must be >= 1, got {self.depth}")
        require(self.width >= 1, f"--width must be >= 1, got {self.width}")
        one_of(self.dropout, DROPOUT_KINDS, "--dropout")
        require(0.0 <= self.dropout_rate < 1.0, f"--dropout-rate must be in [0, 1), got {self.dropout_rate}")
        one_of(self.input_scaling, INPUT_SCALINGS, "--input-scaling")
        # Resolved by Keras now, not when the model is built: by then the run folder exists.
        for kind in (ACTIVATION, INITIALIZER):
            problem = name_problem(kind, getattr(self, kind))
            require(problem is None, problem or "")


# The early-stopping budget every comparison uses (exercise parts trained with Nadam, the optimizer
# and schedule studies): one patience for every arm, chosen before looking at any arm's curves,
# and a cap far past where any arm's best epoch has been seen (docs/design-notes.md). A run whose
# best epoch falls within `patience` of its cap is cap-limited (`training.history.cap_limited`).
BUDGET_PATIENCE = 10
BUDGET_MAX_EPOCHS = 100


@dataclass(frozen=True)
class TrainConfig:
    lr: float | str | None = option(None, "learning rate; None: the variant's textbook LR; auto: LR search")
    batch_size: int = option(32, "the textbook's batch size")
    epochs: int = option(100, "at most this many epochs; early stopping usually ends sooner")
    patience: int = option(20, "early-stopping patience on validation loss, as in the textbook")
    seed: int = option(42, "seeds Python, NumPy and the backend (keras.utils.set_random_seed)")
    optimizer: str = option(
        "nadam",
        "nadam (8b-e) | sgd (8f, with --momentum; 0: plain SGD) | nesterov | adagrad | rmsprop | adam | adamax | "
        "adamw: Keras's, with the textbook's hyperparameters",
    )
    schedule: str = option(
        "constant",
        "constant | power | exponential | piecewise (stepped per batch) | performance (ReduceLROnPlateau) | "
        "1cycle (8f; stepped per batch): the textbook's forms, starting from --lr (1cycle: peaking at it)",
    )
    momentum: float = option(
        0.9, "momentum of sgd and nesterov (the 1cycle schedule cycles it inversely to the LR instead)"
    )

    def __post_init__(self) -> None:
        if isinstance(self.lr, str):
            require(self.lr == "auto", f"--lr must be a positive number or 'auto', got {self.lr!r}")
        elif self.lr is not None:
            require(math.isfinite(self.lr) and self.lr > 0, f"--lr must be a positive number or 'auto', got {self.lr}")
        require(self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}")
        require(self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}")
        require(self.patience >= 1, f"--patience must be >= 1, got {self.patience}")
        check_seeds(self.seed)
        one_of(self.optimizer, OPTIMIZERS, "--optimizer")
        one_of(self.schedule, SCHEDULES, "--schedule")
        require(0.0 <= self.momentum < 1.0, f"--momentum must be in [0, 1), got {self.momentum}")


@dataclass(frozen=True)
class LRSearchConfig:
    """How `--lr auto` searches: an LR range test proposes, a short Optuna search decides."""

    rule: str = option("minimum", f"range-test suggestion rule: {' | '.join(RULES)}")
    finder_start_lr: float = option(1e-7, "the range test's first LR")
    finder_end_lr: float = option(10.0, "the range test's last LR (it stops sooner when the loss blows up)")
    finder_steps: int | None = option(None, "range-test batches; None: one epoch at --batch-size, at most 1000")
    candidates: int = option(5, "LRs tried by the confirming search, log-spaced from suggestion/10 to suggestion*3")
    search_epochs: int = option(3, "epochs per candidate; Optuna's MedianPruner stops poor ones sooner")
    search_subset: int | None = option(10_000, "candidates train on the first N training images; None: all")

    def __post_init__(self) -> None:
        one_of(self.rule, list(RULES), "--rule")
        require(
            0 < self.finder_start_lr < self.finder_end_lr < math.inf,
            f"need 0 < --finder-start-lr < --finder-end-lr < inf, got {self.finder_start_lr} and {self.finder_end_lr}",
        )
        require(
            self.finder_steps is None or self.finder_steps >= 2, f"--finder-steps must be >= 2, got {self.finder_steps}"
        )
        require(self.candidates >= 1, f"--candidates must be >= 1, got {self.candidates}")
        require(self.search_epochs >= 1, f"--search-epochs must be >= 1, got {self.search_epochs}")
        require(
            self.search_subset is None or self.search_subset > 0,
            f"--search-subset must be positive, got {self.search_subset}",
        )


@dataclass(frozen=True)
class Variant:
    """A named preset: the model of one exercise part and its textbook learning rate."""

    model: ModelConfig
    textbook_lr: float
    description: str


# The textbook's hand-searched learning rates are the defaults, so `dnnlab train --variant V`
# reproduces the book without a search; `--lr auto` searches instead.
VARIANTS: dict[str, Variant] = {
    "elu": Variant(ModelConfig(), textbook_lr=5e-5, description="8a/b: 20 x Dense(100), He-normal, ELU, pixels/255"),
    # With the input BN (docs/design-notes.md: 54.5% vs 50.4% at lr 5e-4, seed 42).
    "bn": Variant(
        ModelConfig(batch_norm=True, input_batch_norm=True),
        textbook_lr=5e-4,
        description="8c: as elu, with BatchNormalization on the inputs and before each activation",
    ),
    "selu": Variant(
        ModelConfig(activation="selu", initializer="lecun_normal", input_scaling="standardize"),
        textbook_lr=7e-4,
        description="8d: self-normalizing: LeCun-normal, SELU, standardized inputs",
    ),
    "alpha-dropout": Variant(
        ModelConfig(activation="selu", initializer="lecun_normal", input_scaling="standardize", dropout="alpha"),
        textbook_lr=5e-4,
        description="8e: selu plus AlphaDropout(0.1) before the output layer",
    ),
}


def variant(name: str) -> Variant:
    """The preset called `name`, or a one-line error listing the known ones."""
    if name not in VARIANTS:
        raise ConfigError(f"unknown --variant {name!r}; choose one of: {', '.join(VARIANTS)}")
    return VARIANTS[name]


@dataclass(frozen=True)
class RunConfig:
    variant: str = option("elu", "which preset the model fields started from (recorded for reports)")
    name: str | None = option(None, "run folder name under --out; None: the variant's name")
    out: str = option("runs", "parent folder of run folders")
    tensorboard: bool = option(
        True, "write TensorBoard event files (curves, LR, HParams) into the run folder as it trains"
    )
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    lr_search: LRSearchConfig = field(default_factory=LRSearchConfig)

    def __post_init__(self) -> None:
        variant(self.variant)  # validates the name
        nonempty(self.name, "--name")
        nonempty(self.out, "--out")

    @property
    def lr(self) -> float | str:
        """The learning rate to use: the explicit one, or the variant's textbook LR."""
        return self.train.lr if self.train.lr is not None else variant(self.variant).textbook_lr

    @property
    def run_dir(self) -> Path:
        return Path(self.out) / (self.name or self.variant)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        """Rebuild a config saved by `to_dict`; unknown keys are an error, not silently dropped."""
        top = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - top
        require(not unknown, f"unknown config keys: {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        for key, value in raw.items():
            if key in SECTIONS:
                known = {f.name for f in dataclasses.fields(SECTIONS[key])}
                bad = set(value) - known
                require(not bad, f"unknown {key} config keys: {', '.join(sorted(bad))}")
                kwargs[key] = SECTIONS[key](**value)
            else:
                kwargs[key] = value
        return cls(**kwargs)

    @classmethod
    def from_json(cls, path: str | Path) -> RunConfig:
        raw = read_json(path)
        if not isinstance(raw, dict):
            raise ConfigError(f"cannot read config {path} (missing or not JSON); pass a JSON file saved by dnnlab")
        return cls.from_dict(raw)


# The nested sections of a RunConfig: from_dict rebuilds them, and the CLI makes their flags.
SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "lr_search": LRSearchConfig,
}
TOP_LEVEL = ("name", "out", "tensorboard")  # RunConfig's own flags (`variant` has its own, with the preset's fields)


def for_variant(name: str, **train_overrides: Any) -> RunConfig:
    """A `RunConfig` for preset `name`, with optional `TrainConfig` overrides."""
    return RunConfig(variant=name, model=variant(name).model, train=TrainConfig(**train_overrides))


# ---------------------------------------------------------------------------------------------
# Comparing saved configs. Used by resume (a run folder holding another config is refused) and by
# search (a worker with other settings is refused), so both judge and word differences alike.

# Fields that say where a run lives, where its data is read from or what it records besides its
# results, not what it computes: a run folder may be moved, the data found elsewhere (another
# machine of a search), or the TensorBoard logs switched on or off, and the run still counts.
BOOKKEEPING_FIELDS = frozenset({"out", "name", "tensorboard", "data.data_dir", "data.download"})


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences(saved: dict[str, Any], wanted: dict[str, Any], ignore: frozenset[str] = frozenset()) -> list[str]:
    """`field: saved -> wanted` for every (dotted) field that differs, except those in `ignore`.

    `wanted` is compared as JSON sees it (as `saved` was written), so tuples, lists and float
    spellings compare equal.
    """
    old, new = _flatten(saved), _flatten(json.loads(json.dumps(wanted)))
    missing = "<absent>"
    return [
        f"{key}: {old.get(key, missing)!r} -> {new.get(key, missing)!r}"
        for key in sorted((old.keys() | new.keys()) - ignore)
        if old.get(key, missing) != new.get(key, missing)
    ]


def config_differences(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """`differences` of two run configs in what they compute (`BOOKKEEPING_FIELDS` do not count)."""
    return differences(saved, wanted, BOOKKEEPING_FIELDS)


def without_bookkeeping(raw: dict[str, Any]) -> dict[str, Any]:
    """A saved run config (`RunConfig.to_dict`) without its `BOOKKEEPING_FIELDS`."""
    flat = {key: value for key, value in _flatten(raw).items() if key not in BOOKKEEPING_FIELDS}
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested
