"""The device record (issue 18): what every run's metrics.json says it trained on, and how reports word it.

This machine has no GPU: the CPU record is checked for real, the GPU record with Keras's device
list and nvidia-smi's answer scripted."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from dnnlab import provenance
from dnnlab.exercise.config import ExerciseConfig
from dnnlab.exercise.report import describe_run
from dnnlab.provenance import describe_device, device_info
from tests.test_exercise import record


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads the CPU model from Linux's /proc/cpuinfo")
def test_on_a_cpu_the_record_names_the_model_and_counts_the_cores():
    model = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    assert provenance.listed_devices() == ["cpu:0"], "precondition: no GPU on this machine"
    assert device_info() == {
        "type": "cpu",
        "name": model.group(1).strip() if model else provenance.cpu_model(),
        "cores": os.cpu_count(),
    }


def test_on_gpus_the_record_names_them_and_counts_what_the_backend_sees(monkeypatch):
    monkeypatch.setattr(provenance, "listed_devices", lambda: ["gpu:0", "gpu:1"])
    monkeypatch.setattr(provenance, "nvidia_gpu_names", lambda: ["NVIDIA A100-SXM4-40GB"] * 2)
    device = device_info()
    assert device == {"type": "gpu", "name": "NVIDIA A100-SXM4-40GB", "count": 2, "devices": ["gpu:0", "gpu:1"]}
    assert describe_device(device) == "GPU: NVIDIA A100-SXM4-40GB (x2)"
    monkeypatch.setattr(provenance, "nvidia_gpu_names", lambda: [])  # no nvidia-smi
    assert device_info()["name"] == "unnamed GPU"


def test_the_cpu_model_comes_from_cpuinfo(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6230\n")
    monkeypatch.setattr(provenance, "CPUINFO", cpuinfo)
    assert provenance.cpu_model() == "Intel(R) Xeon(R) Gold 6230"


def test_reports_word_the_device_and_runs_from_before_the_record():
    cpu = {"type": "cpu", "name": "AMD EPYC", "cores": 2}
    assert describe_device(cpu) == "CPU: AMD EPYC (2 cores)"
    assert "predates" in describe_device(None)
    records = [record("a"), record("c")]
    for r in records:
        r.metrics["device"] = cpu
    assert "Trained on CPU: AMD EPYC (2 cores)." in describe_run(records, ExerciseConfig())
