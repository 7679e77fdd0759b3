"""Uncertainty of a trained model's predictions: metrics of predicted probabilities (`metrics`),
fast MC Dropout (`mc_dropout`), their figures (`plots`) and the deterministic-vs-MC comparison of
a run folder (`report`, exercise 8e)."""
