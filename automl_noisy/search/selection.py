"""Which trial a search exports, by a stated rule that allows for the noise in its ranking.

Every trial is scored on the same rows (the out-of-fold predictions over the whole pool, or the
holdout validation rows), and each complete trial keeps which of them its best epoch predicted right
(``val_correct``). Two trials are therefore compared **paired**: with ``d_i = a_i - b_i`` the
difference of their correctness on row ``i`` of ``n``, their accuracies differ by ``mean(d)`` with the
standard error ``sd(d) / sqrt(n)``. That is far smaller than two independent binomial errors when the
trials agree on most rows, as two pipelines on the same data do; it is the standard error of the
paired t-test, and McNemar's test looks at the same discordant rows.

The rules:

- ``one-se`` (the default): the **one-standard-error rule** of CART (Breiman, Friedman, Olshen &
  Stone, *Classification and Regression Trees*, 1984; Hastie, Tibshirani & Friedman, *The Elements of
  Statistical Learning*, 7.10): among the complete trials within one paired standard error of the best
  (``value(best) - value(t) <= se(best, t)``), take the simplest: the fewest methods (plain CE has
  none), then the higher value, then the earlier trial. A best trial that is not clearly better than
  something simpler is noise in the ranking, and the simpler pipeline is the safer one to ship.
- ``ce-guard``: the guard against plain CE alone: plain CE when it is within one paired standard error
  of the best (the search cannot tell the best from it), else the best. Where the one-se rule trades a
  better pipeline for a simpler one that the noisy ranking cannot separate from it, this rule keeps
  the best unless nothing at all is shown gained over plain CE. Under heavy label noise the noisy
  accuracy separates pipelines poorly (a clean difference shrinks by ``1 - R K/(K-1)`` at symmetric
  rate R, while its standard error does not), so the one-se rule then falls back far more often.
- ``best``: the trial with the highest value (Optuna's ``best_trial``).

A trial that recorded no rows (a study of an older version) is compared by neither: the rule then
keeps the best trial and says why.

>>> import optuna
>>> study = optuna.create_study(direction="maximize")
>>> rows = lambda bits: pack_rows(np.array([c == "1" for c in bits]))
>>> for i, (bits, combination) in enumerate([("1111111100", {"loss": "ce"}),
...                                          ("1110111111", {"loss": "gce", "mixing": "mixup"})]):
...     study.add_trial(optuna.trial.create_trial(value=bits.count("1") / 10, user_attrs={
...         "baseline": i == 0, "val_correct": rows(bits), "combination": combination}))
>>> choice = choose(study, "one-se")
>>> choice.trial.number, choice.reason
(0, 'rule one-se: trial 0 (0.8000, no method) is within one paired standard error of the best, trial 1 (0.9000 = 0.8000 +0.1000 ± 0.1795), and has fewer methods (0 against 2)')
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from automl_noisy.errors import UserError
from automl_noisy.train.trainer import pack_rows, unpack_rows  # noqa: F401 - pack_rows: the doctest's

RULES = ("one-se", "ce-guard", "best")
DEFAULT_RULE = "one-se"
#: choices that add no method to a pipeline
NO_METHOD = ("none", "single", "random", "ce")


def methods(combination: Mapping[str, object] | None) -> int:
    """How many methods a trial's combination adds to plain CE (a penalty list counts each; the model
    is not a method)."""
    count = 0
    for family, choice in (combination or {}).items():
        if family in ("model", "preset") or str(choice) in NO_METHOD:  # a preset's methods are its families'
            continue
        count += len(str(choice).split("+"))
    return count


def correct_rows(trial: FrozenTrial) -> np.ndarray | None:
    """Which rows the trial's best epoch predicted right (None for a trial that did not record them)."""
    text = trial.user_attrs.get("val_correct")
    if not isinstance(text, str):
        return None
    try:
        return unpack_rows(text)
    except ValueError:  # written by something else: not comparable
        return None


@dataclass(frozen=True)
class Paired:
    """``first`` minus ``second`` in accuracy on the same ``rows``, with its paired standard error."""

    difference: float
    stderr: float
    rows: int

    def text(self) -> str:
        return f"{self.difference:+.4f} ± {self.stderr:.4f}"


def paired_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``a`` minus ``b`` in accuracy (per-row correctness on the same rows) and its paired standard
    error ``sd(d) / sqrt(n)`` (NaN for one row)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    stderr = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float("nan")
    return float(d.mean()), stderr


