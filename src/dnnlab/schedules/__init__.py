"""Learning-rate and momentum schedules: pure functions of training progress (`curves`), the
textbook's decaying schedules (`decay`), and 1cycle as Keras schedules evaluated inside the
compiled step (`one_cycle`, `momentum_sgd`)."""
