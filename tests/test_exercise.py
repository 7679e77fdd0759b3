"""`dnnlab exercise`: the pipeline on synthetic data, its tables against the run folders, reuse
on rerun, and the answer sentences fed with scripted results."""

import base64
import contextlib
import csv
import dataclasses
import io
import json
import re
import shutil
import types
from pathlib import Path

import numpy as np
import pytest

from dnnlab.config import ConfigError
from dnnlab.errors import DnnlabError
from dnnlab.exercise import run as exercise
from dnnlab.exercise.comparisons import noise_json, noise_levels, read_noise
from dnnlab.exercise.config import EXERCISE_PARTS, ExerciseConfig
from dnnlab.exercise.prose import answers
from dnnlab.exercise.records import RunRecord
from dnnlab.exercise.report import describe_run, write_report
from dnnlab.exercise.run import Progress, part_config, run_exercise
from dnnlab.exercise.tables import results_json, table_rows
from dnnlab.provenance import describe_device, device_info
from dnnlab.stats import NoiseLevel
from dnnlab.training.train import Result
from dnnlab.uncertainty.report import REPORT_FILE as MC_FILE
from tests.conftest import synthetic_splits

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def quick_config(out: Path, **fields) -> ExerciseConfig:
    fields = {"quick": True, "quick_epochs": 2, "mc_samples": 5, **fields}
    return ExerciseConfig(out=str(out), **fields)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The whole quick pipeline, every part with its LR search, once, on small synthetic data."""
    out = tmp_path_factory.mktemp("exercise")
    # Noisy enough that part f's range test diverges before its last LR, as it does on CIFAR-10;
    # on cleaner toy data SGD's loss still falls at lr 10, the "minimum" rule says 1 and f diverges.
    splits = synthetic_splits(n_train=256, n_valid=128, n_test=128, noise=250)
    stream = io.StringIO()
    with contextlib.redirect_stdout(stream):
        result = run_exercise(quick_config(out), splits=splits, verbose=0)
    return out, splits, result, stream.getvalue()


# ---------------------------------------------------------------------------------------------
# The pipeline


def test_every_run_logs_to_tensorboard_and_the_report_names_the_device(quick_run):
    out, _, result, _ = quick_run
    for key, part in EXERCISE_PARTS.items():
        assert list((out / f"{key}-{part.name}" / "seed-42" / "tensorboard" / "validation").glob("*tfevents*")), key
    assert f"Trained on {describe_device(device_info())}." in (out / "report.md").read_text()


def test_quick_run_writes_every_file(quick_run):
    out, _, result, _ = quick_run
    for name in (
        "report.md",
        "report.html",
        "results.csv",
        "results.json",
        "runs.csv",
        "curves_epoch.png",
        "curves_time.png",
        "lr_finder.png",
        "accuracy.png",
        "mc_dropout.png",
    ):
        assert (out / name).stat().st_size > 0, name
    for key in EXERCISE_PARTS:
        assert (out / f"{key}-{EXERCISE_PARTS[key].name}" / "seed-42" / "metrics.json").exists()
    assert (out / "e-alpha-dropout" / "seed-42" / MC_FILE).exists()


def test_html_embeds_every_figure_as_png(quick_run):
    out, _, result, _ = quick_run
    html = (out / "report.html").read_text()
    images = re.findall(r"src='data:image/png;base64,([^']+)'", html)
    # curves per epoch and against time, LR finders, accuracy bars, MC Dropout, its reliability and coverage
    assert len(images) == 7
    for data in images:
        raw = base64.b64decode(data)
        assert raw.startswith(PNG_SIGNATURE)
        from matplotlib.image import imread

        assert imread(io.BytesIO(raw), format="png").shape[0] > 100
    markdown = (out / "report.md").read_text()
    assert "](curves_epoch.png)" in markdown and "47.6" in markdown  # the book's 8a/b figure


def test_tables_equal_the_run_folders(quick_run):
    out, _, result, _ = quick_run
    results = json.loads((out / "results.json").read_text())
    with open(out / "results.csv", newline="") as handle:
        summary_rows = {row["part"]: row for row in csv.DictReader(handle)}
    with open(out / "runs.csv", newline="") as handle:
        run_rows = {row["part"]: row for row in csv.DictReader(handle)}
    assert [p["part"] for p in results["parts"]] == list(EXERCISE_PARTS)
    for part in results["parts"]:
        (run,) = part["runs"]
        metrics = json.loads((Path(run["run_dir"]) / "metrics.json").read_text())
        metrics["lr_search_seconds"] = metrics["lr_search"]["seconds"]
        assert metrics["lr"] == metrics["lr_search"]["chosen_lr"]
        for key in (
            "lr",
            "epochs_run",
            "best_epoch",
            "valid_accuracy",
            "valid_loss",
            "test_accuracy",
            "test_loss",
            "train_seconds_per_epoch",
            "train_cpu_seconds_per_epoch",
            "time_to_best_seconds",
            "lr_search_seconds",
            "wall_seconds",
        ):
            assert run[key] == metrics[key], (part["part"], key)
            assert part["summary"][key]["mean"] == metrics[key]
            assert float(summary_rows[part["part"]][f"{key}_mean"]) == pytest.approx(metrics[key], rel=1e-12)
            assert float(run_rows[part["part"]][key]) == pytest.approx(metrics[key], rel=1e-12)
    e_part = results["parts"][list(EXERCISE_PARTS).index("e")]
    mc = json.loads((Path(e_part["runs"][0]["run_dir"]) / MC_FILE).read_text())
    assert e_part["summary"]["mc_valid_accuracy"]["mean"] == mc["valid"]["mc"]["accuracy"]
    assert e_part["summary"]["mc_test_accuracy"]["mean"] == mc["test"]["mc"]["accuracy"]
    metrics_e = json.loads((Path(e_part["runs"][0]["run_dir"]) / "metrics.json").read_text())
    # The deterministic scores of the MC comparison are the same model's scores as in metrics.json.
    assert mc["valid"]["deterministic"]["accuracy"] == pytest.approx(metrics_e["valid_accuracy"], abs=1e-6)
    assert mc["samples"] == 5 and mc["seed"] == 42


def test_report_table_shows_the_measured_numbers(quick_run):
    out, _, result, _ = quick_run
    header, rows = table_rows(result.records)
    row_a = rows[0]
    metrics = result.records[0].metrics
    assert row_a[header.index("valid acc %")] == f"{100 * metrics['valid_accuracy']:.1f}"
    assert row_a[header.index("book valid acc %")] == "47.6"
    assert f"{100 * metrics['valid_accuracy']:.1f}" in (out / "report.md").read_text()


def test_progress_names_part_seed_and_phase(quick_run):
    _, _, _, log = quick_run
    assert re.search(r"\[exercise \d+:\d\d\] part c \(bn\), seed 1/1: LR search, then training", log)
    assert "part e (alpha-dropout), seed 1/1: MC Dropout (5 samples)" in log
    assert "writing the report" in log


def test_progress_line_format(capsys):
    progress = Progress(3, clock=iter([10.0, 93.9, 93.9, 3700.0]).__next__)
    assert progress.line("training (lr=0.001)", "c", 1) == "[exercise 1:23] part c (bn), seed 2/3: training (lr=0.001)"
    progress("writing the report")
    assert capsys.readouterr().out.splitlines() == ["[exercise 1:23] writing the report"]
    assert progress.line("writing the report") == "[exercise 61:30] writing the report"


def test_rerun_reuses_completed_parts_and_trains_only_what_is_missing(quick_run, tmp_path, monkeypatch, capsys):
    out, splits, _, _ = quick_run
    copy = tmp_path / "moved"
    shutil.copytree(out, copy)  # a moved output folder is still the same experiment
    trained = []
    # Records are read back from the folder, so a stand-in that trains nothing is enough here.
    monkeypatch.setattr(
        exercise,
        "train",
        lambda config, *a, **k: (
            trained.append(config.variant) or Result(config.run_dir, {"status": "completed"}, {}, None)
        ),
    )
    monkeypatch.setattr(exercise, "score_mc_dropout", lambda *a, **k: pytest.fail("MC Dropout must be reused"))
    config = quick_config(copy)
    capsys.readouterr()
    run_exercise(config, splits=splits, verbose=0)
    assert trained == []
    assert capsys.readouterr().out.count("reusing the completed run") == len(EXERCISE_PARTS)

    metrics_path = copy / "c-bn" / "seed-42" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics_path.write_text(json.dumps({**metrics, "status": "interrupted"}))
    run_exercise(config, splits=splits, verbose=0)
    assert trained == ["bn"], "an interrupted run is handed back to train(), which resumes it"

    metrics_path.write_text(json.dumps({**metrics, "status": "diverged"}))
    capsys.readouterr()
    result = run_exercise(config, splits=splits, verbose=0)
    assert trained == ["bn"], "a diverged run would diverge again: it is reused, not retrained"
    assert "part c (bn), seed 1/1: reusing the diverged run" in capsys.readouterr().out
    assert "part c seed 42: diverged" in result.report_files["md"].read_text()


def test_a_changed_setting_is_not_reused(quick_run, tmp_path, monkeypatch):
    out, splits, _, _ = quick_run
    shutil.copytree(out / "a-elu", tmp_path / "a-elu")
    trained = []

    class Retrained(Exception):
        pass

    def fake_train(config, *args, **kwargs):
        trained.append(config.train.epochs)
        raise Retrained  # only the decision to retrain is under test

    monkeypatch.setattr(exercise, "train", fake_train)
    with pytest.raises(Retrained):
        run_exercise(quick_config(tmp_path, parts="a", quick_epochs=3), splits=splits)
    assert trained == [3]


def test_an_interrupted_run_stops_the_exercise_before_the_report(tmp_path, monkeypatch, capsys):
    trained = []
    monkeypatch.setattr(
        exercise,
        "train",
        lambda config, *a, **k: (
            trained.append(config.variant)
            or Result(config.run_dir, {"status": "interrupted", "signal": "SIGINT"}, {}, None)
        ),
    )
    # In this process (jobs=1), where `train` can be replaced; test_parallel_runs stops workers.
    result = run_exercise(quick_config(tmp_path, jobs=1), splits=synthetic_splits(n_train=64, n_valid=32, n_test=32))
    assert trained == ["elu"], "nothing runs after the interrupted part"
    assert result.stopped_by == "SIGINT" and result.report_files == {}
    assert not (tmp_path / "report.html").exists()
    assert "run the same command again to resume" in capsys.readouterr().out


def test_a_diverged_run_is_named_and_left_out_of_the_tables(tmp_path):
    good = record("a", seed=42, valid_acc=0.48)
    diverged = record("a", seed=43, valid_acc=0.10, run_dir=tmp_path / "a-elu" / "seed-43")
    diverged.metrics["status"] = "diverged"
    header, rows = table_rows([good, diverged])
    assert rows[0][header.index("seeds")] == "1" and rows[0][header.index("valid acc %")] == "48.0"
    files = write_report([good, diverged], ExerciseConfig(out=str(tmp_path), parts="a", seeds=2))
    assert "Left out of every table and answer: part a seed 43: diverged" in files["md"].read_text()


# ---------------------------------------------------------------------------------------------
# Configs of the parts


def test_part_configs_follow_the_exercise():
    config = ExerciseConfig()
    f = part_config(config, "f", seed=7)
    assert f.variant == "alpha-dropout" and f.model.dropout == "alpha" and f.model.activation == "selu"
    assert (f.train.optimizer, f.train.schedule, f.train.batch_size, f.train.epochs) == ("sgd", "1cycle", 128, 15)
    assert f.train.lr == "auto" and f.train.seed == 7
    # e trains at f's batch size (f's comparison is then optimizer and schedule only); a, c, d at the book's 32.
    assert part_config(config, "e", 7).train.batch_size == 128
    assert {part_config(config, key, 7).train.batch_size for key in "acd"} == {32}
    c = part_config(config, "c", seed=42)
    assert c.model.batch_norm and c.model.input_batch_norm, "the book's 8c net normalizes its inputs too"
    assert c.train.optimizer == "nadam" and c.data.subset is None
    assert c.run_dir == Path("runs/exercise/c-bn/seed-42")
    assert part_config(ExerciseConfig(lr="textbook"), "a", 42).train.lr == 5e-5
    assert part_config(ExerciseConfig(lr="textbook"), "f", 42).train.lr == 5e-2
    assert c.lr_search.finder_steps is None  # one epoch, the search's own default
    quick = part_config(ExerciseConfig(quick=True, lr=1e-3), "f", 42)
    assert quick.data.subset == 2000 and quick.train.epochs == 3 and quick.train.lr == 1e-3
    assert quick.lr_search.finder_steps == 300
    assert quick.run_dir.parts[:2] == ("runs", "exercise-quick")


def test_parts_and_seeds_are_validated():
    assert ExerciseConfig(parts="f, b,c").part_keys == ("a", "c", "f")
    with pytest.raises(ConfigError, match="--parts"):
        ExerciseConfig(parts="a,g")
    with pytest.raises(ConfigError, match="--seeds"):
        ExerciseConfig(seeds=0)
    with pytest.raises(ConfigError, match="--lr"):
        ExerciseConfig(lr="fast")


def test_cli_flags_reach_the_config(monkeypatch):
    from dnnlab import cli

    seen = []
    files = {"html": "r.html", "md": "r.md", "csv": "r.csv"}
    monkeypatch.setattr(
        exercise,
        "run_exercise",
        lambda config: seen.append(config) or types.SimpleNamespace(report_files=files, stopped_by=None),
    )
    assert cli.main(["exercise", "--seeds", "3", "--parts", "a,c", "--quick", "--lr", "textbook"]) == 0
    assert seen == [ExerciseConfig(seeds=3, parts="a,c", quick=True, lr="textbook")]
    assert cli.main(["exercise", "--no-tensorboard"]) == 0
    assert seen[-1] == ExerciseConfig(tensorboard=False)
    assert part_config(seen[-1], "a", 42).tensorboard is False and part_config(ExerciseConfig(), "a", 42).tensorboard
    assert cli.main(["exercise", "--parts", "z"]) == 2
    monkeypatch.setattr(exercise, "run_exercise", lambda config: types.SimpleNamespace(stopped_by="SIGINT"))
    assert cli.main(["exercise"]) == 130


# ---------------------------------------------------------------------------------------------
# Answers from scripted results


def record(
    part,
    seed=42,
    valid_acc=0.48,
    test_acc=0.47,
    losses=(1.8, 1.6, 1.5, 1.45, 1.47),
    epoch_time=5.0,
    cpu_time=None,
    mc=None,
    lr=1e-3,
    run_dir=Path("/nowhere"),
    max_epochs=100,
):
    """A run folder's figures as the report reads them; its first epoch costs 10 s more (compiling)."""
    losses = list(losses)
    best = int(np.argmin(losses))
    cpu_time = 2 * epoch_time if cpu_time is None else cpu_time
    wall = [epoch_time + 10.0] + [epoch_time] * (len(losses) - 1)
    cpu = [cpu_time + 20.0] + [cpu_time] * (len(losses) - 1)
    return RunRecord(
        part=part,
        seed=seed,
        run_dir=run_dir,
        mc=mc,
        history={
            "val_loss": losses,
            "val_accuracy": [valid_acc] * len(losses),
            "epoch_time": [t + 1.0 for t in wall],
            "train_time": wall,
            "train_cpu_time": cpu,
        },
        metrics={
            "status": "completed",
            "lr": lr,
            "epochs_run": len(losses),
            "best_epoch": best + 1,
            "valid_accuracy": valid_acc,
            "valid_loss": losses[best],
            "test_accuracy": test_acc,
            "test_loss": losses[best] + 0.01,
            "train_seconds_per_epoch": epoch_time if len(losses) > 1 else None,
            "train_cpu_seconds_per_epoch": cpu_time if len(losses) > 1 else None,
            "time_to_best_seconds": epoch_time * (best + 1),
            "wall_seconds": epoch_time * len(losses) + 10,
            "train_size": 45000,
        },
        train=EXERCISE_PARTS[part].train
        if max_epochs is None
        else dataclasses.replace(EXERCISE_PARTS[part].train, epochs=min(EXERCISE_PARTS[part].train.epochs, max_epochs)),
    )


