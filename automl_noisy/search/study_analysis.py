"""The analysis of a stored study, kept in the study itself.

:func:`load_or_compute` turns a study's finished trials into observations (how each state counts
is in :mod:`automl_noisy.search.analysis`), estimates the choices' effects, ranks the continuous
parameters with Optuna's importance evaluator, and stores the result as the study user attribute
``analysis``: a JSON-safe dict with the number of trials it was computed from and a fingerprint
of those trials. Reports, dashboards and later commands read it from there, and it is computed
again only when trials were added or changed (or the stored format is older).

>>> import optuna
>>> study = optuna.create_study(direction="maximize")
>>> for i in range(6):
...     study.add_trial(optuna.trial.create_trial(value=0.6 + 0.05 * (i % 2), user_attrs={
...         "combination": {"loss": "gce" if i % 2 else "ce"}, **({"baseline": True} if i == 0 else {})}))
>>> analysis = load_or_compute(study)
>>> analysis.n_trials, study.user_attrs[ATTR]["fingerprint"] == analysis.fingerprint
(6, True)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from automl_noisy.errors import UserError, shorten
from automl_noisy.search.analysis import EffectsTable, Observation, effects
from automl_noisy.search.storage import open_storage, resolve_study, write_refused

ATTR = "analysis"
FORMAT = 1  # bump when the method or the stored layout changes: stored analyses are then recomputed
MIN_IMPORTANCE_TRIALS = 10


@dataclass
class Analysis:
    """Effects of the choices, importances of the continuous parameters, and what they came from."""

    effects: EffectsTable
    importances: dict[str, float]  # parameter -> PED-ANOVA importance, summing to 1
    n_trials: int  # finished trials counted (complete, pruned, failed)
    fingerprint: str
    computed_at: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "effects": self.effects.to_dict(), "importances": dict(self.importances),
                "n_trials": self.n_trials, "fingerprint": self.fingerprint, "computed_at": self.computed_at,
                "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Analysis":
        return cls(EffectsTable.from_dict(d["effects"]), dict(d["importances"]), int(d["n_trials"]),
                   str(d["fingerprint"]), str(d.get("computed_at", "")), list(d.get("notes", [])))


def counted_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The trials the analysis counts: complete, pruned, and failed by the method itself (not those
    failed because the driver stopped: ``interrupted``, or a stale heartbeat with no ``fail_reason``)."""
    out = []
    for t in trials:
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            out.append(t)
        elif t.state == TrialState.FAIL and "fail_reason" in t.user_attrs and not t.user_attrs.get("interrupted"):
            out.append(t)
    return out


def observations(trials: Sequence[FrozenTrial]) -> list[Observation]:
    """Counted trials as plain data: a pruned trial's value is its last reported one."""
    out = []
    for t in counted_trials(trials):
        combination = {str(k): str(v) for k, v in (t.user_attrs.get("combination") or {}).items()}
        if t.state == TrialState.COMPLETE:
            state, value = "complete", t.value
        elif t.state == TrialState.PRUNED:
            last = max(t.intermediate_values) if t.intermediate_values else None
            state, value = "pruned", t.intermediate_values[last] if last is not None else None
        else:
            state, value = "failed", None
        if value is not None and not math.isfinite(value):
            value = None  # a pruned trial whose last report was NaN: counted, without a value
        out.append(Observation(combination, state, value, t.number, bool(t.user_attrs.get("baseline"))))
    return out


def fingerprint(trials: Sequence[FrozenTrial]) -> str:
    """A hash of what the analysis reads from the counted trials (and of its format)."""
    rows = [[t.number, t.state.name, t.value, t.user_attrs.get("combination"), t.params,
             sorted(t.intermediate_values.items())[-1:]] for t in counted_trials(trials)]
    text = json.dumps([FORMAT, rows], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def importances(study: optuna.Study) -> tuple[dict[str, float], list[str]]:
    """Importances of the numeric parameters with Optuna's PED-ANOVA evaluator.

    Its conditional form (Conditional PED-ANOVA, KDD 2026) assesses a parameter on the complete
    trials where it exists, so ``loss.gce.q`` is judged among GCE trials and the conditional space
    needs no imputation. PED-ANOVA compares where the top trials lie with the whole space; its
    ``target_quantile`` is raised so that at least 5 trials form the top. Categorical choices are
    covered by the effects.
    """
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.value is not None and math.isfinite(t.value)]
    params = sorted({name for t in complete for name, d in t.distributions.items()
                     if isinstance(d, (FloatDistribution, IntDistribution)) and d.low < d.high})
    if not params:
        return {}, ["no numeric parameter was searched: no importances"]
    if len(complete) < MIN_IMPORTANCE_TRIALS:
        return {}, [f"parameter importances need {MIN_IMPORTANCE_TRIALS} complete trials; "
                    f"the study has {len(complete)}"]
    evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=max(0.1, 5 / len(complete)))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values = optuna.importance.get_param_importances(study, evaluator=evaluator, params=params)
    except (ValueError, RuntimeError) as e:  # too few trials per parameter and the like
        return {}, [f"parameter importances skipped: {shorten(e, 200)}"]
    thin = sorted({m.group(1) for w in caught if (m := re.search(r"parameter `([^`]+)` have less", str(w.message)))})
    notes = [f"importances from {len(complete)} complete trials"]
    if thin:
        notes.append(f"too few trials to judge {len(thin)} parameter(s) reliably: {', '.join(thin)}")
    return {k: float(v) for k, v in values.items()}, notes


def compute(study: optuna.Study) -> Analysis:
    """Analyse ``study`` now (without storing the result)."""
    trials = study.get_trials(deepcopy=False)
    obs = observations(trials)
    if not obs:
        raise UserError(f"study {study.study_name!r} has no finished trial yet; run or resume the search first")
    missing = sum(not o.combination for o in obs)
    if missing == len(obs):
        raise UserError(f"the trials of study {study.study_name!r} record no method combination; "
                        "was the study made by automl-noisy?")
    table = effects(obs)
    if missing:
        table.notes.append(f"{missing} trial(s) record no combination and count as the baseline's")
    values, notes = importances(study)
    return Analysis(table, values, len(obs), fingerprint(trials),
                    dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), notes)


def load_or_compute(study: optuna.Study, save: bool = True) -> Analysis:
    """The stored analysis when it was computed from the study's current trials, else a fresh one
    (stored in the study unless ``save`` is false)."""
    stored = study.user_attrs.get(ATTR)
    current = fingerprint(study.get_trials(deepcopy=False))
    if isinstance(stored, dict) and stored.get("format") == FORMAT and stored.get("fingerprint") == current:
        try:
            return Analysis.from_dict(stored)
        except (KeyError, TypeError, ValueError):
            pass  # written by another version: compute again
    analysis = compute(study)
    if save:
        try:
            study.set_user_attr(ATTR, analysis.to_dict())
        except Exception as e:  # a read-only database or a full disk: the analysis is just not kept
            if write_refused(e) is None:
                raise
    return analysis


def open_analysis(storage_url: str, study_name: str | None,
                  storage: optuna.storages.BaseStorage | None = None) -> tuple[optuna.Study, Analysis]:
    """The study named on the command line and its analysis; a study without a complete trial is an error.
    ``storage``, if given, is the already open storage at ``storage_url``."""
    storage = storage if storage is not None else open_storage(storage_url, must_exist=True)
    study = resolve_study(storage, study_name, storage_url)
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise UserError(f"study {study.study_name!r} has no complete trial yet; run or resume the search first")
    return study, load_or_compute(study)
