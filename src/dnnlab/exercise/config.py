"""Exercise 8's parts (a variant plus how the exercise trains it) and `ExerciseConfig`, its options.

Every Nadam part trains under one early-stopping rule (`config.BUDGET_PATIENCE`, and a cap,
`BUDGET_MAX_EPOCHS`, that should not bind); why: docs/design-notes.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from dnnlab.config import (
    BUDGET_MAX_EPOCHS,
    BUDGET_PATIENCE,
    VARIANTS,
    ModelConfig,
    TrainConfig,
    check_seeds,
    check_subset,
    nonempty,
    option,
    require,
)


@dataclass(frozen=True)
class ExercisePart:
    """One part of exercise 8: a variant's model, how the exercise trains it, and the book's numbers."""

    name: str  # short name for run folders, legends and progress lines
    variant: str  # the preset in VARIANTS the model (and the book's LR) come from; recorded in every run
    train: TrainConfig  # batch size, epochs, patience, optimizer, schedule (lr and seed are set per run)
    title: str  # what the part is, for tables and plots
    textbook_valid_accuracy: float  # the book's published validation accuracy (one seed)
    book_lr: float | None = None  # the book's LR where it is not the variant's (8f: the 1cycle's peak)

    @property
    def model(self) -> ModelConfig:
        return VARIANTS[self.variant].model

    @property
    def textbook_lr(self) -> float:
        """The LR the book picked by hand (1cycle: the peak LR)."""
        return self.book_lr if self.book_lr is not None else VARIANTS[self.variant].textbook_lr


def _nadam(batch_size: int) -> TrainConfig:
    """The budget of a Nadam part: early stopping under the one rule every comparison uses."""
    return TrainConfig(batch_size=batch_size, epochs=BUDGET_MAX_EPOCHS, patience=BUDGET_PATIENCE)


EXERCISE_PARTS: dict[str, ExercisePart] = {
    "a": ExercisePart("elu", "elu", _nadam(32), "8a/b: ELU + He init, Nadam", textbook_valid_accuracy=0.476),
    "c": ExercisePart("bn", "bn", _nadam(32), "8c: + Batch Normalization", textbook_valid_accuracy=0.540),
    "d": ExercisePart("selu", "selu", _nadam(32), "8d: SELU, self-normalizing", textbook_valid_accuracy=0.479),
    "e": ExercisePart(
        "alpha-dropout", "alpha-dropout", _nadam(128), "8e: SELU + alpha dropout", textbook_valid_accuracy=0.489
    ),
    # The book's extra part: the alpha-dropout net with SGD under 1cycle, batch 128, 15 epochs. The
    # 15 epochs are the cycle's length, not a stopping rule: patience == epochs, so early stopping
    # never cuts the cycle short (the best weights are still restored).
    "f": ExercisePart(
        "1cycle",
        "alpha-dropout",
        TrainConfig(batch_size=128, epochs=15, patience=15, optimizer="sgd", schedule="1cycle"),
        "8f: alpha-dropout net, SGD + 1cycle",
        textbook_valid_accuracy=0.520,
        book_lr=5e-2,
    ),
}
TEXTBOOK_MC_VALID_ACCURACY = 0.489  # the book's MC Dropout validation accuracy for 8e
LR_CHOICES = ("auto", "textbook")


def parse_parts(text: str) -> tuple[str, ...]:
    """`"a,c"` -> `("a", "c")` in exercise order; `b` is `a` (8b trains 8a's network)."""
    keys = [key.strip().lower() for key in text.split(",") if key.strip()]
    keys = ["a" if key == "b" else key for key in keys]
    unknown = [key for key in keys if key not in EXERCISE_PARTS]
    require(keys and not unknown, f"--parts takes a comma-separated subset of a,b,c,d,e,f; got {text!r}")
    return tuple(key for key in EXERCISE_PARTS if key in keys)


@dataclass(frozen=True)
class ExerciseConfig:
    parts: str = option("a,c,d,e,f", "which parts to run, comma-separated (b is a's training: a and b are one part)")
    seeds: int = option(1, "train every part with this many seeds (seed, seed+1, ...); tables give mean ± std")
    seed: int = option(42, "the first seed")
    lr: float | str = option(
        "auto", "auto: search each part's LR; textbook: the book's LRs; a number: that LR everywhere"
    )
    mc_samples: int = option(100, "MC Dropout samples for part e, as in the book")
    jobs: int = option(
        2, "runs trained at once, each in its own process (~2 GB each); 1: one after another in this process"
    )
    quick: bool = option(False, "a data subset and few epochs: the whole pipeline in about a minute (tries, CI)")
    quick_subset: int = option(2000, "--quick: train on this many images")
    quick_epochs: int = option(3, "--quick: at most this many epochs per part")
    quick_finder_steps: int = option(
        300, "--quick: LR range-test batches (one epoch of the subset is too short a sweep)"
    )
    noise_levels: str | None = option(
        None,
        "one seed: judge its verdicts against this noise_levels.json (written by a multi-seed run); "
        "None: the one shipped with dnnlab",
    )
    data_dir: str | None = option(
        None, "folder holding cifar-10-batches-py/; None: $DNNLAB_DATA, then ~/.keras/datasets"
    )
    tensorboard: bool = option(
        True, "write TensorBoard event files into every run folder (tensorboard --logdir <out> shows them all)"
    )
    out: str | None = option(
        None, "where runs and the report go; None: runs/exercise, or runs/exercise-quick with --quick"
    )

    def __post_init__(self) -> None:
        parse_parts(self.parts)
        require(self.seeds >= 1, f"--seeds must be >= 1, got {self.seeds}")
        check_seeds(self.seed, self.seeds)
        for name in ("noise_levels", "out", "data_dir"):
            nonempty(getattr(self, name), "--" + name.replace("_", "-"))
        check_subset(self.quick_subset, flag="--quick-subset")
        if isinstance(self.lr, str):
            require(self.lr in LR_CHOICES, f"--lr must be auto, textbook or a positive number, got {self.lr!r}")
        else:
            require(
                math.isfinite(self.lr) and self.lr > 0,
                f"--lr must be auto, textbook or a positive number, got {self.lr}",
            )
        require(self.mc_samples >= 1, f"--mc-samples must be >= 1, got {self.mc_samples}")
        require(self.jobs >= 1, f"--jobs must be >= 1, got {self.jobs}")
        require(self.quick_epochs >= 1, f"--quick-epochs must be >= 1, got {self.quick_epochs}")
        require(self.quick_finder_steps >= 2, f"--quick-finder-steps must be >= 2, got {self.quick_finder_steps}")

    @property
    def part_keys(self) -> tuple[str, ...]:
        return parse_parts(self.parts)

    @property
    def out_dir(self) -> Path:
        return Path(self.out or ("runs/exercise-quick" if self.quick else "runs/exercise"))
