"""Names the user hands to Keras (an activation, an initializer), checked when a config is made.

Keras resolves these names only when the model is built, after the run folder exists and the data
is loaded; a typo then ended in Keras's traceback and left a config.json behind that refused the
next, correct run. `name_problem` asks Keras itself, so the accepted names are those of the
installed Keras, and also calls what the name resolves to once, as the model would, because a few
names resolve to something that cannot be called without arguments (`constant`, `threshold`) or
fits no Dense kernel (`stft`).

Keras is imported only for names outside `KNOWN`: `dnnlab.config` builds the variant presets at
import time, and `dnnlab --help` should not wait seconds for Keras and its backend.
"""

from __future__ import annotations

import functools

ACTIVATION, INITIALIZER = "activation", "initializer"
# The names the variant presets and defaults use (tests check them against Keras).
KNOWN = {ACTIVATION: frozenset({"elu", "selu"}), INITIALIZER: frozenset({"he_normal", "lecun_normal"})}


def _try(kind: str, name: str) -> bool:
    """Whether Keras resolves `name` and the result works on a small Dense layer's outputs or kernel."""
    import keras

    try:
        if kind == ACTIVATION:
            keras.activations.get(name)(keras.ops.zeros((2, 4)))
        else:
            keras.initializers.get(name)((4, 4))
    except Exception:  # ValueError, KeyError, TypeError...: whatever Keras raises, the name is not usable
        return False
    return True


@functools.cache
def valid_names(kind: str) -> tuple[str, ...]:
    """The lowercase names the installed Keras accepts for `kind` (its class names work too)."""
    import keras

    module = keras.activations if kind == ACTIVATION else keras.initializers
    return tuple(name for name in dir(module) if name.islower() and _try(kind, name))


@functools.cache
def name_problem(kind: str, name: str) -> str | None:
    """None if `name` is a usable Keras `kind` ("activation" or "initializer"), else a one-line reason
    that lists the valid names."""
    if name in KNOWN[kind]:
        return None
    if isinstance(name, str) and name.strip() and _try(kind, name):
        return None
    return f"--{kind} {name!r} is not a Keras {kind} usable here; choose one of: {', '.join(valid_names(kind))}"
