"""Learning-rate and momentum schedules: pure functions of training progress (`curves`), and
1cycle as Keras schedules evaluated inside the compiled step (`one_cycle`, `momentum_sgd`)."""
