"""Time MC Dropout with trunk caching against naive full-network sampling, in one process.

    .venv/bin/python benchmarks/mc_dropout_speed.py --model runs/alpha-dropout/best.keras --data-dir DIR

Both samplers run on the 10,000 CIFAR-10 test images with the same seed (so the same noise),
each warmed up once (tracing and compiling) and then timed `--repeats` times; the median wall
time is the figure, CPU time and the load average show how much the machine was shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

import keras
import numpy as np

import dnnlab  # noqa: F401  (sets the Keras backend)
from dnnlab.data import load_cifar10
from dnnlab.models.compile import EVAL_BATCH_SIZE
from dnnlab.uncertainty.mc_dropout import MCDropout


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def timed(label: str, fn, repeats: int) -> tuple[dict, object]:
    """First call (with compiling), then `repeats` timed calls; wall and CPU seconds of each."""
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    result = fn()
    first = time.perf_counter() - start_wall, time.process_time() - start_cpu
    walls, cpus = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - start_wall)
        cpus.append(time.process_time() - start_cpu)
        print(f"  {label}: {walls[-1]:.3f} s wall, {cpus[-1]:.3f} s CPU", flush=True)
    stats = {
        "first_call_wall": first[0],
        "first_call_cpu": first[1],
        "walls": walls,
        "cpus": cpus,
        "median_wall": statistics.median(walls),
        "median_cpu": statistics.median(cpus),
    }
    return stats, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a best.keras with a dropout layer")
    parser.add_argument("--data-dir", default=None, help="folder holding cifar-10-batches-py/")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls of the cached sampler")
    parser.add_argument("--naive-repeats", type=int, default=3, help="timed calls of the naive sampler; 0 skips it")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = load_cifar10(args.data_dir, download=False)
    x, y = data.x_test.astype(np.float32), data.y_test
    model = keras.saving.load_model(args.model)
    results: dict = {
        "model": args.model,
        "images": len(x),
        "samples": args.samples,
        "load_average_start": os.getloadavg(),
    }
    print(f"deterministic predict over {len(x)} images", flush=True)
    results["deterministic"], _ = timed(
        "deterministic", lambda: model.predict(x, batch_size=EVAL_BATCH_SIZE, verbose=0), args.repeats
    )
    rss_before = peak_rss_mib()
    cached = MCDropout(model)
    print(f"cached MC Dropout ({args.samples} samples, trunk cached: {cached.uses_trunk})", flush=True)
    results["cached"], fast = timed("cached", lambda: cached.predict(x, args.samples, args.seed), args.repeats)
    results["cached"]["peak_rss_growth_mib"] = peak_rss_mib() - rss_before
    if args.naive_repeats > 0:
        naive = MCDropout(model, cache_trunk=False)
        print(f"naive MC Dropout ({args.samples} samples, whole network)", flush=True)
        results["naive"], slow = timed("naive", lambda: naive.predict(x, args.samples, args.seed), args.naive_repeats)
        # Same seed, but the default steps differ (838 vs 27 images share a draw), so the masks
        # differ: these gaps are Monte Carlo noise. Tests check equality with equal steps.
        results["accuracy"] = {
            name: float(np.mean(p.mean_probs.argmax(axis=1) == y)) for name, p in (("cached", fast), ("naive", slow))
        }
        results["mean_abs_mean_prob_difference"] = float(np.abs(fast.mean_probs - slow.mean_probs).mean())
        results["max_abs_mean_prob_difference"] = float(np.abs(fast.mean_probs - slow.mean_probs).max())
        results["speedup_median_wall"] = results["naive"]["median_wall"] / results["cached"]["median_wall"]
    results["load_average_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    for name in ("deterministic", "cached", "naive"):
        if name in results:
            r = results[name]
            print(
                f"{name}: median {r['median_wall']:.3f} s wall, {r['median_cpu']:.3f} s CPU; "
                f"first call {r['first_call_wall']:.3f} s wall"
            )
    print(f"load average {results['load_average_start']} -> {results['load_average_end']}")


if __name__ == "__main__":
    main()
