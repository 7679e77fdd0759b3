"""notebooks/exercise8.ipynb runs end to end on the real CIFAR-10 (a tiny subset), in a kernel of this
virtualenv, and shows what it promises: the results table, the curves, MC Dropout's effect.

The notebook's parameters cell (tagged "parameters", as papermill does it) is followed by one that
makes the run small, so the test takes about a minute; every other cell runs as stored."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import real_data_dir, requires_real_data

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "exercise8.ipynb"
SMALL = {"PARTS": "a,e", "QUICK_SUBSET": 1000, "QUICK_EPOCHS": 1, "LR": "textbook", "MC_SAMPLES": 5}


def test_the_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert "parameters" in code[0].metadata.get("tags", []) and "RUN_FULL = False" in code[0].source


def outputs(cell) -> dict[str, str]:
    """A cell's outputs by MIME type (stream text under "text"), concatenated."""
    found: dict[str, str] = {}
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            found["text"] = found.get("text", "") + output.text
        for mime, data in output.get("data", {}).items():
            found[mime] = found.get(mime, "") + data
    return found


@pytest.mark.real_data
@pytest.mark.slow
@requires_real_data
def test_the_notebook_runs_end_to_end_on_real_data(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    out = tmp_path / "runs"
    overrides = "\n".join(f"{name} = {value!r}" for name, value in {**SMALL, "OUT": str(out)}.items())
    nb.cells.insert(2, nbformat.v4.new_code_cell(overrides))
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)"))
    client = NotebookClient(
        nb, kernel_name="python3", timeout=600, allow_errors=False, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env={**os.environ, "DNNLAB_DATA": str(real_data_dir())})  # the full env: it replaces the kernel's

    cells = [outputs(cell) for cell in nb.cells]
    assert cells[-1]["text"].strip() == sys.prefix, "the kernel ran in this virtualenv"
    assert "train (1000, 32, 32, 3)" in cells[4]["text"]
    results = json.loads((out / "results.json").read_text())
    assert [part["part"] for part in results["parts"]] == ["a", "e"]
    table = cells[6]["text/html"]
    for part in results["parts"]:
        accuracy = part["summary"]["valid_accuracy"]["mean"]
        assert f"<td>{100 * accuracy:.1f}</td>" in table, part["part"]
    assert cells[8]["image/png"], "the learning curves are shown"
    mc = cells[10]
    assert "MC Dropout (5)" in mc["text/html"] and mc["image/png"]
    assert "MC Dropout changed validation accuracy by" in mc["text"]
    assert "RUN_FULL is False" in cells[12]["text"]
    assert list((out / "a-elu" / "seed-42" / "tensorboard" / "train").glob("events.out.tfevents.*"))
