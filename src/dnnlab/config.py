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
RULE_NAMES = ("steepest", "minimum", "valley", "turning-point")  # the LR range test's suggestion rules (dnnlab.lr_finder.RULES)


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
    rule: str = "minimum"  # range-test suggestion rule: minimum | steepest | valley | turning-point
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
        # The input BN standardizes the pixels and steadies training: measured at lr 5e-4, seed 42,
        # 54.5% best validation accuracy with it vs 50.4% without (BENCHMARKS.md).
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
        top = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - top
        _require(not unknown, f"unknown config keys: {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        for key, value in raw.items():
            if key in SECTIONS:
                known = {f.name for f in dataclasses.fields(SECTIONS[key])}
                bad = set(value) - known
                _require(not bad, f"unknown {key} config keys: {', '.join(sorted(bad))}")
                kwargs[key] = SECTIONS[key](**value)
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


# The nested sections of a RunConfig: from_dict rebuilds them, and the CLI makes their flags.
SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "lr_search": LRSearchConfig}


def for_variant(name: str, **train_overrides: Any) -> RunConfig:
    """A `RunConfig` for preset `name`, with optional `TrainConfig` overrides."""
    return RunConfig(variant=name, model=variant(name).model, train=TrainConfig(**train_overrides))


# ---------------------------------------------------------------------------------------------
# Exercise 8 as one run (`dnnlab exercise`): each part is a variant plus how the exercise trains it.


@dataclass(frozen=True)
class ExercisePart:
    """One part of exercise 8: a model, how the exercise trains it, and the book's numbers."""

    name: str  # short name for run folders, legends and progress lines
    variant: str  # the preset in VARIANTS the model comes from (recorded in every run)
    model: ModelConfig  # the network
    train: TrainConfig  # batch size, epochs, patience, optimizer, schedule (lr and seed are set per run)
    title: str  # what the part is, for tables and plots
    textbook_lr: float  # the LR the book picked by hand (1cycle: the max LR)
    textbook_valid_accuracy: float  # the book's published validation accuracy (one seed)


# Budgets are chosen for time to accuracy, not the book's patience 20 / 100 epochs. They come
# from runs at seed 42 with --lr auto (docs/benchmarks/issue-2.md, issue-4.md, issue-7.md):
# elu passed the book's 47.6% at epoch 11 and had its best validation loss at 15 (50.0%); bn
# reached 53.1% at 15 and its best at 18 (54.4%); selu and alpha-dropout had theirs at epoch 7.
# Patience 4 then stops a plateau soon after, except for elu, whose validation loss is noisy at
# its small LRs: with seed 44 it went 4 epochs without a new best after epoch 5 and was stopped
# at 46.0% (the bar is 46.6%), while seed 43 was still improving when it stopped at epoch 15.
# So a runs all its 18 epochs (patience = epochs) and keeps its best, as f does.
# Batch size: alpha-dropout (e) trains at 128, as 1cycle (f) does, so that f's comparison with e
# differs only in the optimizer and schedule; an epoch costs about a quarter of one at 32, and
# its best epoch came as early with nearly the same accuracy (49.5% at epoch 6 vs 49.9% at 7).
# a, c and d stay at the book's 32, so that BN and SELU are compared with ELU at one batch size;
# a larger batch also cost accuracy there: elu at 128 reached 47.5% (best epoch 20), bn at 64
# 52.6% (bar: book - 1 point = 53.0%). selu at 128 reached 50.1% at epoch 7.
EXERCISE_PARTS: dict[str, ExercisePart] = {
    "a": ExercisePart(
        "elu", "elu", VARIANTS["elu"].model, TrainConfig(batch_size=32, epochs=18, patience=18),
        "8a/b: ELU + He init, Nadam", textbook_lr=5e-5, textbook_valid_accuracy=0.476,
    ),
    "c": ExercisePart(
        "bn", "bn", VARIANTS["bn"].model, TrainConfig(batch_size=32, epochs=22, patience=4),
        "8c: + Batch Normalization", textbook_lr=5e-4, textbook_valid_accuracy=0.540,
    ),
    "d": ExercisePart(
        "selu", "selu", VARIANTS["selu"].model, TrainConfig(batch_size=32, epochs=15, patience=4),
        "8d: SELU, self-normalizing", textbook_lr=7e-4, textbook_valid_accuracy=0.479,
    ),
    "e": ExercisePart(
        "alpha-dropout", "alpha-dropout", VARIANTS["alpha-dropout"].model,
        TrainConfig(batch_size=128, epochs=15, patience=4),
        "8e: SELU + alpha dropout", textbook_lr=5e-4, textbook_valid_accuracy=0.489,
    ),
    # The book's extra part: the alpha-dropout net with SGD under 1cycle, batch 128, 15 epochs.
    # patience == epochs, so early stopping never cuts the cycle short (best weights still restored).
    "f": ExercisePart(
        "1cycle", "alpha-dropout", VARIANTS["alpha-dropout"].model,
        TrainConfig(batch_size=128, epochs=15, patience=15, optimizer="sgd", schedule="1cycle"),
        "8f: alpha-dropout net, SGD + 1cycle", textbook_lr=5e-2, textbook_valid_accuracy=0.520,
    ),
}
TEXTBOOK_MC_VALID_ACCURACY = 0.489  # the book's MC Dropout validation accuracy for 8e
LR_CHOICES = ("auto", "textbook")


