"""Speed checks behind two choices of issue 3 (run: .venv/bin/python docs/benchmarks/issue3_speed.py).

1. How to run the LR range test on JAX: a Python loop of `train_on_batch` calls, our
   `LRRangeTest` callback made blocking (Keras waits for every batch's loss before the next
   step), or `LRRangeTest` as shipped (`async_safe`: losses are read in a worker thread).
2. What a batch-end callback such as `TerminateOnNaN` costs a candidate's epoch.

Synthetic CIFAR-shaped data and the `elu` net (20 x Dense(100)); no dataset needed. Prints
the best of a few repetitions, wall and process CPU time, since the 2 cores are shared.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from dnnlab.config import ModelConfig, TrainConfig  # noqa: E402
from dnnlab.lr.range_test import LRRangeTest  # noqa: E402
from dnnlab.models.build import build_model  # noqa: E402
from dnnlab.models.compile import compile_model  # noqa: E402
from dnnlab.schedules.curves import exponential, progress  # noqa: E402

STEPS, BATCH, REPEATS = 500, 32, 3


class BlockingRangeTest(LRRangeTest):
    async_safe = False  # Keras then converts every batch's logs before the next step


def report(title: str, cases: dict, scale: float) -> None:
    """Run the cases in turn `REPEATS` times; print each one's best wall and CPU time, times `scale`."""
    print(title)
    results = {name: [] for name in cases}
    for _ in range(REPEATS):
        for name, run in cases.items():
            cpu, wall = time.process_time(), time.perf_counter()
            run()
            results[name].append((time.process_time() - cpu, time.perf_counter() - wall))
    for name, runs in results.items():
        print(f"  {name:26s} wall {scale * min(w for _, w in runs):6.2f}  cpu {scale * min(c for c, _ in runs):6.2f}")


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (STEPS * BATCH, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, STEPS * BATCH)
    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig())
    compile_model(model, TrainConfig(), 1e-4)
    model.fit(x[:64], y[:64], batch_size=BATCH, verbose=0)  # compile once, outside the timings

    def loop():
        for i in range(STEPS):
            model.optimizer.learning_rate = exponential(progress(i, STEPS), 1e-6, 1e-4)
            float(model.train_on_batch(x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH])[0])

    def fit_with(*callbacks):
        return lambda: model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=list(callbacks))

    cases = {
        "plain fit, no callback": lambda: fit_with()(),
        "train_on_batch loop": loop,
        "LRRangeTest, blocking": lambda: fit_with(BlockingRangeTest(STEPS, 1e-6, 1e-4))(),
        "LRRangeTest (async_safe)": lambda: fit_with(LRRangeTest(STEPS, 1e-6, 1e-4))(),
    }
    report(f"range test, {STEPS} steps of batch {BATCH}: best of {REPEATS}, ms per step", cases, 1000 / STEPS)

    subset = 10_000
    epoch_end = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: None)
    cases = {
        "epoch-end callback only": lambda: model.fit(
            x[:subset], y[:subset], batch_size=BATCH, verbose=0, callbacks=[epoch_end]
        ),
        "plus TerminateOnNaN": lambda: model.fit(
            x[:subset], y[:subset], batch_size=BATCH, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN(), epoch_end]
        ),
    }
    cases["epoch-end callback only"]()  # compile the last partial batch's shape outside the timings
    report(f"one epoch on {subset} images (a search candidate's epoch): best of {REPEATS}, seconds", cases, 1.0)


if __name__ == "__main__":
    main()
