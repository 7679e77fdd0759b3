"""dnnlab vs the textbook's TensorFlow-Keras pipeline: seconds per epoch, side by side, in one run.

For every (variant, batch size) cell, one long-lived worker process per contender builds and
compiles its model, trains one warm-up epoch (which also compiles), then trains `--epochs`
measured epochs. Workers take turns epoch by epoch, in alternating order, so that the ratio
dnnlab / TF-Keras in a cell is measured under the same background load even on a shared
machine. A numpy float32 matmul, timed just before each cell, gives the ceiling.

    make bench                                            # everything, defaults below
    .venv/bin/python benchmarks/bench.py --variants elu --batches 32 --epochs 3
    .venv/bin/python benchmarks/bench.py --contender 'spe16=dnnlab --steps-per-execution 16' \\
        --contender dnnlab=dnnlab --variants elu --batches 32     # compare dnnlab settings only

The TensorFlow reference runs in its own virtualenv (`--tf-venv`), created on first use with
`pip install tensorflow-cpu==TF_VERSION`. Results go to `<out>/bench.json` and `<out>/bench.md`.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TF_VERSION = "2.21.0"
STACK_SCRIPTS = {"dnnlab": HERE / "dnnlab_worker.py", "tf": HERE / "tf_reference.py"}
VARIANTS = ("elu", "bn", "selu", "alpha-dropout")
BATCHES = (32, 128, 512)


def training_flops_per_sample(inputs: int = 3072, depth: int = 20, width: int = 100, classes: int = 10) -> dict:
    """Matmul FLOPs of one training step per sample for the exercise's dense stack.

    A Dense layer of n_in x n_out costs 2·n_in·n_out FLOPs forward, the same again for the
    weight gradient, and the same again for the input gradient. The first layer needs no
    input gradient (nothing upstream is trained), so a compiler that prunes it does
    ~2·(3·F - first) where F is the forward count; the common "3x forward" rule counts it
    anyway. Element-wise work (ELU, BN, Nadam) is ignored: it is < 1% of the FLOPs.
    """
    sizes = [inputs] + [width] * depth + [classes]
    macs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    forward = 2 * sum(macs)
    return {"forward": forward, "three_x_forward": 3 * forward, "needed": 3 * forward - 2 * macs[0]}


def matmul_ceiling(n: int = 2048, repeats: int = 10) -> float:
    """Best-of-`repeats` GFLOP/s of a float32 n x n matmul in numpy (the machine's BLAS)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm up threads and caches
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def ensure_tf_venv(venv: Path) -> Path:
    """The reference virtualenv's python, creating it and installing TensorFlow when missing."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import tensorflow"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"bench: installing tensorflow-cpu=={TF_VERSION} into {venv} (once; a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", f"tensorflow-cpu=={TF_VERSION}"], check=True)
    return python


def version_of(python: Path | str, module: str, prelude: str = "") -> str:
    code = f"{prelude}import {module}; print({module}.__version__)"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return done.stdout.strip() or "?"


@dataclass
class Contender:
    """One worker configuration: a label, a stack (`dnnlab` or `tf`) and extra worker flags."""

    label: str
    stack: str
    args: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, spec: str) -> Contender:
        label, _, command = spec.partition("=")
        words = shlex.split(command or label)
        if not words or words[0] not in STACK_SCRIPTS:
            raise SystemExit(
                f"bench: --contender {spec!r} must be LABEL=STACK [FLAGS], STACK in {sorted(STACK_SCRIPTS)}"
            )
        return cls(label=label, stack=words[0], args=words[1:])


class Worker:
    """A running worker process that trains one epoch per request (see protocol.py)."""

    def __init__(self, python: Path | str, contender: Contender, variant: str, batch: int, train_size: int):
        command = [
            str(python),
            str(STACK_SCRIPTS[contender.stack]),
            "--variant",
            variant,
            "--batch-size",
            str(batch),
            "--train-size",
            str(train_size),
            *contender.args,
        ]
        self.process = subprocess.Popen(
            command, cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.build_seconds = self._read("ready")["build_seconds"]

    def _read(self, event: str) -> dict:
        for line in self.process.stdout:
            if line.startswith("{"):
                message = json.loads(line)
                if message.get("event") == event:
                    return message
                raise RuntimeError(f"worker said {message}")
        raise RuntimeError(f"worker exited with {self.process.wait()} before sending {event!r}")

    def epoch(self) -> dict:
        """Train one epoch; its wall `seconds` and `cpu_seconds`."""
        self.process.stdin.write("epoch\n")
        self.process.stdin.flush()
        return self._read("epoch")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait(timeout=60)


def run_cell(
    pythons: dict[str, Path | str], contenders: list[Contender], variant: str, batch: int, epochs: int, train_size: int
) -> dict[str, dict]:
    """Build, warm up and time every contender on one (variant, batch) cell, interleaved."""
    workers: dict[str, Worker] = {}
    results: dict[str, dict] = {}
    try:
        for c in contenders:  # one at a time, so build times are not inflated by each other
            workers[c.label] = Worker(pythons[c.stack], c, variant, batch, train_size)
        for label, worker in workers.items():
            results[label] = {
                "build_seconds": worker.build_seconds,
                "warmup_epoch_seconds": worker.epoch()["seconds"],
                "epoch_seconds": [],
                "epoch_cpu_seconds": [],
            }
        order = list(workers)
        for round_ in range(epochs):
            for label in order if round_ % 2 == 0 else order[::-1]:  # ABBA: cancels slow drifts
                timing = workers[label].epoch()
                results[label]["epoch_seconds"].append(timing["seconds"])
                results[label]["epoch_cpu_seconds"].append(timing["cpu_seconds"])
    finally:
        for worker in workers.values():
            worker.close()
    for r in results.values():
        r["median_epoch_seconds"] = statistics.median(r["epoch_seconds"])
        r["median_epoch_cpu_seconds"] = statistics.median(r["epoch_cpu_seconds"])
        # What the first epoch cost beyond a steady one: tracing + XLA / graph compilation.
        r["compile_seconds"] = r["warmup_epoch_seconds"] - r["median_epoch_seconds"]
    return results


def markdown_tables(report: dict) -> str:
    """The s/epoch table (ratios, % of the ceiling) and the build/compile table."""
    labels = [c["label"] for c in report["contenders"]]
    ref = "tf" if "tf" in labels else None
    others = [label for label in labels if ref and label != ref]
    flops = report["flops_per_epoch"]
    head = ["variant", "batch"] + [f"{label} s/epoch (CPU s)" for label in labels]
    head += [f"{label}/tf wall (CPU)" for label in others]
    head += [f"{label} % ceiling" for label in labels] + ["ceiling GFLOP/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in report["cells"]:
        r = cell["results"]
        row = [cell["variant"], str(cell["batch"])]
        row += [
            f"{r[label]['median_epoch_seconds']:.2f} ({r[label]['median_epoch_cpu_seconds']:.1f})" for label in labels
        ]
        row += [
            f"{r[label]['median_epoch_seconds'] / r[ref]['median_epoch_seconds']:.2f} "
            f"({r[label]['median_epoch_cpu_seconds'] / r[ref]['median_epoch_cpu_seconds']:.2f})"
            for label in others
        ]
        row += [
            f"{percent_of_ceiling(flops, r[label]['median_epoch_seconds'], cell['ceiling_gflops']):.0f}%"
            for label in labels
        ]
        row.append(f"{cell['ceiling_gflops']:.0f}")
        lines.append("| " + " | ".join(row) + " |")
    head = ["variant", "batch"] + [f"{label} {what}" for label in labels for what in ("build s", "compile s")]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in report["cells"]:
        r = cell["results"]
        row = [cell["variant"], str(cell["batch"])]
        row += [f"{r[label][key]:.1f}" for label in labels for key in ("build_seconds", "compile_seconds")]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def percent_of_ceiling(flops_per_epoch: float, epoch_seconds: float, ceiling_gflops: float) -> float:
    return 100 * flops_per_epoch / epoch_seconds / 1e9 / ceiling_gflops


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated (default: all four)")
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)), help="comma-separated batch sizes")
    parser.add_argument("--epochs", type=int, default=3, help="measured epochs per cell after the warm-up")
    parser.add_argument("--train-size", type=int, default=45_000, help="training images per epoch")
    parser.add_argument(
        "--contender",
        action="append",
        default=None,
        metavar="LABEL=STACK [FLAGS]",
        help="a worker to time (repeatable); default: dnnlab=dnnlab and tf=tf",
    )
    parser.add_argument("--tf-venv", type=Path, default=HERE / ".venv-tf", help="the reference's virtualenv")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder for bench.json and bench.md")
    args = parser.parse_args(argv)
    if args.epochs < 3:
        parser.error("--epochs must be >= 3 (the report is a median)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    contenders = [Contender.parse(s) for s in (args.contender or ["dnnlab=dnnlab", "tf=tf"])]
    pythons: dict[str, Path | str] = {"dnnlab": sys.executable}
    if any(c.stack == "tf" for c in contenders):
        pythons["tf"] = ensure_tf_venv(args.tf_venv)
    flops = training_flops_per_sample()
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": _cpu_count()},
        "versions": {
            "dnnlab-python": platform.python_version(),
            "keras (dnnlab)": version_of(sys.executable, "keras", prelude="import dnnlab; "),
            "jax": version_of(sys.executable, "jax"),
            **(
                {
                    "tensorflow": version_of(pythons["tf"], "tensorflow"),
                    "keras (tf)": version_of(pythons["tf"], "keras"),
                }
                if "tf" in pythons
                else {}
            ),
        },
        "contenders": [vars(c) for c in contenders],
        "train_size": args.train_size,
        "flops_per_sample": flops,
        "flops_per_epoch": flops["needed"] * args.train_size,
        "cells": [],
    }
    started = time.perf_counter()
    for batch in map(int, args.batches.split(",")):
        for variant in args.variants.split(","):
            # Timed next to the cell, so a busy machine lowers the ceiling and the cell alike.
            ceiling = matmul_ceiling()
            results = run_cell(pythons, contenders, variant, batch, args.epochs, args.train_size)
            report["cells"].append({"variant": variant, "batch": batch, "ceiling_gflops": ceiling, "results": results})
            summary = ", ".join(f"{k} {v['median_epoch_seconds']:.2f}" for k, v in results.items())
            print(
                f"bench: {variant} batch {batch}: s/epoch {summary}; ceiling {ceiling:.0f} GFLOP/s "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    report["ceiling_gflops"] = max(cell["ceiling_gflops"] for cell in report["cells"])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown_tables(report)
    (args.out / "bench.md").write_text(table)
    print(
        f"bench: best ceiling {report['ceiling_gflops']:.0f} GFLOP/s; "
        f"model {report['flops_per_epoch'] / 1e9:.1f} GFLOP/epoch\n{table}bench: wrote {args.out}/bench.json"
    )
    return 0


def _cpu_count() -> int | None:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    sys.exit(main())
