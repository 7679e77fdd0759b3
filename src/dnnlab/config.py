"""Typed, frozen configs: one dataclass per concern, validated on construction.

Every default lives here with a one-line reason. Presets for the exercise's variants are
named `ModelConfig`s (see `VARIANTS`), not copies of code. The CLI only overrides fields
(see `dnnlab.cli_config`), and the resolved `RunConfig` is saved with every run.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnnlab.errors import DnnlabError


class ConfigError(DnnlabError):
    """A config field has a bad value."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


INPUT_SCALINGS = ("none", "unit", "standardize")
DROPOUT_KINDS = ("none", "dropout", "alpha")
OPTIMIZERS = ("nadam", "sgd")
SCHEDULES = ("constant", "1cycle")
RULE_NAMES = ("steepest", "minimum", "valley")  # the LR range test's suggestion rules (dnnlab.lr_finder.RULES)


@dataclass(frozen=True)
class DataConfig:
    data_dir: str | None = None  # folder holding cifar-10-batches-py/; None: $DNNLAB_DATA, then ~/.keras/datasets
    subset: int | None = None  # train on the first N of the 45,000 training images (quick tries); None: all
    valid_size: int = 5000  # the textbook holds out the first 5,000 training images for validation
    download: bool = True  # download the official archive when no local copy is found

    def __post_init__(self) -> None:
        _require(self.subset is None or self.subset > 0, f"--subset must be positive, got {self.subset}")
        _require(0 < self.valid_size < 50_000, f"--valid-size must be in 1..49999, got {self.valid_size}")


@dataclass(frozen=True)
class ModelConfig:
    depth: int = 20  # hidden Dense layers (exercise 8a)
    width: int = 100  # units per hidden layer (exercise 8a)
    activation: str = "elu"  # any Keras activation name for the hidden layers
    initializer: str = "he_normal"  # He init suits ELU/ReLU; SELU needs lecun_normal
    batch_norm: bool = False  # BN after each hidden Dense, before its activation (8c)
    input_batch_norm: bool = False  # an extra BN on the flattened inputs (optional in 8c)
    dropout: str = "none"  # none | dropout | alpha: a dropout layer before the output layer (8e)
    dropout_rate: float = 0.1  # the rate of that dropout layer
    # How pixels reach the first Dense layer. The scaling lives inside the model, so a saved
    # model takes raw 0-255 pixels and needs nothing else to predict:
    #   unit: pixels / 255, enough for He-init ELU/BN nets;
    #   standardize: per-feature (x - mean) / std with training-set statistics, which SELU's
    #     self-normalization assumes (mean 0, variance 1 inputs);
    #   none: raw pixels, as the textbook's notebook did (kept for the logits regression test).
    input_scaling: str = "unit"

    def __post_init__(self) -> None:
        _require(self.depth >= 1, f"--depth must be >= 1, got {self.depth}")
        _require(self.width >= 1, f"--width must be >= 1, got {self.width}")
        _require(
            self.dropout in DROPOUT_KINDS,
            f"--dropout must be one of {', '.join(DROPOUT_KINDS)}, got {self.dropout!r}",
        )
        _require(0.0 <= self.dropout_rate < 1.0, f"--dropout-rate must be in [0, 1), got {self.dropout_rate}")
        _require(
            self.input_scaling in INPUT_SCALINGS,
            f"--input-scaling must be one of {', '.join(INPUT_SCALINGS)}, got {self.input_scaling!r}",
        )


@dataclass(frozen=True)
class TrainConfig:
    lr: float | str | None = None  # learning rate; None: the variant's textbook LR; "auto": LR search
    batch_size: int = 32  # the textbook's batch size
    epochs: int = 100  # at most this many epochs; early stopping usually ends sooner
    patience: int = 20  # early-stopping patience on validation loss, as in the textbook
    seed: int = 42  # seeds Python, NumPy and the backend (keras.utils.set_random_seed)
    optimizer: str = "nadam"  # nadam (8b-e) | sgd (8f, with momentum)
    schedule: str = "constant"  # constant | 1cycle (8f; stepped per batch)
    momentum: float = 0.9  # SGD momentum (the 1cycle schedule cycles it inversely to the LR)

    def __post_init__(self) -> None:
        if isinstance(self.lr, str):
            _require(self.lr == "auto", f"--lr must be a positive number or 'auto', got {self.lr!r}")
        elif self.lr is not None:
            _require(
                math.isfinite(self.lr) and self.lr > 0,
                f"--lr must be a positive number or 'auto', got {self.lr}",
            )
        _require(self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}")
        _require(self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}")
        _require(self.patience >= 1, f"--patience must be >= 1, got {self.patience}")
        _require(
            self.optimizer in OPTIMIZERS,
            f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}",
        )
        _require(
            self.schedule in SCHEDULES,
            f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}",
        )
        _require(0.0 <= self.momentum < 1.0, f"--momentum must be in [0, 1), got {self.momentum}")


