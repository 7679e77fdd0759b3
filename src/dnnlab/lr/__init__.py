"""Learning-rate tools: suggestion rules (pure functions of a curve), the LR range test, and the
short confirming search behind `--lr auto`.

This package's `__init__` imports nothing, so `dnnlab.config` can validate `--rule` against
`dnnlab.lr.rules.RULES` (a leaf module of NumPy functions) without loading Keras.
"""
