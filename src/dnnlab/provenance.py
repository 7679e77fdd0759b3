"""What ran a run: library versions (and the backend) and the device it trained on, recorded with every run."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    import keras

    backend = keras.backend.backend()
    # The version of the module Keras runs on (imported by `import keras`), whichever distribution
    # installed it: tensorflow-cpu has no "tensorflow" distribution, and torch's says e.g. 2.13.0+cpu.
    backend_version = getattr(sys.modules.get(backend), "__version__", None) or _version(backend)
    return {
        "python": platform.python_version(),
        "dnnlab": _version("dnnlab"),
        "keras": keras.__version__,
        "backend": backend,
        "backend_version": backend_version,
        "numpy": _version("numpy"),
        "machine": f"{platform.machine()} {platform.system()}",
    }


def listed_devices() -> list[str]:
    """The backend's devices of its default kind, as Keras names them ("gpu:0", "cpu:0"): GPUs or TPUs
    when it has any, else the CPU."""
    import keras

    try:
        return list(keras.distribution.list_devices())
    except (NotImplementedError, AttributeError, RuntimeError):  # a backend without Keras's distribution API
        return ["cpu:0"]


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform reports."""
    try:
        for line in CPUINFO.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def nvidia_gpu_names() -> list[str]:
    """The names `nvidia-smi` reports, one per GPU; empty without it. (Keras names devices only "gpu:N".)"""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def device_info() -> dict[str, Any]:
    """The device a run trains on, for metrics.json.

    On a CPU: {"type": "cpu", "name": CPU model, "cores": logical cores}. On GPUs (or TPUs):
    {"type": "gpu", "name": the GPU model(s), "count": how many the backend sees, "devices": Keras's names}.
    """
    devices = listed_devices()
    kind = devices[0].partition(":")[0] if devices else "cpu"
    if kind == "cpu":
        return {"type": "cpu", "name": cpu_model(), "cores": os.cpu_count()}
    names = nvidia_gpu_names() if kind == "gpu" else []
    return {
        "type": kind,
        "name": ", ".join(dict.fromkeys(names)) or f"unnamed {kind.upper()}",
        "count": len(devices),
        "devices": devices,
    }


def describe_device(device: dict[str, Any] | None) -> str:
    """One line for reports: "CPU: AMD EPYC (2 cores)", "GPU: NVIDIA A100-SXM4-40GB (x2)"."""
    if not device:
        return "not recorded (the run predates the device record)"
    if device.get("type") == "cpu":
        return f"CPU: {device.get('name')} ({device.get('cores')} cores)"
    return f"{str(device.get('type')).upper()}: {device.get('name')} (x{device.get('count')})"