@dataclass(frozen=True)
class LRSearchConfig:
    """How `--lr auto` searches: an LR range test proposes, a short Optuna search decides."""

    # `minimum` (a tenth of the LR at the lowest loss) is the textbook's advice (ch. 10: about
    # 10x below where the loss turns up), and it suits both uses of the suggestion: the
    # confirming search tries up to 3x it, still below the turn; and 1cycle (8f) takes it as its
    # peak LR, which the cycle only passes through, between a warm-up and the annealing. On
    # CIFAR-10, `steepest` sat 1.2-5.7x lower on the four variants (docs/benchmarks/issue-3.md),
    # which would spend 1cycle's large-LR phase below the largest LR that still trains well.
    rule: str = "minimum"  # range-test suggestion rule: minimum | steepest | valley
    finder_start_lr: float = 1e-7  # the range test's first LR
    finder_end_lr: float = 10.0  # the range test's last LR (it stops sooner when the loss blows up)
    finder_steps: int | None = None  # range-test batches; None: one epoch at --batch-size, at most 1000
    candidates: int = 5  # LRs tried by the confirming search, log-spaced from suggestion/10 to suggestion*3
    search_epochs: int = 3  # epochs per candidate; Optuna's MedianPruner stops poor ones sooner
    # At most 5 candidates x 3 epochs x 10,000 images ~ 3.3 epochs of the 45,000; with the range
    # test, the measured searches cost 10-26% of the training that followed them (one run per
    # variant, docs/benchmarks/issue-3.md).
    search_subset: int | None = 10_000  # candidates train on the first N training images; None: all

    def __post_init__(self) -> None:
        _require(
            self.rule in RULE_NAMES,
            f"--rule must be one of {', '.join(RULE_NAMES)}, got {self.rule!r}",
        )
        _require(
            0 < self.finder_start_lr < self.finder_end_lr,
            f"need 0 < --finder-start-lr < --finder-end-lr, got {self.finder_start_lr} and {self.finder_end_lr}",
        )
        _require(
            self.finder_steps is None or self.finder_steps >= 2,
            f"--finder-steps must be >= 2, got {self.finder_steps}",
        )
        _require(self.candidates >= 1, f"--candidates must be >= 1, got {self.candidates}")
        _require(self.search_epochs >= 1, f"--search-epochs must be >= 1, got {self.search_epochs}")
        _require(
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
    "elu": Variant(
        ModelConfig(),
        textbook_lr=5e-5,
        description="8a/b: 20 x Dense(100), He-normal, ELU, pixels/255",
    ),
    "bn": Variant(
        ModelConfig(batch_norm=True),
        textbook_lr=5e-4,
        description="8c: as elu, with BatchNormalization before each activation",
    ),
    "selu": Variant(
        ModelConfig(activation="selu", initializer="lecun_normal", input_scaling="standardize"),
        textbook_lr=7e-4,
        description="8d: self-normalizing: LeCun-normal, SELU, standardized inputs",
    ),
    "alpha-dropout": Variant(
        ModelConfig(
            activation="selu", initializer="lecun_normal", input_scaling="standardize", dropout="alpha"
        ),
        textbook_lr=5e-4,
        description="8e: selu plus AlphaDropout(0.1) before the output layer",
    ),
}


def variant(name: str) -> Variant:
    """The preset called `name`, or a one-line error listing the known ones."""
    if name not in VARIANTS:
        raise ConfigError(f"unknown variant {name!r}; choose one of: {', '.join(VARIANTS)}")
    return VARIANTS[name]


@dataclass(frozen=True)
class RunConfig:
    variant: str = "elu"  # which preset the model fields started from (recorded for reports)
    name: str | None = None  # run folder name under `out`; None: derived from the variant
    out: str = "runs"  # parent folder of run folders
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    lr_search: LRSearchConfig = field(default_factory=LRSearchConfig)

    def __post_init__(self) -> None:
        variant(self.variant)  # validates the name

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
        sections = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "lr_search": LRSearchConfig}
        top = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - top
        _require(not unknown, f"unknown config keys: {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        for key, value in raw.items():
            if key in sections:
                known = {f.name for f in dataclasses.fields(sections[key])}
                bad = set(value) - known
                _require(not bad, f"unknown {key} config keys: {', '.join(sorted(bad))}")
                kwargs[key] = sections[key](**value)
            else:
                kwargs[key] = value
        return cls(**kwargs)

    @classmethod
    def from_json(cls, path: str | Path) -> RunConfig:
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}; pass a JSON file saved by dnnlab") from None
        return cls.from_dict(raw)


def for_variant(name: str, **train_overrides: Any) -> RunConfig:
    """A `RunConfig` for preset `name`, with optional `TrainConfig` overrides."""
    return RunConfig(variant=name, model=variant(name).model, train=TrainConfig(**train_overrides))
