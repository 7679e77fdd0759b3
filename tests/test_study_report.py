"""`dnnlab study`'s verdicts, ranks, sentences and report, from scripted cells (no training).

The cells are written as a study's trials would store them, with validation accuracies and
learning curves chosen so that each comparison has a known outcome: a decided difference that
agrees with the book, one that disagrees, "the same" within the threshold, and ones the
intervals cannot tell apart.
"""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import optuna
import pytest

from dnnlab.study.book import BETTER, SAME, WORSE, Stars, star_claims
from dnnlab.study.config import OptimizerStudyConfig, ScheduleStudyConfig
from dnnlab.study.report import write_report
from dnnlab.study.results import CellResult, by_option, common_target, identical_options
from dnnlab.study.run import SETTINGS_ATTR
from dnnlab.study.verdicts import AGREES, DISAGREES, NOT_DISTINGUISHABLE, rows

SEEDS = (42, 43, 44)


def curve(reach_at: int, epochs: int = 20, start: float = 2.3, floor: float = 1.0) -> list[float]:
    """A validation-loss curve that first gets to 1.5 at epoch `reach_at` (1-based), then keeps falling."""
    before = [start - (start - 1.51) * i / max(reach_at - 1, 1) for i in range(reach_at - 1)]
    after = [1.5 - (1.5 - floor) * i / (epochs - reach_at) for i in range(epochs - reach_at + 1)]  # ends at floor
    return before + after


def cell(option: str, seed: int, accuracy: float, reach_at: int, best_loss: float = 1.0) -> CellResult:
    losses = curve(reach_at, floor=best_loss)
    # Training CPU seconds: 2 a epoch, the first (compiling) epoch 9.
    times = [9.0] + [2.0] * (len(losses) - 1)
    history = {"val_loss": losses, "val_accuracy": [accuracy] * len(losses), "train_cpu_time": times}
    return CellResult(
        option=option,
        seed=seed,
        lr=1e-3,
        status="completed",
        best_epoch=len(losses),
        epochs_run=len(losses),
        valid_accuracy=accuracy,
        valid_loss=best_loss,
        cap_limited=False,
        history=history,
        train_size=45_000,
    )


def option_cells(option: str, accuracies, reach_at, best_loss: float = 1.0) -> list[CellResult]:
    return [cell(option, s, a, r, best_loss) for s, a, r in zip(SEEDS, accuracies, reach_at)]


# Against Nadam (50/51/52%, the target at epoch 5 in every seed):
SCRIPTED = [
    *option_cells("nadam", (0.50, 0.51, 0.52), (5, 5, 5)),
    # +3 points in every seed (better; the book: at least as good) and 2-2.4x the epochs (slower; the book: slower).
    *option_cells("sgd", (0.53, 0.54, 0.55), (10, 11, 12)),
    # +3 points (better; the book: worse, "stops too early") at the same epochs (the same; the book: as fast).
    *option_cells("adagrad", (0.53, 0.54, 0.55), (5, 5, 5)),
    # -2/+2/+0.5 points and 1/1.2/0.8x the epochs: the intervals cannot tell.
    *option_cells("adam", (0.48, 0.53, 0.525), (5, 6, 4)),
    # Within 0.2 points in every seed: the same quality. Its curves stop at 1.5: the common target.
    *option_cells("adamw", (0.501, 0.511, 0.519), (5, 5, 5), best_loss=1.5),
]
NAMES = ("sgd", "adagrad", "adam", "nadam", "adamw")


def scripted_rows(cells=SCRIPTED, names=NAMES, kind="optimizers"):
    options = by_option(cells, names)
    target = common_target(options)
    return {r.name: r for r in rows(kind, options, target)}, target


def test_the_target_is_the_worst_options_mean_best_loss_and_ranks_count_the_options_measured_better():
    worse = [*SCRIPTED[:3], *option_cells("sgd", (0.53, 0.54, 0.55), (10, 11, 12), best_loss=1.2)]
    options = by_option(worse, ("sgd", "nadam"))
    assert common_target(options) == pytest.approx(1.2)
    table, target = scripted_rows()
    assert target == pytest.approx(1.5)
    # Quality: SGD and AdaGrad beat Nadam and AdamW (decided); nothing separates Adam from anyone.
    assert {n: r.quality_rank for n, r in table.items()} == {"sgd": 1, "adagrad": 1, "adam": 1, "nadam": 3, "adamw": 3}
    # Speed (epochs to the target): SGD is slower than all four others.
    assert {n: r.speed_rank for n, r in table.items()} == {"sgd": 5, "adagrad": 1, "adam": 1, "nadam": 1, "adamw": 1}


