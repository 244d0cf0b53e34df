"""Executor: where trials run. The driver submits pipelines and reads their epochs back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from automl_noisy.pipeline import Pipeline
from automl_noisy.train import EpochMetrics


@dataclass(frozen=True)
class TrialEvent:
    """One thing that happened to a running trial: an epoch, its end, or its failure."""

    number: int
    metrics: EpochMetrics | None = None  # an epoch finished
    done: bool = False  # the trial ended normally
    error: str | None = None  # the trial failed; one line saying why


class Executor(ABC):
    """Runs up to ``capacity`` trials at once. Only the driver touches the study storage."""

    capacity: int = 1

    @abstractmethod
    def submit(self, number: int, pipeline: Pipeline) -> None:
        """Start trial ``number``."""

    @abstractmethod
    def next_event(self, timeout: float | None = None) -> TrialEvent | None:
        """The next event of any running trial; ``None`` if none came within ``timeout`` seconds."""

    @abstractmethod
    def cancel(self, number: int) -> None:
        """Stop trial ``number`` (it was pruned); no more events come from it."""

    def running(self) -> int:
        """How many submitted trials have not ended."""
        return 0

    def close(self) -> None:
        """Release workers and resources."""


def describe_error(exc: BaseException) -> str:
    """One line naming an exception, for a failed trial's ``fail_reason``."""
    cause = getattr(exc, "cause", None) or exc  # Ray wraps the task's exception
    text = " ".join(str(cause).split())
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__
