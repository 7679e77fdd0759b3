"""In Jupyter, the result objects learners meet display as tables (`_repr_html_`), escaped, with the
numbers the files hold."""

from __future__ import annotations

import re
from pathlib import Path

from dnnlab.exercise.run import ExerciseResult
from dnnlab.exercise.tables import table_rows
from dnnlab.report.document import html_table
from dnnlab.training.train import Result
from tests.test_exercise import record


def cells(html: str) -> list[str]:
    return re.findall(r"<t[dh]>(.*?)</t[dh]>", html)


def test_tables_escape_their_cells():
    html = html_table(["a<b"], [["x & y", "`runs/<odd>`"]])
    assert cells(html) == ["a&lt;b", "x &amp; y", "<code>runs/&lt;odd&gt;</code>"]


def test_a_training_result_shows_its_scores():
    metrics = {
        "status": "completed",
        "variant": "bn",
        "lr": 5e-4,
        "epochs_run": 12,
        "best_epoch": 9,
        "valid_accuracy": 0.5432,
        "valid_loss": 1.31234,
        "test_accuracy": 0.5301,
        "test_loss": 1.35,
        "mean_epoch_seconds": 3.456,
        "device": {"type": "cpu", "name": "AMD EPYC", "cores": 2},
    }
    html = Result(run_dir=Path("runs/bn"), metrics=metrics, history={}, model=None)._repr_html_()
    shown = dict(zip(cells(html)[2::2], cells(html)[3::2]))  # after the header row
    assert shown["validation accuracy"] == "54.32%" and shown["test accuracy"] == "53.01%"
    assert shown["validation loss"] == "1.3123" and shown["learning rate"] == "0.0005"
    assert shown["best epoch / epochs run"] == "9 / 12" and shown["seconds per epoch"] == "3.46"
    assert shown["device"] == "CPU: AMD EPYC (2 cores)" and shown["run folder"] == "<code>runs/bn</code>"


def test_an_unfinished_result_shows_dashes_not_errors():
    metrics = {"status": "interrupted", "variant": "elu", "lr": 1e-3, "epochs_run": 0}
    html = Result(run_dir=Path("runs/elu"), metrics=metrics, history={}, model=None)._repr_html_()
    assert "validation accuracy</td><td>—" in html


def test_the_exercise_result_is_the_report_table():
    records = [record("a", valid_acc=0.481), record("c", valid_acc=0.532)]
    result = ExerciseResult(records=records, report_files={"html": Path("runs/exercise/report.html")})
    header, rows = table_rows(records)
    html = result._repr_html_()
    assert cells(html) == [*header, *(cell for row in rows for cell in row)]
    assert "48.1" in rows[0] and "53.2" in rows[1]
    assert "<code>runs/exercise/report.html</code>" in html
    stopped = ExerciseResult(records=[], report_files={}, stopped_by="SIGINT")._repr_html_()
    assert "Interrupted (SIGINT)" in stopped


def test_part_e_shows_mc_dropout_against_the_deterministic_prediction():
    scores = {"accuracy": 0.4912, "nll": 1.4567, "brier": 0.6543, "ece": 0.0321}
    better = {**scores, "accuracy": 0.5023}
    mc = {
        "samples": 100,
        "valid": {"deterministic": scores, "mc": better},
        "test": {"deterministic": scores, "mc": better},
    }
    html = record("e", mc=mc)._repr_html_()
    assert "valid</td><td>MC Dropout (100)</td><td>0.5023</td><td>1.4567</td><td>0.6543</td><td>0.0321" in html
    assert "valid</td><td>deterministic</td><td>0.4912" in html
    assert "MC Dropout" not in record("a")._repr_html_()
