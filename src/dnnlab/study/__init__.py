"""`dnnlab study optimizers|schedules`: the chapter's optimizer table and LR-schedule claims, measured.

Each option (an optimizer, or a schedule of one optimizer) is trained on the exercise's net with
several seeds; one cell (option, seed) is one trial of an Optuna study with a grid sampler, so
any number of workers share the work through one storage, as `dnnlab search`'s do.

- `config`: the commands' flags (`OptimizerStudyConfig`, `ScheduleStudyConfig`);
- `options`: what is compared, as run configs; `book`: what the textbook says about it, as data;
- `cells`: a cell's run config, and which trial of the grid holds each cell;
- `lr`: each optimizer's LR from one LR range test, shared by every worker;
- `run`: `run_study`, one worker; `results`: the finished cells read back from the storage;
- `verdicts`: paired comparisons, ranks, and agreement with the book; `report`, `figures`: the report.
"""
