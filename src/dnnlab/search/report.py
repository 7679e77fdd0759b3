"""`dnnlab search-report`: the best trials of a study, parameter importances, a history plot and `best.json`.

`best.json` is the winning trial's full run config (`RunConfig.to_dict`), so
`dnnlab train --config best.json` retrains it in full, with its seed; that run, not the search,
touches the test set.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
from matplotlib.ticker import MaxNLocator
from optuna.trial import FrozenTrial, TrialState

from dnnlab.config import RunConfig, require
from dnnlab.errors import DnnlabError
from dnnlab.files import write_json_atomic
from dnnlab.report.figures import new_figure, save_figure
from dnnlab.search.space import trial_config
from dnnlab.search.storage import SEARCH_DIR, dashboard_command, display_url, open_storage, sqlite_path
from dnnlab.search.study import BASELINE_ATTR, base_config_of
from dnnlab.search.trials import TENSORBOARD_DIR
from dnnlab.search.worker import state_counts

BEST_FILE = "best.json"
HISTORY_PLOT = "history.png"
MIN_TRIALS_FOR_IMPORTANCE = 2  # PED-ANOVA needs two completed trials to rank anything


@dataclass
class SearchReport:
    """Everything `dnnlab search-report` prints, plus the files it wrote."""

    study_name: str
    counts: dict[str, int]  # trial state name -> count
    top: list[FrozenTrial]  # completed trials, best (lowest validation loss) first
    importances: dict[str, float] | None  # None when they cannot be computed; see importance_note
    importance_note: str
    best_config: RunConfig | None
    best_path: Path | None
    plot_path: Path
    dashboard: str  # the shell command that opens the study in optuna-dashboard
    tensorboard_logdir: Path | None  # the trials' TensorBoard logs on this machine, if any

    @property
    def completed(self) -> int:
        return self.counts.get("COMPLETE", 0)

    def text(self) -> str:
        counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(self.counts.items())) or "no trials"
        lines = [f"study {self.study_name}: {counts}"]
        if self.top:
            lines.append("best trials (validation loss of the best epoch; accuracy there):")
            lines += [f"  {describe_trial(t)}" for t in self.top]
        else:
            lines.append("no completed trial yet")
        if self.importances is not None:
            shown = ", ".join(f"{name} {value:.2f}" for name, value in self.importances.items())
            lines.append(
                f"parameter importances (PED-ANOVA over {self.completed} completed trials; few trials make "
                f"them unstable): {shown}"
            )
        else:
            lines.append(f"parameter importances: {self.importance_note}")
        lines.append(f"optimization history plot: {self.plot_path}")
        if self.best_path is not None:
            lines.append(f"best config: {self.best_path}; retrain it with: dnnlab train --config {self.best_path}")
        masked = " (put the password in place of ***)" if ":***@" in self.dashboard else ""
        lines.append(f"open the study in optuna-dashboard (pip install 'dnnlab[dashboard]'){masked}: {self.dashboard}")
        if self.tensorboard_logdir is not None:
            lines.append(
                f"compare the trials in TensorBoard's HParams tab: tensorboard --logdir {self.tensorboard_logdir}"
            )
        return "\n".join(lines)


def describe_trial(trial: FrozenTrial) -> str:
    params = "  ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in trial.params.items())
    attrs = trial.user_attrs
    accuracy = attrs.get("valid_accuracy")
    shown_accuracy = f"{accuracy:.4f}" if accuracy is not None else "?"
    epochs = f"best epoch {attrs.get('best_epoch', '?')}/{attrs.get('epochs_run', '?')}"
    baseline = f"; baseline: {attrs[BASELINE_ATTR]}" if BASELINE_ATTR in attrs else ""
    return (
        f"#{trial.number:<4d} val_loss {trial.value:.4f}  val_acc {shown_accuracy}  {params}"
        f"  ({epochs}, seed {attrs.get('seed', '?')}{baseline})"
    )


def load_study(name: str, url: str) -> optuna.Study:
    """Study `name` in storage `url`; a one-line error, and no new SQLite file, when there is none."""
    database = sqlite_path(url)
    if database is not None and not database.exists():
        raise DnnlabError(f"no study {name!r}: {display_url(url)} does not exist; check --study, --storage and --out")
    storage = open_storage(url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise DnnlabError(
            f"no study {name!r} in {display_url(url)} (studies there: {known}); check --study and --storage"
        )
    return optuna.load_study(study_name=name, storage=storage)


def param_importances(study: optuna.Study) -> tuple[dict[str, float] | None, str]:
    """PED-ANOVA importances of the completed trials, or None and the reason they are not meaningful."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        return None, f"need at least {MIN_TRIALS_FOR_IMPORTANCE} completed trials, have {len(complete)}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        importances = optuna.importance.get_param_importances(study)
    # Optuna warns, and returns equal shares, when the trials cannot separate the parameters.
    notes = [str(w.message) for w in caught if "importance" in str(w.message).lower()]
    if notes:
        return None, notes[0]
    return {name: float(value) for name, value in importances.items()}, ""


def plot_history(study: optuna.Study, path: Path) -> Path:
    """Each finished trial's validation loss by trial number, and the best so far (PNG)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    fig, (ax,) = new_figure(7, 4)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    # A pruned trial has no final value; its last reported loss shows where it was stopped.
    pruned = [
        (t.number, t.intermediate_values[max(t.intermediate_values)])
        for t in trials
        if t.state == TrialState.PRUNED and t.intermediate_values
    ]
    ax.scatter([t.number for t in complete], [t.value for t in complete], label="completed", zorder=3)
    if pruned:
        ax.scatter(*zip(*pruned), marker="x", color="grey", label="pruned (last reported)", zorder=2)
    best, xs, ys = math.inf, [], []
    for t in sorted(complete, key=lambda t: t.number):
        best = min(best, t.value)
        xs.append(t.number)
        ys.append(best)
    if xs:
        ax.step(xs, ys, where="post", color="C3", label="best so far")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="trial number", ylabel="validation loss (best epoch)", title=f"study {study.study_name}")
    ax.legend()
    return save_figure(fig, path)


def best_config(study: optuna.Study) -> RunConfig | None:
    """The best completed trial's run config, or None when no trial completed."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    best = min(complete, key=lambda t: t.value)
    return trial_config(base_config_of(study), best.params, best.number, study.study_name)


def search_report(study_name: str, url: str, out: str | Path = "runs", top: int = 5) -> SearchReport:
    """Summarize study `study_name`; write its plot and `best.json` under `<out>/search/<study>/`."""
    require(top >= 1, f"--top must be >= 1, got {top}")
    study = load_study(study_name, url)
    folder = Path(out) / SEARCH_DIR / study_name
    config = best_config(study)
    best_path = None
    if config is not None:
        best_path = folder / BEST_FILE
        # The retrained run lands beside ordinary runs, under this machine's --out.
        write_json_atomic(best_path, dataclasses.replace(config, out=str(out)).to_dict())
    importances, note = param_importances(study)
    trials = study.get_trials(deepcopy=False)
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    return SearchReport(
        study_name=study_name,
        counts={state.name: n for state, n in state_counts(study).items()},
        top=complete[:top],
        importances=importances,
        importance_note=note,
        best_config=config,
        best_path=best_path,
        plot_path=plot_history(study, folder / HISTORY_PLOT),
        dashboard=dashboard_command(url),
        tensorboard_logdir=folder / TENSORBOARD_DIR if (folder / TENSORBOARD_DIR).is_dir() else None,
    )
