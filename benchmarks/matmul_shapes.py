"""How fast can this machine run the 20x100 net's own matmuls? A bound on any training step.

A training step at batch B multiplies, per Dense layer: the forward A @ W, the weight gradient
A.T @ dZ and, from the second layer on, the input gradient dZ @ W.T. This times each of those
matmuls alone (best of `--repeats`), once with numpy's BLAS and once through `keras.ops.matmul`
on the Keras backend (XLA's dot on JAX; every call also pays one dispatch), and prints the
GFLOP/s and the seconds that one 45,000-image epoch of them takes, next to the square-matmul
ceiling that `bench.py` uses.

    .venv/bin/python benchmarks/matmul_shapes.py --batch 512
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable

import numpy as np

from bench import matmul_ceiling

TRAIN_SIZE = 45_000
LAYER_SIZES = [3072] + [100] * 20 + [10]  # inputs, 20 hidden layers of 100, 10 classes


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: threads, caches, and the backend's compile of this shape
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def step_matmuls(batch: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """(left, right) operand pairs of every matmul in one training step, transposes made explicit."""
    pairs = []
    for layer, (fan_in, fan_out) in enumerate(zip(LAYER_SIZES[:-1], LAYER_SIZES[1:])):
        inputs = rng.standard_normal((batch, fan_in), dtype=np.float32)
        weights = rng.standard_normal((fan_in, fan_out), dtype=np.float32)
        grads = rng.standard_normal((batch, fan_out), dtype=np.float32)
        pairs += [(inputs, weights), (np.ascontiguousarray(inputs.T), grads)]
        if layer > 0:  # the first layer's input gradient is never needed
            pairs.append((grads, np.ascontiguousarray(weights.T)))
    return pairs


def epoch_seconds(pairs: list[tuple[np.ndarray, np.ndarray]], matmul: Callable, batch: int, repeats: int) -> float:
    step = sum(best_seconds(lambda a=a, b=b: matmul(a, b), repeats) for a, b in pairs)
    return step * TRAIN_SIZE / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    pairs = step_matmuls(args.batch, np.random.default_rng(0))
    flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b in pairs) * TRAIN_SIZE / args.batch
    tensors = [tuple(keras.ops.convert_to_tensor(x) for x in pair) for pair in pairs]

    def backend_matmul(a, b):
        return keras.ops.convert_to_numpy(keras.ops.matmul(a, b))  # waits for the result

    ceiling_before = matmul_ceiling()
    numpy_s = epoch_seconds(pairs, np.matmul, args.batch, args.repeats)
    backend_s = epoch_seconds(tensors, backend_matmul, args.batch, args.repeats)
    ceiling = max(ceiling_before, matmul_ceiling())
    print(
        f"batch {args.batch}: {flops / 1e9:.1f} GFLOP of matmuls per {TRAIN_SIZE}-image epoch; "
        f"ceiling (2048^2 numpy, best of before/after) {ceiling:.0f} GFLOP/s"
    )
    for label, seconds in (("numpy BLAS", numpy_s), (f"keras.ops.matmul ({keras.backend.backend()})", backend_s)):
        rate = flops / seconds / 1e9
        print(f"  {label}: {seconds:.3f} s/epoch, {rate:.0f} GFLOP/s = {100 * rate / ceiling:.0f}% of the ceiling")
    print(f"  60% of the ceiling would allow {flops / (0.6 * ceiling * 1e9):.3f} s/epoch for the whole step")


if __name__ == "__main__":
    main()
