"""Reproducible searches with several workers: the sampler and the pruner see trials in number order.

With trials running in parallel, which trials have finished when the sampler draws trial ``n``
depends on timing, and so does what it draws. A search is made reproducible by a fixed lag ``L``
(the number of trials in flight): trial ``n`` is asked only once every trial numbered below ``n - L``
has finished, and a finished trial ``k`` is told to the study (made visible) only when trial
``k + L + 1`` is about to be asked. So when trial ``n`` is drawn the study shows exactly trials
``0 .. n - L - 1`` as finished and ``n - L .. n - 1`` as running, whatever the timing; and the pruner
judges trial ``k`` against trials numbered below ``k - L`` only (all finished when ``k`` was asked).
The price: a worker may wait for a slow older trial before the next one can start.

The number the next ``ask`` gets is read from the study (:func:`next_number`): the trials a search
queues itself (plain CE, the portfolio, a warm start) are in the study, waiting, before the first is
asked, so the next number is the lowest waiting one, not the count of trials.

>>> order = TrialOrder(lag=2)
>>> order.may_ask(running=[0, 1], upcoming=2), order.may_ask(running=[1], upcoming=2)
(False, True)
>>> order.may_ask(running=[0], upcoming=3), order.may_ask(running=[2], upcoming=3), order.release_below(3)
(False, True, 1)
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import optuna
from optuna.trial import FrozenTrial, TrialState


def trials_in_flight(capacity: int, jobs_per_trial: int) -> int:
    """How many trials to keep in flight so that ``capacity`` job slots stay busy (one more trial than
    fits exactly when the trials' jobs do not fill the slots evenly)."""
    fit = math.ceil(capacity / jobs_per_trial)
    return max(1, fit + (1 if capacity % jobs_per_trial else 0))


def next_number(study: optuna.Study) -> int:
    """The number ``study.ask()`` gives next: its lowest waiting (queued) trial's, which Optuna hands
    out first, else a new trial's."""
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return min((t.number for t in waiting), default=len(study.get_trials(deepcopy=False)))


class TrialOrder:
    """When the driver may ask the trial numbered ``upcoming`` (:func:`next_number`), and which
    finished trials it tells first, for lag ``lag``."""

    def __init__(self, lag: int) -> None:
        self.lag = lag

    def may_ask(self, running: Iterable[int], upcoming: int) -> bool:
        """Whether trial ``upcoming`` may be asked while the trials ``running`` still run."""
        running = list(running)
        return len(running) < self.lag and all(k >= upcoming - self.lag for k in running)

    def release_below(self, upcoming: int) -> int:
        """Finished trials numbered below this are told before trial ``upcoming`` is asked."""
        return upcoming - self.lag


class _EarlierTrials(optuna.study.Study):
    """The study as it stood for a trial: only the trials numbered below ``below``."""

    def __init__(self, study: optuna.Study, below: int) -> None:
        super().__init__(study_name=study.study_name, storage=study._storage, sampler=study.sampler,
                         pruner=study.pruner)
        self._below = below

    def get_trials(self, deepcopy: bool = True, states=None) -> list[FrozenTrial]:  # noqa: ANN001 - Optuna's signature
        return [t for t in super().get_trials(deepcopy=deepcopy, states=states) if t.number < self._below]


class LaggedPruner(optuna.pruners.BasePruner):
    """Asks ``pruner`` about trial ``k`` as if the study held only the trials numbered below ``k - lag``
    (a Hyperband pruner's brackets still read the whole study)."""

    def __init__(self, pruner: optuna.pruners.BasePruner, lag: int) -> None:
        self.pruner, self.lag = pruner, lag

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return self.pruner.prune(_EarlierTrials(study, trial.number - self.lag), trial)
