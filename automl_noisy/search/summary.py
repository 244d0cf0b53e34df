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
the best trial (1, 0.6200 ± 0.0300) is within one standard error of trial 0, plain cross entropy (0.6000 ± 0.0300): this search cannot tell them apart; more data, more folds (--cv) or more trials would give it a better chance.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState


def value_text(trial: FrozenTrial) -> str:
    """The trial's value, with ``± its standard error`` when it was recorded."""
    stderr = trial.user_attrs.get("value_stderr")
    return f"{trial.value:.4f}" + (f" ± {stderr:.4f}" if stderr is not None else "")


def baseline_warning(study: optuna.Study) -> str | None:
    """A sentence when the best trial beats the baseline (plain CE) by less than one standard error:
    the paired one on the same rows when both recorded them (see :mod:`automl_noisy.search.selection`),
    else the best trial's own."""
    from automl_noisy.search.selection import baseline_of, paired

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    best, baseline = study.best_trial, baseline_of(study)
    if baseline is None or baseline.number == best.number:
        return None
    p = paired(best, baseline)
    if p is not None:
        if p.difference > p.stderr:
            return None
        return (f"the best trial ({best.number}, {best.value:.4f}) is within one paired standard error of trial "
                f"{baseline.number}, plain cross entropy ({baseline.value:.4f}): {p.text()} on the same {p.rows} "
                "rows, so this search cannot tell them apart; more data, more folds (--cv) or more trials would "
                "give it a better chance.")
    stderr = best.user_attrs.get("value_stderr")
    if stderr is None or best.value - baseline.value >= stderr:
        return None
    return (f"the best trial ({best.number}, {value_text(best)}) is within one standard error of trial "
            f"{baseline.number}, plain cross entropy ({value_text(baseline)}): this search cannot tell them "
            "apart; more data, more folds (--cv) or more trials would give it a better chance.")
