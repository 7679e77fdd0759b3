"""`search_lr`: the LR range test proposes, a short Optuna search on validation loss decides.

Cost control, so the search stays near 20% of one full training run:
- one model is built and compiled once; the range test restores it, and every candidate
  starts from the same captured weights and optimizer state (no rebuild, no recompile);
- candidates train on the first `search_subset` training images for `search_epochs` epochs;
- Optuna's MedianPruner stops a candidate whose best validation loss so far is worse than
  the median of the finished candidates at the same epoch, and candidates run nearest to
  the suggestion first, so the far-off ones are the ones measured against a median.

The choice uses the validation split only; the test split is never looked at.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from dnnlab.config import RunConfig
from dnnlab.data import Splits
from dnnlab.errors import DnnlabError
from dnnlab.files import write_json_atomic
from dnnlab.lr.finder import PLOT_FILE, RangeTestCurve, lr_find, save_plot
from dnnlab.lr.rules import turning_point
from dnnlab.models import state as model_state
from dnnlab.models.build import build_for
from dnnlab.models.compile import EVAL_BATCH_SIZE, compile_model, evaluate
from dnnlab.models.fused_steps import use_fused_steps

log = logging.getLogger(__name__)

SEARCH_FILE = "lr_search.json"
LOWEST, HIGHEST = 0.1, 3.0  # candidates span suggestion/10 .. suggestion*3 (the range)
# A candidate has diverged when its loss is not finite or its validation loss exceeds this
# multiple of the untrained model's (the range test's stop factor). Nadam's bounded steps
# can keep an exploding loss finite, so NaN alone would miss it.
DIVERGENCE_LOSS_RATIO = 4.0


@dataclass(frozen=True)
class Candidate:
    lr: float
    status: str  # completed | pruned (MedianPruner) | diverged (see DIVERGENCE_LOSS_RATIO)
    history: dict[str, list[float]]  # per epoch: loss, accuracy, val_loss, val_accuracy
    best_val_loss: float | None  # lowest validation loss; None when diverged
    seconds: float


@dataclass(frozen=True)
class LRSearchResult:
    chosen_lr: float
    suggestion: float  # the range test's proposal
    rule: str  # the suggestion rule used
    candidates: list[Candidate]  # in the order they ran; empty for 1cycle (see `search_lr`)
    seconds: float  # the whole search: build, range test and candidates
    range_test: RangeTestCurve
    train_subset: int | None  # training images each candidate used; None without candidates

    def to_dict(self) -> dict[str, Any]:
        """Everything, candidate curves included, for `lr_search.json` (the range test is in lr_finder.csv)."""
        return {
            "chosen_lr": self.chosen_lr,
            "suggestion": self.suggestion,
            "rule": self.rule,
            "seconds": self.seconds,
            "range_test_seconds": self.range_test.seconds,
            "range_test_points": len(self.range_test.lrs),
            "train_subset": self.train_subset,
            "candidates": [asdict(c) for c in self.candidates],
        }

    def summary(self) -> dict[str, Any]:
        """The search without its curves, for `metrics.json`."""
        return search_summary(self.to_dict())


def search_summary(record: dict[str, Any]) -> dict[str, Any]:
    """An `lr_search.json` record without the candidates' curves, as `metrics.json` keeps it.

    Also used for a search read back from its file, when an interrupted run resumes.
    """
    return {
        **record,
        "candidates": [
            {
                "lr": c["lr"],
                "status": c["status"],
                "best_val_loss": c["best_val_loss"],
                "epochs": len(c["history"].get("val_loss", [])),
                "seconds": c["seconds"],
            }
            for c in record.get("candidates", [])
        ],
    }


def candidate_lrs(suggestion: float, count: int) -> list[float]:
    """`count` LRs log-spaced over suggestion/10 .. suggestion*3, nearest to the suggestion first."""
    if count == 1:
        return [suggestion]
    lrs = np.geomspace(suggestion * LOWEST, suggestion * HIGHEST, count)
    order = np.argsort(np.abs(np.log(lrs / suggestion)), kind="stable")
    return [float(lrs[i]) for i in order]


def subset_size(config: RunConfig, train_size: int) -> int:
    """Training images per candidate: `search_subset`, at most all of them."""
    return min(config.lr_search.search_subset or train_size, train_size)


def run_candidates(model: keras.Model, config: RunConfig, splits: Splits, lrs: list[float]) -> list[Candidate]:
    """Train each LR from the model's current state for a few epochs; the model ends as it started.

    Pass a model that has been fit before (`search_lr`'s range test is): Keras's first fit
    peeks at a batch to build its metrics, which shifts that fit's shuffle, so a first
    candidate would see other batches than the rest.
    """
    import optuna  # slow to import, and only the confirming search needs it

    search = config.lr_search
    size = subset_size(config, len(splits.x_train))
    x, y = splits.x_train[:size], splits.y_train[:size]
    initial = model_state.capture(model)
    untrained_loss, _ = evaluate(model, splits.x_valid, splits.y_valid)
    candidates: list[Candidate] = []

    def objective(trial) -> float:
        lr = trial.suggest_float("lr", min(lrs), max(lrs), log=True)
        model_state.restore(model, initial)
        model.optimizer.learning_rate = lr
        keras.utils.set_random_seed(config.train.seed)  # every candidate sees the same batches and masks
        outcome = "completed"

        def report(epoch: int, logs: dict) -> None:
            nonlocal outcome
            val_loss = float(logs.get("val_loss", math.nan))
            if not (math.isfinite(logs.get("loss", math.nan)) and val_loss <= DIVERGENCE_LOSS_RATIO * untrained_loss):
                outcome, model.stop_training = "diverged", True
                return
            trial.report(val_loss, epoch)
            if trial.should_prune():
                outcome, model.stop_training = "pruned", True

        started = time.perf_counter()
        fit = model.fit(
            x,
            y,
            batch_size=use_fused_steps(model, config.train.batch_size),
            epochs=search.search_epochs,
            validation_data=(splits.x_valid, splits.y_valid),
            validation_batch_size=EVAL_BATCH_SIZE,
            # Epoch-end checks only: a batch-end callback (TerminateOnNaN too) makes Keras wait for
            # every batch's loss: 1.1-2.7x the wall time per epoch on the shared cores (measured,
            # docs/benchmarks/issue-3.md). A NaN run wastes at most one subset epoch.
            callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=report)],
            verbose=0,
        )
        history = {key: [float(v) for v in values] for key, values in fit.history.items()}
        finite = [v for v in history.get("val_loss", []) if math.isfinite(v)]
        best = None if outcome == "diverged" or not finite else min(finite)
        candidate = Candidate(lr, outcome, history, best, time.perf_counter() - started)
        candidates.append(candidate)
        val_losses = history.get("val_loss", [math.nan])
        shown = f"best val loss {best:.4f}" if best is not None else f"val loss {val_losses[-1]:.4g}"
        log.info(
            "LR candidate %d/%d lr=%.3g: %s after %d epoch(s), %s, %.1f s",
            len(candidates),
            len(lrs),
            lr,
            shown,
            len(val_losses),
            outcome,
            candidate.seconds,
        )
        if outcome == "diverged":
            return math.nan  # Optuna records a failed trial: it can neither win nor shift the median
        if outcome == "pruned":
            raise optuna.TrialPruned()
        return best

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per candidate is logged above
    try:
        study = optuna.create_study(
            direction="minimize",
            # Prune from the third candidate on, after any epoch, against the finished ones' median.
            pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
        )
        for lr in lrs:
            study.enqueue_trial({"lr": lr})  # a fixed list, not sampled: the sampler is never asked
        study.optimize(objective, n_trials=len(lrs))
    finally:
        optuna.logging.set_verbosity(verbosity)
        model_state.restore(model, initial)
    return candidates


def choose(candidates: list[Candidate]) -> Candidate:
    """The completed candidate with the lowest validation loss (the first on ties)."""
    completed = [c for c in candidates if c.status == "completed" and c.best_val_loss is not None]
    if not completed:
        tried = ", ".join(f"{c.lr:.3g} ({c.status})" for c in candidates)
        raise DnnlabError(f"no LR candidate finished ({tried}); pass a number with --lr, or try --rule minimum")
    return min(completed, key=lambda c: c.best_val_loss)


def search_lr(config: RunConfig, splits: Splits, run_dir: Path) -> LRSearchResult:
    """Range test plus confirming search for `config`; writes lr_finder.csv/.png and lr_search.json.

    With `schedule == "1cycle"` the peak LR is the range test's turning point (the LR at the
    lowest loss; see `dnnlab.lr.rules.turning_point`) with no confirming search (exercise 8f): a few
    epochs at a constant LR would not show how a whole cycle fares.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    keras.utils.set_random_seed(config.train.seed)
    model = build_for(config, splits)
    compile_model(model, config.train, config.lr_search.finder_start_lr)
    finder = lr_find(config, splits, run_dir, model=model)
    if config.train.schedule == "1cycle":
        candidates, chosen = [], turning_point(finder.curve.lrs, finder.curve.smoothed)
    else:
        candidates = run_candidates(
            model, config, splits, candidate_lrs(finder.suggestion, config.lr_search.candidates)
        )
        chosen = choose(candidates).lr
    result = LRSearchResult(
        chosen_lr=chosen,
        suggestion=finder.suggestion,
        rule=finder.rule,
        candidates=candidates,
        seconds=time.perf_counter() - started,
        range_test=finder.curve,
        train_subset=subset_size(config, len(splits.x_train)) if candidates else None,
    )
    save_plot(finder.curve, run_dir / PLOT_FILE, {f"suggestion ({finder.rule})": finder.suggestion, "chosen": chosen})
    write_json_atomic(run_dir / SEARCH_FILE, result.to_dict())
    log.info("LR search chose lr=%.3g in %.1f s", chosen, result.seconds)
    return result
