"""dnnlab's side of the benchmark: the library's own model and compile step, timed per epoch.

The model comes from `dnnlab.training.train.build_for` and is compiled by `dnnlab.training.train.compile_model`,
and `fit` gets its batches from `dnnlab.models.fused_steps.use_fused_steps`, exactly as `dnnlab train`
does; one epoch is a `fit` over the 45,000 random images without validation, as in the
TensorFlow reference.

    .venv/bin/python benchmarks/dnnlab_worker.py --variant bn --batch-size 128 \\
        --steps-per-execution 8 --env XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
"""

from __future__ import annotations

import argparse
import os


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="elu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-size", type=int, default=45_000)
    parser.add_argument(
        "--fused-samples",
        type=int,
        default=None,
        help="samples per compiled call of fused steps (default: dnnlab's; 0: one step per call)",
    )
    parser.add_argument(
        "--steps-per-execution",
        type=int,
        default=1,
        help="batches per compiled call (Keras's compile argument; dnnlab uses 1)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set an environment variable before Keras/XLA start (e.g. XLA_FLAGS)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    for item in args.env:  # must happen before keras (and so XLA) is imported
        key, _, value = item.partition("=")
        os.environ[key] = value
    os.environ.setdefault("KERAS_BACKEND", "jax")

    from protocol import VALID_SIZE, random_cifar_like, serve

    def build():
        import keras

        from dnnlab.config import for_variant
        from dnnlab.data import make_splits
        from dnnlab.models.build import build_for
        from dnnlab.models.compile import compile_model
        from dnnlab.models.fused_steps import use_fused_steps

        config = for_variant(args.variant, batch_size=args.batch_size)
        images, labels = random_cifar_like(VALID_SIZE + args.train_size)
        # The library's own data path: float32 arrays prepared once, training-set statistics.
        splits = make_splits(images, labels, images[:10], labels[:10], valid_size=VALID_SIZE)
        keras.utils.set_random_seed(config.train.seed)
        model = build_for(config, splits)
        compile_model(model, config.train, config.lr)
        # An experiment knob only: measured no gain (docs/benchmarks/issue-7.md), and with N > 1
        # per-batch callbacks such as 1cycle would fire once per N batches. Read at the first fit.
        model.steps_per_execution = args.steps_per_execution
        batch_size = use_fused_steps(model, config.train.batch_size, fused_samples=args.fused_samples)
        return lambda: model.fit(splits.x_train, splits.y_train, batch_size=batch_size, epochs=1, verbose=0)

    serve(build)


if __name__ == "__main__":
    main()
