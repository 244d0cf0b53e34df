"""Executors run trials: ``local`` in the driver's process, ``ray`` as Ray tasks.

Only this package imports Ray, and only when the Ray executor is chosen.
"""

from automl_noisy.search.executors.base import Executor, TrialEvent

__all__ = ["Executor", "TrialEvent"]