def seeds_of(part, accuracies, **fields):
    return [record(part, seed=42 + i, valid_acc=acc, **fields) for i, acc in enumerate(accuracies)]


def mc_scores(det=0.48, mc=0.49, valid_gap=0.0):
    """mc_dropout.json as `mc_dropout_report` writes it (the figures the answers use)."""
    return {
        "samples": 100,
        "seed": 42,
        "valid": {
            "deterministic": {"accuracy": det + 0.01, "nll": 1.5},
            "mc": {"accuracy": mc + 0.01 + valid_gap, "nll": 1.45},
        },
        "test": {"deterministic": {"accuracy": det, "nll": 1.5}, "mc": {"accuracy": mc, "nll": 1.45}},
    }


def test_the_report_says_when_runs_shared_the_cpu():
    records = [record("a"), record("c")]
    assert "trained at once" in describe_run(records, ExerciseConfig(jobs=2))
    assert "trained at once" not in describe_run(records, ExerciseConfig(jobs=1))


def test_over_three_seeds_every_bn_sentence_carries_its_interval():
    elu = seeds_of("a", (0.48, 0.47, 0.49), losses=(1.8, 1.6, 1.5, 1.45, 1.47), epoch_time=5.0)
    bn = seeds_of("c", (0.530, 0.525, 0.540), losses=(1.5, 1.4, 1.3, 1.35), epoch_time=6.0)
    bn[1] = record("c", seed=43, valid_acc=0.525, losses=(1.5, 1.44, 1.3, 1.35), epoch_time=6.3, cpu_time=12.5)
    text = answers(elu + bn)["c"]
    assert "BN reached elu's best validation loss (1.450 on average over 3 seeds) after 2.0 epochs" in text
    assert "elu after 4.0 (its best epoch)" in text
    # CPU seconds to the target: 2 epochs x 12 s vs 4 x 10 s (the compiling epoch at the steady rate).
    assert re.search(r"was 0\.6\d× \(95% CI 0\.\d\d× to 0\.\d\d×, 3 seeds\): BN converged faster", text)
    assert "53.2 ± 0.8% for BN vs 48.0 ± 1.0% for elu" in text
    assert re.search(
        r"the paired difference is \+5\.2 points \(95% CI \+\d\.\d to \+\d\.\d, 3 seeds\): BN produced a "
        r"better model",
        text,
    )
    assert "first, compiling epoch excluded" in text and "BN made each epoch slower" in text
    assert "The book reported 54.0% vs 47.6%" in text and "Caveat" not in text