def test_each_row_says_whether_the_measurement_agrees_with_the_books_stars():
    table, _ = scripted_rows()
    assert table["sgd"].verdict == AGREES
    assert "on speed the book has it slower than Nadam (★ vs ★★★), and it was slower, with" in table["sgd"].sentence
    assert "on quality the book has it at least as good as Nadam" in table["sgd"].sentence
    assert "validation accuracy vs Nadam at +3.0 points (95% CI +3.0 to +3.0, 3 seeds): agrees" in table["sgd"].sentence
    assert table["adagrad"].verdict == DISAGREES
    assert "worse than Nadam (★ (stops too early) vs ★★ or ★★★), and it was better" in table["adagrad"].sentence
    assert "as fast as Nadam (★★★ vs ★★★), and it was as fast (within 1.25×)" in table["adagrad"].sentence
    assert table["adam"].verdict == NOT_DISTINGUISHABLE
    assert table["adam"].sentence.count("the two could not be told apart") == 2
    assert table["adam"].sentence.count(f": {NOT_DISTINGUISHABLE}") == 2
    assert table["adamw"].verdict == AGREES and "it was as good (within 1 point)" in table["adamw"].sentence
    assert table["nadam"].verdict == "reference" and table["nadam"].book_quality == "★★ or ★★★"
    assert "cap-limited" not in table["sgd"].sentence
    capped = [dataclasses.replace(c, cap_limited=c.option == "sgd" and c.seed == 44) for c in SCRIPTED]
    table, _ = scripted_rows(capped)
    assert table["sgd"].sentence.endswith(
        " 1 of its 3 cells were cap-limited (best epoch within the patience of the epoch cap), so it might have "
        "improved further."
    )


def test_one_seed_decides_nothing_and_a_seed_that_missed_the_target_leaves_speed_unmeasured():
    one_seed = [c for c in SCRIPTED if c.seed == 42]
    table, _ = scripted_rows(one_seed)
    assert all(r.verdict in (NOT_DISTINGUISHABLE, "reference") for r in table.values())
    assert "one seed, and no stored noise level to judge it against; run more seeds" in table["sgd"].sentence
    # SGD's third seed never gets down to Nadam's level: no speed rank, no speed claim.
    slow = [c for c in SCRIPTED if c.option != "sgd"] + option_cells("sgd", (0.53, 0.54, 0.55), (10, 11, 12))[:2]
    stuck = cell("sgd", 44, 0.55, reach_at=10)
    stuck.history["val_loss"][:] = [2.0] * 20
    table, _ = scripted_rows([*slow, stuck])
    assert table["sgd"].speed_rank is None
    assert "it could not be measured: 1 of 3 seeds of sgd never reached the target" in table["sgd"].sentence


def test_schedule_rows_follow_the_books_claims_and_say_so_where_it_makes_none():
    cells = [
        *option_cells("constant", (0.50, 0.51, 0.52), (5, 5, 5)),
        *option_cells("power", (0.50, 0.51, 0.52), (5, 5, 5)),
        *option_cells("exponential", (0.52, 0.53, 0.54), (5, 5, 5)),
        *option_cells("1cycle", (0.51, 0.525, 0.535), (5, 5, 5)),
    ]
    table, _ = scripted_rows(cells, ("constant", "power", "exponential", "1cycle"), "schedules")
    assert table["constant"].verdict == "reference"
    assert table["power"].verdict == "no claim" and "the book makes no claim about it; against Constant" in (
        table["power"].sentence
    )
    assert table["exponential"].verdict == AGREES  # +2 points, at least as good as constant
    # 1cycle against exponential, as the book claims it ("better still"): -1 to -0.5 points, not shown better.
    assert table["1cycle"].verdict == NOT_DISTINGUISHABLE
    assert "better than Exponential (better still than exponential)" in table["1cycle"].sentence


