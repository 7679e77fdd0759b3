"""What the two studies compare: the textbook's optimizers and LR schedules, and how each is trained.

Every option is a set of `TrainConfig` fields on the exercise's net; nothing here trains. The
book's own ratings of the options are data in `dnnlab.study.book`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OptimizerOption:
    """One row of the book's optimizer table, as `TrainConfig.optimizer` (and momentum) builds it."""

    name: str  # the --optimizers name and the run folder
    title: str  # the book's name for it
    optimizer: str  # TrainConfig.optimizer
    momentum: float  # TrainConfig.momentum (sgd and nesterov only)
    keras: str  # what Keras builds, for the report

    @property
    def train_fields(self) -> dict[str, str | float]:
        """The `TrainConfig` fields that build it."""
        return {"optimizer": self.optimizer, "momentum": self.momentum}


@dataclass(frozen=True)
class ScheduleOption:
    """One of the book's LR schedules, as `TrainConfig.schedule` builds it (`dnnlab.schedules`)."""

    name: str  # the --schedules name and the run folder
    title: str
    schedule: str  # TrainConfig.schedule
    form: str  # the book's form, from the base LR lr0 (the schedule's constants: dnnlab.schedules.decay)


def _optimizers(*options: OptimizerOption) -> dict[str, OptimizerOption]:
    return {option.name: option for option in options}


# The book's Table 11-2 order. Its hyperparameters (momentum 0.9, rho 0.9, betas 0.9/0.999, AdamW's
# weight decay 1e-5) are the ones `dnnlab.models.compile.make_optimizer` gives each optimizer.
OPTIMIZERS = _optimizers(
    OptimizerOption("sgd", "SGD", "sgd", 0.0, "SGD()"),
    OptimizerOption("momentum", "Momentum", "sgd", 0.9, "SGD(momentum=0.9)"),
    OptimizerOption("nesterov", "Nesterov", "nesterov", 0.9, "SGD(momentum=0.9, nesterov=True)"),
    OptimizerOption("adagrad", "AdaGrad", "adagrad", 0.0, "Adagrad()"),
    OptimizerOption("rmsprop", "RMSProp", "rmsprop", 0.0, "RMSprop(rho=0.9)"),
    OptimizerOption("adam", "Adam", "adam", 0.0, "Adam(beta_1=0.9, beta_2=0.999)"),
    OptimizerOption("adamax", "AdaMax", "adamax", 0.0, "Adamax(beta_1=0.9, beta_2=0.999)"),
    OptimizerOption("nadam", "Nadam", "nadam", 0.0, "Nadam(beta_1=0.9, beta_2=0.999)"),
    OptimizerOption("adamw", "AdamW", "adamw", 0.0, "AdamW(weight_decay=1e-5, beta_1=0.9, beta_2=0.999)"),
)

SCHEDULES = {
    option.name: option
    for option in (
        ScheduleOption("constant", "Constant", "constant", "lr0"),
        ScheduleOption("power", "Power", "power", "lr0 / (1 + t/s), s = 5.82 epochs (InverseTimeDecay)"),
        ScheduleOption(
            "exponential", "Exponential", "exponential", "lr0 * 0.1^(t/s), s = 20 epochs (ExponentialDecay)"
        ),
        ScheduleOption("piecewise", "Piecewise constant", "piecewise", "lr0, lr0/2 from epoch 5, lr0/10 from epoch 15"),
        ScheduleOption("performance", "Performance", "performance", "lr0, halved after 5 epochs without progress"),
        ScheduleOption("1cycle", "1cycle", "1cycle", "lr0 → 10·lr0 → lr0 → lr0/1000, in one whole cycle"),
    )
}

# Every row is compared with this one when it runs (else with the first option run).
REFERENCES = {"optimizers": "nadam", "schedules": "constant"}
# --quick: three options, the reference among them.
QUICK = {"optimizers": ("sgd", "adam", "nadam"), "schedules": ("constant", "exponential", "1cycle")}
CATALOGUES: dict[str, dict] = {"optimizers": OPTIMIZERS, "schedules": SCHEDULES}


def title(kind: str, name: str) -> str:
    return CATALOGUES[kind][name].title


def reference(kind: str, names: tuple[str, ...]) -> str:
    """The option every other row is compared with: the kind's reference when it runs, else the first."""
    return REFERENCES[kind] if REFERENCES[kind] in names else names[0]