def test_seeds_that_disagree_decide_nothing():
    elu = seeds_of("a", (0.48, 0.47, 0.49))
    mixed = seeds_of("d", (0.50, 0.46, 0.52))
    text = answers(elu + mixed)["d"]
    assert "this cannot tell whether SELU produced a better model" in text
    assert "produced a better model" not in text.replace("whether SELU produced a better model", "")
    same = seeds_of("d", (0.481, 0.471, 0.4905))
    assert "accuracies are equal within 1 point" in answers(elu + same)["d"]
    assert answers(elu)["d"].startswith("Not answered: run parts a and d")


def test_one_seed_decides_only_against_a_stored_noise_level():
    elu, bn = record("a", valid_acc=0.48), record("c", valid_acc=0.53, losses=(1.5, 1.4, 1.3, 1.35))
    text = answers([elu, bn])["c"]
    assert "one seed, and no stored noise level to judge it against" in text
    assert ": BN produced a better model" not in text and ": BN converged faster" not in text
    assert "this cannot tell whether BN produced a better model" in text
    noise = {"accuracy c-a": NoiseLevel(std=0.005, n=3, source="dnnlab exercise --seeds 3 at abc1234")}
    text = answers([elu, bn], noise)["c"]
    assert ": BN produced a better model" in text  # 5 points > 4.30 x 0.5
    assert (
        "+5.0 points (one seed: with this comparison's seed-to-seed noise over 3 seeds, it decides only beyond ±2.2"
        in text
    )
    small = record("c", valid_acc=0.495, losses=(1.5, 1.4, 1.3, 1.35))
    assert "this cannot tell whether BN produced a better model" in answers([elu, small], noise)["c"]


