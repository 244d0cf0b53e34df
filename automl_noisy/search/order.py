"""Reproducible searches with several workers: the sampler and the pruner see trials in number order.

With trials running in parallel, which trials have finished when the sampler draws trial ``n``
depends on timing, and so does what it draws. A search is made reproducible by a fixed lag ``L``
(the number of trials in flight): trial ``n`` is asked only once every trial numbered below ``n - L``
has finished, and a finished trial ``k`` is told to the study (made visible) only when trial
``k + L + 1`` is about to be asked. So when trial ``n`` is drawn the study shows exactly trials
``0 .. n - L - 1`` as finished and ``n - L .. n - 1`` as running, whatever the timing; and the pruner
judges trial ``k`` against trials numbered below ``k - L`` only (all finished when ``k`` was asked).
The price: a worker may wait for a slow older trial before the next one can start.

>>> order = TrialOrder(lag=2, first=2)  # trials 0 and 1 are out
>>> order.may_ask(running=[0, 1]), order.may_ask(running=[1])
(False, True)
>>> order.asked()  # trial 2 went out; trial 1 has finished, trial 0 still runs
>>> order.may_ask(running=[0]), order.may_ask(running=[2]), order.release_below()
(False, True, 1)
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import optuna
from optuna.trial import FrozenTrial


def trials_in_flight(capacity: int, jobs_per_trial: int) -> int:
    """How many trials to keep in flight so that ``capacity`` job slots stay busy (one more trial than
    fits exactly when the trials' jobs do not fill the slots evenly)."""
    fit = math.ceil(capacity / jobs_per_trial)
    return max(1, fit + (1 if capacity % jobs_per_trial else 0))


class TrialOrder:
    """When the driver may ask the next trial, and which finished trials it may tell, for lag ``lag``;
    ``first`` is the number the next trial will get."""

    def __init__(self, lag: int, first: int) -> None:
        self.lag, self.next = lag, first

    def may_ask(self, running: Iterable[int]) -> bool:
        """Whether trial ``self.next`` may be asked while the trials ``running`` still run."""
        running = list(running)
        return len(running) < self.lag and all(k >= self.next - self.lag for k in running)

    def release_below(self) -> int:
        """Finished trials numbered below this are told before trial ``self.next`` is asked."""
        return self.next - self.lag

    def asked(self) -> None:
        self.next += 1


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
