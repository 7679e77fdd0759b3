"""What every benchmark worker shares: the random data and the stdin/stdout epoch protocol.

Only numpy is imported here, because the TensorFlow reference runs in its own virtualenv
where dnnlab is not installed. Each worker is a long-lived process that builds and compiles
its model once, then trains exactly one epoch per `epoch` line it reads, answering with one
JSON line. The orchestrator (`bench.py`) alternates between workers epoch by epoch, so both
stacks see the same background load from the (shared) machine.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import numpy as np

TRAIN_SIZE = 45_000  # the exercise's training split: 50,000 images minus 5,000 for validation
VALID_SIZE = 5_000  # generated too, so both stacks train on the very same 45,000 images
IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
DATA_SEED = 7


def random_cifar_like(n: int = TRAIN_SIZE + VALID_SIZE, seed: int = DATA_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images of CIFAR-10's shape and int labels: the same arrays in every worker.

    The first `VALID_SIZE` play the validation images, the rest the training images.
    """
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *IMAGE_SHAPE), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, size=n).astype(np.int64)
    return images, labels


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def serve(build: Callable[[], Callable[[], None]]) -> None:
    """Build once (timed), then answer `epoch` lines with the wall and CPU time of one epoch.

    `build()` returns a function that trains one epoch; its first call also compiles, which
    the orchestrator reports as the warm-up.
    """
    started = time.perf_counter()
    train_one_epoch = build()
    send({"event": "ready", "build_seconds": time.perf_counter() - started})
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command != "epoch":
            send({"event": "error", "message": f"unknown command {command!r}"})
            continue
        started, cpu_started = time.perf_counter(), time.process_time()
        train_one_epoch()
        # CPU seconds (all threads) are far less sensitive than wall time to other jobs on the machine.
        send(
            {
                "event": "epoch",
                "seconds": time.perf_counter() - started,
                "cpu_seconds": time.process_time() - cpu_started,
            }
        )