def test_faster_is_claimed_only_if_every_seed_reached_the_target():
    elu = seeds_of("a", (0.48, 0.47, 0.49), losses=(1.8, 1.6, 1.5, 1.45, 1.47))
    bn = seeds_of("c", (0.53, 0.52, 0.54), losses=(1.5, 1.4, 1.3, 1.35))
    bn[2] = record("c", seed=44, valid_acc=0.54, losses=(1.9, 1.8, 1.7, 1.6))  # never reaches 1.45
    text = answers(elu + bn)["c"]
    assert "reached elu's best validation loss (1.450 on average over 3 seeds) in only 2 of 3 seeds" in text
    assert "converged faster" not in text


def test_a_cap_limited_run_is_flagged_in_the_table_and_the_answer():
    elu = record("a", losses=(1.8, 1.6, 1.5, 1.45, 1.47))
    capped = record("c", valid_acc=0.53, losses=(1.9, 1.7, 1.5, 1.4, 1.3), max_epochs=5)  # best at its last epoch
    assert capped.cap_limited and not elu.cap_limited
    header, rows = table_rows([elu, capped])
    column = header.index("cap-limited")
    assert [row[column] for row in rows] == ["no", "1 of 1"]
    assert "Caveat: 1 of 2 runs compared here were cap-limited (part c seed 42)" in answers([elu, capped])["c"]
    # A 1cycle run's 15 epochs are its schedule, not a stopping rule: never cap-limited.
    assert not record("f", losses=(1.7, 1.5, 1.4), max_epochs=3).cap_limited


