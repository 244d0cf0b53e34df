"""How sure a study is of its best trial: values with their standard errors, and a warning when the
best trial cannot be told apart from trial 0 (plain cross entropy).

>>> import optuna
>>> study = optuna.create_study(direction="maximize")
>>> for i, (value, stderr) in enumerate([(0.60, 0.03), (0.62, 0.03)]):
...     study.add_trial(optuna.trial.create_trial(value=value, user_attrs={
...         "baseline": i == 0, "value_stderr": stderr}))
>>> value_text(study.best_trial)
'0.6200 ± 0.0300'
>>> print(baseline_warning(study))
the best trial (1, 0.6200 ± 0.0300) is within one standard error of trial 0, plain cross entropy (0.6000 ± 0.0300): this search cannot tell them apart, and more data, more folds (--cv) or more trials may.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState


def value_text(trial: FrozenTrial) -> str:
    """The trial's value, with ``± its standard error`` when it was recorded."""
    stderr = trial.user_attrs.get("value_stderr")
    return f"{trial.value:.4f}" + (f" ± {stderr:.4f}" if stderr is not None else "")


def baseline_warning(study: optuna.Study) -> str | None:
    """A sentence when the best trial beats the baseline (trial 0) by less than its standard error."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    best = study.best_trial
    baseline = next((t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                     if t.user_attrs.get("baseline")), None)
    stderr = best.user_attrs.get("value_stderr")
    if baseline is None or baseline.number == best.number or stderr is None or best.value - baseline.value >= stderr:
        return None
    return (f"the best trial ({best.number}, {value_text(best)}) is within one standard error of trial "
            f"{baseline.number}, plain cross entropy ({value_text(baseline)}): this search cannot tell them "
            "apart, and more data, more folds (--cv) or more trials may.")
