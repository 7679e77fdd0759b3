"""dnnlab: the 'Training Deep Neural Networks' chapter as runnable, measured software."""

import os

# Keras reads KERAS_BACKEND once, at its first import, so it must be set before any
# `import keras` in the package. JAX was measured fastest on CPU (see BENCHMARKS.md);
# a user's own choice (tensorflow, torch) wins.
os.environ.setdefault("KERAS_BACKEND", "jax")

__version__ = "0.1.0"