def test_mc_dropout_is_judged_on_the_test_split():
    runs = [
        record("e", seed=42 + i, mc=mc_scores(det=0.48 + d, mc=0.495 + d, valid_gap=-0.03))
        for i, d in enumerate((0.0, 0.005, -0.004))
    ]
    text = answers(runs)["e"]
    assert "test accuracy went from 48.0 ± 0.5% (deterministic) to 49.5 ± 0.5%" in text
    assert "MC Dropout improved accuracy" in text  # on test, whatever validation says
    assert "on validation it went from 49.0 ± 0.5% to 47.5 ± 0.5%" in text
    assert "On test, NLL 1.500 ± 0.000 → 1.450 ± 0.000" in text
    same = [record("e", seed=42 + i, mc=mc_scores(det=0.48 + d, mc=0.481 + d)) for i, d in enumerate((0, 0.01, -0.01))]
    assert "did not change accuracy by 0.5 point or more" in answers(same)["e"]


def test_1cycle_answer_follows_the_numbers():
    nadam = seeds_of("e", (0.49, 0.485, 0.495), losses=(1.8, 1.6, 1.5, 1.45, 1.47), epoch_time=5.0)
    quick = seeds_of("f", (0.52, 0.515, 0.53), losses=(1.7, 1.5, 1.4), epoch_time=2.0)
    text = answers(nadam + quick)["f"]
    assert (
        "1cycle reached its best validation loss at epoch 3 ± 0 of its 15, e (alpha-dropout, Nadam) at epoch 4 ± 0"
        in text
    )
    assert re.search(r"as a ratio to e's, was 0\.30× \(95% CI .*3 seeds\): 1cycle trained faster", text)
    assert "1cycle produced a better model" in text and "The book reported 52.0%" in text
    slow = seeds_of("f", (0.45, 0.44, 0.46), losses=(1.7,) * 9 + (1.6,), epoch_time=3.0)
    text = answers(nadam + slow)["f"]
    assert "1cycle trained more slowly to its best model" in text and "1cycle produced a worse model" in text


