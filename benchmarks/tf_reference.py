"""The textbook's exercise-8 pipeline in TensorFlow + tf.keras, as a benchmark worker.

Written from the exercise's text (Géron, Hands-On ML, ch. 11, exercise 8), the way the book's
solutions write it: a `Sequential` of Flatten + 20 x Dense(100) with He-normal init and ELU,
a 10-unit softmax output, Nadam and sparse categorical cross-entropy; (c) adds Batch
Normalization (after Flatten, and between each Dense and its activation); (d) swaps to SELU
with LeCun-normal init on standardized inputs; (e) adds AlphaDropout(0.1) before the output.
It runs in its own virtualenv (see `bench.py`), so it imports only TensorFlow and numpy.

    python tf_reference.py --variant elu --batch-size 32
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # tf.keras is Keras 3 since TF 2.16
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from protocol import VALID_SIZE, random_cifar_like, serve  # noqa: E402

TEXTBOOK_LR = {"elu": 5e-5, "bn": 5e-4, "selu": 7e-4, "alpha-dropout": 5e-4}


def build_textbook_model(variant: str):
    from tensorflow import keras

    model = keras.models.Sequential()
    model.add(keras.layers.Input(shape=[32, 32, 3]))
    model.add(keras.layers.Flatten())
    if variant == "bn":
        model.add(keras.layers.BatchNormalization())
        for _ in range(20):
            model.add(keras.layers.Dense(100, kernel_initializer="he_normal"))
            model.add(keras.layers.BatchNormalization())
            model.add(keras.layers.Activation("elu"))
    elif variant in ("selu", "alpha-dropout"):
        for _ in range(20):
            model.add(keras.layers.Dense(100, kernel_initializer="lecun_normal", activation="selu"))
        if variant == "alpha-dropout":
            model.add(keras.layers.AlphaDropout(rate=0.1))
    else:
        for _ in range(20):
            model.add(keras.layers.Dense(100, kernel_initializer="he_normal", activation="elu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=keras.optimizers.Nadam(learning_rate=TEXTBOOK_LR[variant]),
        metrics=["accuracy"],
    )
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(TEXTBOOK_LR), default="elu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-size", type=int, default=45_000)
    args = parser.parse_args()

    def build():
        images, labels = random_cifar_like(VALID_SIZE + args.train_size)
        # float32 prepared once, as dnnlab does (the book feeds uint8 and lets Keras cast per batch).
        x, labels = images[VALID_SIZE:].astype(np.float32), labels[VALID_SIZE:]
        if args.variant in ("selu", "alpha-dropout"):
            # The book standardizes in numpy before fit; done once here, outside the timing.
            x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
        model = build_textbook_model(args.variant)
        return lambda: model.fit(x, labels, batch_size=args.batch_size, epochs=1, verbose=0)

    serve(build)


if __name__ == "__main__":
    main()
