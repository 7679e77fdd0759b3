"""Reuse one compiled model across learning-rate candidates: does it save time, and is it exact?

An LR search trains the same architecture several times with different learning rates. With
Keras 3 on JAX the expensive part of a fresh candidate is not building the model but tracing
and XLA-compiling its train step during the first epoch. This script times, per candidate,
(a) a fresh model: build + compile + `--epochs` epochs, against (b) the compiled model reset
in place with `dnnlab.models.state.capture` / `restore` (what the LR search uses), and checks
that (b) reproduces (a)'s losses.

    .venv/bin/python benchmarks/reuse_compiled.py --variant bn --train-size 4500 --epochs 1

`dnnlab.model_state` uses only public Keras API, so this works on every backend.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from dnnlab.config import for_variant  # noqa: E402
from dnnlab.data import make_splits  # noqa: E402
from dnnlab.models import state as model_state  # noqa: E402
from dnnlab.models.build import build_for  # noqa: E402
from dnnlab.models.compile import compile_model  # noqa: E402
from protocol import VALID_SIZE, random_cifar_like  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="bn")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-size", type=int, default=4500)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per candidate")
    parser.add_argument("--lrs", default="1e-4,3e-4,1e-3", help="comma-separated LR candidates")
    args = parser.parse_args()
    lrs = [float(v) for v in args.lrs.split(",")]

    images, labels = random_cifar_like(VALID_SIZE + args.train_size)
    splits = make_splits(images, labels, images[:10], labels[:10], valid_size=VALID_SIZE)
    config = for_variant(args.variant, batch_size=args.batch_size)

    def fit(model):
        keras.utils.set_random_seed(config.train.seed)  # same shuffling on both paths
        history = model.fit(
            splits.x_train, splits.y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=0, shuffle=False
        )
        return history.history["loss"]

    def fresh_model(lr):
        keras.utils.set_random_seed(config.train.seed)
        model = build_for(config, splits)
        compile_model(model, config.train, lr)
        return model

    fresh_seconds, fresh_losses = [], []
    for lr in lrs:
        started = time.perf_counter()
        fresh_losses.append(fit(fresh_model(lr)))
        fresh_seconds.append(time.perf_counter() - started)
        print(f"fresh  lr={lr:g}: {fresh_seconds[-1]:.2f} s, loss {fresh_losses[-1]}", flush=True)

    started = time.perf_counter()
    model = fresh_model(lrs[0])
    snapshot = model_state.capture(model)
    setup_seconds = time.perf_counter() - started
    reuse_seconds, reuse_losses = [], []
    for lr in lrs:
        started = time.perf_counter()
        model_state.restore(model, snapshot)
        model.optimizer.learning_rate = lr  # an optimizer variable: no retrace
        reuse_losses.append(fit(model))
        reuse_seconds.append(time.perf_counter() - started)
        print(f"reused lr={lr:g}: {reuse_seconds[-1]:.2f} s, loss {reuse_losses[-1]}", flush=True)

    gap = float(np.max(np.abs(np.array(fresh_losses) - np.array(reuse_losses))))
    print(
        f"fresh total {sum(fresh_seconds):.1f} s; reused total {setup_seconds + sum(reuse_seconds):.1f} s "
        f"(setup {setup_seconds:.1f} s); largest loss difference fresh vs reused: {gap:.2e}"
    )


if __name__ == "__main__":
    main()