def test_stored_noise_levels_come_from_a_multi_seed_run(tmp_path):
    elu = seeds_of("a", (0.48, 0.47, 0.49))
    bn = seeds_of("c", (0.53, 0.515, 0.54))
    levels = noise_levels({"a": elu, "c": bn}, source="scripted")
    assert levels["accuracy c-a"].std == pytest.approx(np.std([0.05, 0.045, 0.05], ddof=1))
    assert levels["accuracy c-a"].n == 3 and levels["accuracy c-a"].source == "scripted"
    path = tmp_path / "noise.json"
    path.write_text(json.dumps(noise_json(levels)))
    assert read_noise(path) == levels
    path.write_text("[]")
    with pytest.raises(DnnlabError, match="cannot read noise levels"):
        read_noise(path)


def test_several_seeds_give_mean_and_std(tmp_path):
    runs = [record("a", seed=42, valid_acc=0.48), record("a", seed=43, valid_acc=0.50)]
    results = results_json(runs)
    summary = results["parts"][0]["summary"]["valid_accuracy"]
    assert summary["mean"] == pytest.approx(0.49) and summary["std"] == pytest.approx(np.std([0.48, 0.5], ddof=1))
    runs[0].metrics["lr_search"] = {"seconds": 30.0, "chosen_lr": 1e-3}
    runs[1].metrics["lr_search"] = {"seconds": 40.0, "chosen_lr": 1e-3}
    header, rows = table_rows(runs)
    assert rows[0][header.index("valid acc %")] == "49.0 ± 1.4"
    assert rows[0][header.index("s LR search")] == "35 ± 7"
    assert rows[0][header.index("seeds")] == "2"