def parse_parts(text: str) -> tuple[str, ...]:
    """`"a,c"` -> `("a", "c")` in exercise order; `b` is `a` (8b trains 8a's network)."""
    keys = [key.strip().lower() for key in text.split(",") if key.strip()]
    keys = ["a" if key == "b" else key for key in keys]
    unknown = [key for key in keys if key not in EXERCISE_PARTS]
    _require(keys and not unknown,
             f"--parts takes a comma-separated subset of a,b,c,d,e,f; got {text!r}")
    return tuple(key for key in EXERCISE_PARTS if key in keys)


@dataclass(frozen=True)
class ExerciseConfig:
    parts: str = "a,c,d,e,f"  # which parts to run, comma-separated (b is a's training: a and b are one part)
    seeds: int = 1  # train every part with this many seeds (seed, seed+1, ...); tables give mean ± std
    seed: int = 42  # the first seed
    lr: float | str = "auto"  # auto: search each part's LR; textbook: the book's LRs; a number: that LR everywhere
    mc_samples: int = 100  # MC Dropout samples for part e, as in the book
    # On 2 cores two ran at 3.5 s/epoch each where one alone took 3.0-3.9 s
    # (docs/benchmarks/issue-7.md). Each holds its own model (~2 GB).
    jobs: int = 2  # runs trained at once, each in its own process; 1: one after another in this process
    quick: bool = False  # a data subset and few epochs: the whole pipeline in about a minute (tries, CI)
    quick_subset: int = 2000  # --quick: train on this many images
    quick_epochs: int = 3  # --quick: at most this many epochs per part
    # The range test smooths its loss over ~50 batches (beta 0.98): with 100 batches for 8 decades
    # of LR, part e's smoothed loss never fell below its first point on real --quick data, and the
    # "minimum" rule proposed 1e-8. 200 more batches cost ~1.5 s a part (a 63-batch epoch took ~0.4 s).
    quick_finder_steps: int = 300  # --quick: LR range-test batches (one epoch of the subset is too short a sweep)
    data_dir: str | None = None  # folder holding cifar-10-batches-py/; None: $DNNLAB_DATA, then ~/.keras/datasets
    out: str | None = None  # where runs and the report go; None: runs/exercise, or runs/exercise-quick with --quick

    def __post_init__(self) -> None:
        parse_parts(self.parts)
        _require(self.seeds >= 1, f"--seeds must be >= 1, got {self.seeds}")
        if isinstance(self.lr, str):
            _require(self.lr in LR_CHOICES, f"--lr must be auto, textbook or a positive number, got {self.lr!r}")
        else:
            _require(math.isfinite(self.lr) and self.lr > 0,
                     f"--lr must be auto, textbook or a positive number, got {self.lr}")
        _require(self.mc_samples >= 1, f"--mc-samples must be >= 1, got {self.mc_samples}")
        _require(self.jobs >= 1, f"--jobs must be >= 1, got {self.jobs}")
        _require(self.quick_subset >= 1, f"--quick-subset must be >= 1, got {self.quick_subset}")
        _require(self.quick_epochs >= 1, f"--quick-epochs must be >= 1, got {self.quick_epochs}")
        _require(self.quick_finder_steps >= 2, f"--quick-finder-steps must be >= 2, got {self.quick_finder_steps}")

    @property
    def part_keys(self) -> tuple[str, ...]:
        return parse_parts(self.parts)

    @property
    def out_dir(self) -> Path:
        return Path(self.out or ("runs/exercise-quick" if self.quick else "runs/exercise"))


SEARCH_PARAMS = ("lr", "dropout", "batch")
BATCH_SIZES = (32, 64, 128, 256, 512)  # the batch sizes a search may pick (the set)


