"""Several drivers on one study: which of the trials they ask for may run.

Two searches started on the same study (two terminals, two machines on one PostgreSQL database, or
a second ``docker compose run``) each ask Optuna for trials. The storage numbers trials in the order
they are created, atomically, so every driver can decide the same way, with no lock, whether a trial
it has just been handed may run:

- **the total**: trial ``n`` may run only while fewer than ``--trials`` trials that count come before
  it (finished ones, except those a stopped search interrupted, and running ones);
- **one of each queued pipeline**: a queued trial (plain CE, a portfolio entry, an earlier study's
  best) may run only if no earlier trial that counts is the same queued pipeline, so each driver may
  queue plain CE and the portfolio and still only one copy runs.

A trial that may not run is marked FAIL and ``interrupted`` (it did not run, and it counts neither
toward the total nor in the analysis), with the reason in ``fail_reason``.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

#: The user attribute naming a queued entry (its value), per kind of warm start: a reference pipeline
#: of the data (``automl_noisy.search.portfolio.references``), a portfolio entry, an earlier study's best.
WARM_START_ATTRS = ("reference", "portfolio", "warm_start")
#: User attributes that name a pipeline a search queues itself (their value says which): plain CE,
#: a reference, a portfolio entry, an earlier study's best. These trials run every epoch and every fold: they were
#: chosen before the search (the portfolio for doing well across many tasks), and some of them learn
#: late (DivideMix's warm-up, a pretrained body's fine-tuning), so neither a median of other
#: pipelines' first epochs (the pruner) nor their first fold (racing) is a judge of them; the
#: sampler's trials meet both, compared with every trial, these included.
QUEUED_ATTRS = ("baseline", *WARM_START_ATTRS)


#: how the reason for a trial asked beyond the total begins
STUDY_FULL = "not run: the study already holds its"


def stopped(trial: FrozenTrial) -> bool:
    """Whether ``trial`` is one a stopped or lost driver left: FAIL and marked interrupted, or FAIL
    with no reason (Optuna failed it when its driver's heartbeat went stale). It says nothing about
    its pipeline, and a resume runs another trial in its place."""
    return trial.state == TrialState.FAIL and bool(trial.user_attrs.get("interrupted")
                                                   or "fail_reason" not in trial.user_attrs)


def counts(trial: FrozenTrial) -> bool:
    """Whether ``trial`` counts toward a study's ``--trials``: finished or running, and not
    :func:`stopped` (a queued trial no search has started does not count yet). The one rule for the
    total: a search's remaining trials, several searches on one study, the summary and the progress."""
    return trial.state != TrialState.WAITING and not stopped(trial)


def queued_as(trial: FrozenTrial | optuna.Trial) -> tuple[str, object] | None:
    """The queued pipeline a trial runs, as ``(attribute, value)``; None for a sampled trial."""
    attrs = trial.user_attrs
    return next(((key, attrs[key]) for key in QUEUED_ATTRS if key in attrs), None)


def surplus(study: optuna.Study, trial: optuna.Trial, total: int) -> str | None:
    """Why ``trial`` (just asked for) may not run, or None when it may (see the module docstring)."""
    earlier = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number and counts(t)]
    if len(earlier) >= total:
        return f"{STUDY_FULL} {total} trials (another search on it ran them)"
    mine = queued_as(trial)
    if mine is not None:
        twin = next((t for t in earlier if queued_as(t) == mine), None)
        if twin is not None:
            return f"not run: trial {twin.number} runs the same queued pipeline ({mine[0]} {mine[1]})"
    return None