def test_lr_finder_figure_appears_when_a_range_test_ran(tmp_path):
    run_dir = tmp_path / "a-elu" / "seed-42"
    run_dir.mkdir(parents=True)
    lrs = np.geomspace(1e-7, 1, 50)
    rows = "\n".join(f"{lr},{2.3 - 0.1 * i},{2.3 - 0.1 * i}" for i, lr in enumerate(lrs))
    (run_dir / "lr_finder.csv").write_text("lr,loss,smoothed_loss\n" + rows + "\n")
    files = write_report([record("a", run_dir=run_dir)], ExerciseConfig(out=str(tmp_path), parts="a"))
    assert files["figure_lr_finder"].read_bytes().startswith(PNG_SIGNATURE)
    assert "LR range test" in files["md"].read_text()
    assert "Not answered: run parts a and c" in files["md"].read_text()


def test_the_report_names_the_noise_levels_a_one_seed_run_was_judged_against(tmp_path):
    from dnnlab.exercise.report import build_document

    noise = {"accuracy c-a": NoiseLevel(std=0.005, n=3, source="dnnlab exercise --seeds 3 at abc1234")}
    doc = build_document([record("a"), record("c")], ExerciseConfig(out=str(tmp_path)), {}, noise)
    markdown = doc.to_markdown(tmp_path)
    assert markdown.count("measured by dnnlab exercise --seeds 3 at abc1234") == 1
