"""`dnnlab search`: many short trials of one variant in an Optuna study that any number of workers share.

Workers coordinate only through the study's storage, as Optuna is designed to; dnnlab runs no
scheduler. Start `dnnlab search` with the same `--study` and `--storage` on as many machines (or
terminals) as you like and they fill one study together.

- `config`: `SearchConfig`, the search's flags;
- `storage`: opening SQLite or PostgreSQL storages (with heartbeats, so dead workers' trials are retried);
- `space`: what a trial may vary, and the baseline trial's values;
- `study`: creating or joining a study, and the settings every worker must share;
- `worker`: running trials until the study has `--trials` finished ones (exactly), waiting for and
  retrying dead workers' trials;
- `trials`: one trial, trained as `dnnlab train` trains, pruned by `trial_pruning`;
- `run`: `run_search`, the command; `report`: `search-report`.
"""
