"""What ran a run: library versions (and the backend), recorded with every run."""

from __future__ import annotations

import platform
from importlib import metadata


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    import keras

    backend = keras.backend.backend()
    backend_package = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}.get(backend, backend)
    return {
        "python": platform.python_version(),
        "dnnlab": _version("dnnlab"),
        "keras": keras.__version__,
        "backend": backend,
        "backend_version": _version(backend_package),
        "numpy": _version("numpy"),
        "machine": f"{platform.machine()} {platform.system()}",
    }