@dataclass(frozen=True)
class SearchConfig:
    study: str | None = None  # study name shared by every worker; None: the variant's name
    storage: str | None = None  # SQLAlchemy URL such as postgresql://user@host/db; None: SQLite under <out>/search/
    trials: int = 20  # finished trials the study should reach, counting every worker and earlier runs
    timeout: float | None = None  # seconds after which this worker starts no new trial; None: no limit
    space: str | None = None  # comma list of lr, dropout, batch; None: lr,batch plus dropout if the model has one
    lr_low: float | None = None  # lowest LR to try; None: the centre / lr_span
    lr_high: float | None = None  # highest LR to try; None: the centre * lr_span
    # Without both bounds, LRs are log-uniform within this factor of a centre: --lr when it is a
    # number, else the LR range test's suggestion (it fits this model and data; the book's LR
    # fits the book's setup).
    lr_span: float = 10.0
    dropout_low: float = 0.05  # lowest dropout rate to try
    dropout_high: float = 0.3  # highest dropout rate to try (the textbook uses 0.1)
    # Optuna's samplers start from random points, and a search that never measures the default
    # can return something worse than it: 3 of 5 recorded 12-trial bn studies did
    # (docs/benchmarks/issue-9.md). A new study therefore starts with the default.
    baseline_trial: bool = True  # trial 0 trains the base config (LR: --lr, else what --lr auto picks)
    # Pruning: from its (prune_warmup_epochs + 1)-th epoch on, a trial stops when its best
    # validation loss so far is worse than this percentile of the finished trials' losses at the
    # same epoch. 50 is the median rule (Optuna's MedianPruner). In three recorded 12-trial bn
    # studies, early ranks did not predict final ones: the --lr auto run, the best in the end,
    # ranked worse than the median at epoch 7 and worse than the 75th percentile at epoch 4-7 in
    # one study. Replayed against all three, 75 and 9 keep it (docs/benchmarks/issue-9.md).
    prune_percentile: float = 75.0  # stop a trial worse than this percentile of the finished ones (50: median rule)
    prune_warmup_epochs: int = 9  # epochs no trial is judged in (early losses rank trials poorly)
    prune_startup_trials: int = 3  # nor before this many trials have finished (nothing to compare with)
    heartbeat_interval: int = 20  # seconds between a running trial's heartbeats in the storage
    grace_period: int = 60  # a trial without a heartbeat for this long is failed (its worker died) and retried
    max_retry: int = 2  # how many times a dead worker's trial is re-run before it stays failed

    def __post_init__(self) -> None:
        _require(self.study is None or self.study.strip() != "", "--study must not be empty")
        _require(self.trials >= 1, f"--trials must be >= 1, got {self.trials}")
        _require(self.timeout is None or self.timeout > 0, f"--timeout must be positive, got {self.timeout}")
        unknown = set(self.space_names) - set(SEARCH_PARAMS)
        _require(
            self.space is None or (self.space_names and not unknown),
            f"--space must be a comma list of {', '.join(SEARCH_PARAMS)}, got {self.space!r}",
        )
        for name in ("lr_low", "lr_high"):
            value = getattr(self, name)
            flag = "--" + name.replace("_", "-")
            _require(value is None or (math.isfinite(value) and value > 0), f"{flag} must be positive, got {value}")
        _require(
            self.lr_low is None or self.lr_high is None or self.lr_low < self.lr_high,
            f"--lr-low ({self.lr_low}) must be below --lr-high ({self.lr_high})",
        )
        _require(self.lr_span > 1, f"--lr-span must be > 1, got {self.lr_span}")
        _require(
            0.0 <= self.dropout_low < self.dropout_high < 1.0,
            f"need 0 <= --dropout-low < --dropout-high < 1, got {self.dropout_low} and {self.dropout_high}",
        )
        _require(0 < self.prune_percentile < 100, f"--prune-percentile must be in (0, 100), got {self.prune_percentile}")
        _require(self.prune_warmup_epochs >= 0, f"--prune-warmup-epochs must be >= 0, got {self.prune_warmup_epochs}")
        _require(
            self.prune_startup_trials >= 0, f"--prune-startup-trials must be >= 0, got {self.prune_startup_trials}"
        )
        _require(self.heartbeat_interval >= 1, f"--heartbeat-interval must be >= 1, got {self.heartbeat_interval}")
        _require(
            self.grace_period > self.heartbeat_interval,
            f"--grace-period ({self.grace_period}) must exceed --heartbeat-interval ({self.heartbeat_interval}), "
            "or live trials would be declared dead",
        )
        _require(self.max_retry >= 0, f"--max-retry must be >= 0, got {self.max_retry}")

    @property
    def space_names(self) -> tuple[str, ...]:
        """The `--space` names as given (empty when `space` is None)."""
        if self.space is None:
            return ()
        return tuple(name.strip() for name in self.space.split(",") if name.strip())
