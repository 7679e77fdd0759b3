"""One training run, start to finish: `dnnlab.training.train.train(config) -> Result`.

The run folder (`run_dir.RunDir`), per-epoch history (`history`), crash-safe resume (`resume`),
one process per folder (`run_lock`), stopping on divergence or Ctrl-C (`stops`), small
callbacks Keras lacks (`callbacks`), and several runs at once in their own processes
(`parallel_runs`).
"""