@pytest.mark.parametrize(
    "mine, theirs, agree",
    [
        (Stars(1), Stars(3), {WORSE}),
        (Stars(3), Stars(2, 3), {BETTER, SAME}),
        (Stars(2, 3), Stars(3), {WORSE, SAME}),
        (Stars(2, 3), Stars(2, 3), {SAME}),
        (Stars(1, note="stops too early"), Stars(2, 3), {WORSE}),
    ],
)
def test_stars_become_the_outcomes_that_agree_with_them(mine, theirs, agree):
    assert mine.against(theirs) == agree


def test_the_book_table_as_claims_against_nadam():
    speed, quality = star_claims("momentum", "nadam")
    assert (speed.agree, quality.agree) == ({WORSE}, {BETTER, SAME})
    assert star_claims("nadam", "nadam") == ()


def scripted_study(config, cells) -> optuna.Study:
    study = optuna.create_study(study_name=config.study_name, storage="sqlite:///:memory:")
    study.set_user_attr(SETTINGS_ATTR, config.shared_settings())
    for c in cells:
        attrs = {name: getattr(c, name) for name in CellResult.__dataclass_fields__ if name not in ("trial",)}
        study.add_trial(
            optuna.trial.create_trial(
                value=c.valid_loss,
                params={"option": c.option, "seed": c.seed},
                distributions={
                    "option": optuna.distributions.CategoricalDistribution(list(config.names)),
                    "seed": optuna.distributions.CategoricalDistribution(list(config.seed_list)),
                },
                user_attrs=attrs,
            )
        )
    return study


def test_the_report_writes_its_files_and_puts_the_sentences_and_stars_beside_the_ranks(tmp_path):
    config = OptimizerStudyConfig(optimizers=",".join(NAMES), out=str(tmp_path))
    files = write_report(scripted_study(config, SCRIPTED), config)
    assert {"md", "html", "csv", "cells_csv", "figure_curves_epoch", "figure_curves_time"} <= set(files)
    assert all(path.exists() and path.stat().st_size > 0 for path in files.values())
    md = files["md"].read_text()
    table, _ = scripted_rows()
    assert all(r.sentence in md for r in table.values())
    assert "| SGD | ★ | 5 | ★★★ | 1 | agrees |" in md
    results = {row["option"]: row for row in csv.DictReader(files["csv"].open())}
    assert float(results["sgd"]["valid_accuracy_mean"]) == pytest.approx(0.54)
    assert float(results["sgd"]["epochs_to_target_mean"]) == pytest.approx(11.0)
    assert float(results["sgd"]["seconds_to_target_mean"]) == pytest.approx(22.0)  # compiling counted at 2 s
    assert results["adagrad"]["verdict"] == DISAGREES
    assert len(list(csv.DictReader(files["cells_csv"].open()))) == len(SCRIPTED)


def test_a_schedule_reports_its_lr_per_epoch(tmp_path):
    config = ScheduleStudyConfig(schedules="constant,exponential,performance", out=str(tmp_path))
    cells = [
        *option_cells("constant", (0.50, 0.51, 0.52), (5, 5, 5)),
        *option_cells("exponential", (0.52, 0.53, 0.54), (5, 5, 5)),
        *option_cells("performance", (0.52, 0.53, 0.54), (5, 5, 5)),
    ]
    files = write_report(scripted_study(config, cells), config)
    assert files["figure_schedules"].exists()
    assert "lr0 * 0.1^(t/s), s = 20 epochs (ExponentialDecay)" in files["md"].read_text()


def test_options_that_trained_identically_are_named_and_a_last_digit_is_enough_to_differ():
    adam = option_cells("adam", (0.50, 0.51, 0.52), (5, 6, 7))
    adamw = [dataclasses.replace(c, option="adamw") for c in adam]  # a weight decay that changed nothing
    options = by_option([*SCRIPTED[:3], *adam, *adamw], ("nadam", "adam", "adamw"))
    assert identical_options(options) == [("adam", "adamw", 3)]
    nudged = dataclasses.replace(adamw[1], history={**adamw[1].history, "val_loss": [*adamw[1].history["val_loss"]]})
    nudged.history["val_loss"][-1] = float(np.nextafter(nudged.history["val_loss"][-1], 2.0))
    options = by_option([*SCRIPTED[:3], *adam, adamw[0], nudged, adamw[2]], ("nadam", "adam", "adamw"))
    assert identical_options(options) == []