def paired(first: FrozenTrial, second: FrozenTrial) -> Paired | None:
    """The paired difference of two trials (None when either recorded no rows, or other rows)."""
    a, b = correct_rows(first), correct_rows(second)
    if a is None or b is None or len(a) != len(b):
        return None
    return Paired(*paired_difference(a, b), len(a))


@dataclass(frozen=True)
class Choice:
    """The trial a rule picked, and one line saying why."""

    trial: FrozenTrial
    best: FrozenTrial
    rule: str
    reason: str


def baseline_of(study: optuna.Study) -> FrozenTrial | None:
    """Plain CE: the study's complete baseline trial (trial 0, or its re-run)."""
    return next((t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                 if t.user_attrs.get("baseline")), None)


def choose(study: optuna.Study, rule: str = DEFAULT_RULE) -> Choice:
    """The trial ``rule`` exports (see the module docstring)."""
    if rule not in RULES:
        raise UserError(f"unknown export rule {rule!r}; choose one of: {', '.join(RULES)}")
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise UserError(f"study {study.study_name!r} has no complete trial yet; run or resume the search first")
    best = study.best_trial
    if rule == "best":
        return Choice(best, best, rule, f"rule best: trial {best.number}, the highest value ({best.value:.4f})")
    if correct_rows(best) is None:
        return Choice(best, best, rule, f"rule {rule}: trial {best.number}, the best, kept as it is: it recorded no "
                                        "per-row results to compare (a study of an older version)")
    if rule == "ce-guard":
        return _guard(study, best)
    near = [(methods(best.user_attrs.get("combination")), -(best.value or 0.0), best.number, best, None)]
    for t in complete:
        p = paired(best, t)
        if t.number != best.number and p is not None and p.difference <= p.stderr:
            near.append((methods(t.user_attrs.get("combination")), -(t.value or 0.0), t.number, t, p))
    fewest, _, _, chosen, p = min(near, key=lambda item: item[:3])
    best_methods = methods(best.user_attrs.get("combination"))
    if chosen.number == best.number or p is None:
        return Choice(best, best, rule, f"rule one-se: trial {best.number}, the best ({best.value:.4f}), has no "
                                        "simpler trial within one paired standard error")
    what = "no method" if fewest == 0 else f"{fewest} method{'s' if fewest > 1 else ''}"
    return Choice(chosen, best, rule,
                  f"rule one-se: trial {chosen.number} ({chosen.value:.4f}, {what}) is within one paired standard "
                  f"error of the best, trial {best.number} ({best.value:.4f} = {chosen.value:.4f} {p.text()}), "
                  f"and has fewer methods ({fewest} against {best_methods})")


def _guard(study: optuna.Study, best: FrozenTrial) -> Choice:
    """The ``ce-guard`` rule: plain CE when it is within one paired standard error of ``best``."""
    baseline = baseline_of(study)
    p = paired(best, baseline) if baseline is not None and baseline.number != best.number else None
    if p is None or p.difference > p.stderr:
        why = ("is plain CE" if baseline is not None and baseline.number == best.number
               else "has no plain CE to compare" if p is None
               else f"is ahead of plain CE, trial {baseline.number}, by more than one paired standard error "
                    f"({p.text()})")
        return Choice(best, best, "ce-guard", f"rule ce-guard: trial {best.number}, the best ({best.value:.4f}), {why}")
    return Choice(baseline, best, "ce-guard",
                  f"rule ce-guard: plain CE, trial {baseline.number} ({baseline.value:.4f}), is within one paired "
                  f"standard error of the best, trial {best.number} ({best.value:.4f} = {baseline.value:.4f} "
                  f"{p.text()})")


def versus_baseline(study: optuna.Study, trial: FrozenTrial) -> str | None:
    """``trial`` against plain CE, paired on the same rows, in words (None without a baseline to
    compare, or when ``trial`` is the baseline)."""
    baseline = baseline_of(study)
    if baseline is None or baseline.number == trial.number:
        return None
    p = paired(trial, baseline)
    if p is None:
        return None
    verdict = ("ahead by more than one standard error" if p.difference > p.stderr
               else "behind by more than one standard error" if p.difference < -p.stderr
               else "within one standard error")
    return (f"trial {trial.number} against plain CE (trial {baseline.number}): {p.text()} "
            f"(paired over the same {p.rows} rows; {verdict})")
