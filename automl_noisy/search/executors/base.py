"""Executor: where trials run. The driver submits pipelines and reads their epochs back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from automl_noisy.pipeline import Pipeline
from automl_noisy.train import EpochMetrics
from automl_noisy.train.pretrain import Encoder, EncoderRequest


@dataclass(frozen=True)
class Placement:
    """Where a job runs: its node (Ray's node id, or ``local``), that node's address, its GPU ids."""

    node: str
    address: str
    gpus: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for a trial attribute, e.g. ``node 1a2b3c4d (10.0.0.5), GPU 0``."""
        gpus = f", GPU {','.join(self.gpus)}" if self.gpus else ""
        return f"node {self.node} ({self.address}){gpus}"


@dataclass(frozen=True)
class TrialEvent:
    """One thing that happened to a running job (a trial, or one fold of it): where it started, an
    epoch, its end, or its failure."""

    job: Hashable
    metrics: EpochMetrics | None = None  # an epoch finished
    done: bool = False  # the job ended normally
    error: str | None = None  # the job failed; one line saying why
    placement: Placement | None = None  # the job started here (its first event)

    @classmethod
    def of(cls, job: Hashable, value: Placement | EpochMetrics) -> "TrialEvent":
        """The event a job's stream reports: where it runs, or an epoch."""
        return cls(job, placement=value) if isinstance(value, Placement) else cls(job, metrics=value)


class Executor(ABC):
    """Runs up to ``capacity`` jobs at once. A job trains one pipeline on the data, or on one of its
    cross-validation folds; the driver names it. Only the driver touches the study storage."""

    capacity: int = 1
    #: the CPU threads each encoder is pretrained with: set once per executor, so that a search's
    #: encoders (bit-identical for a seed and a thread count) do not depend on timing
    pretrain_threads: int = 1

    @abstractmethod
    def submit(self, job: Hashable, pipeline: Pipeline, fold: int | None = None, encoder: str | None = None,
               snapshots: str | None = None) -> None:
        """Start ``job``: train ``pipeline`` on the data, or on its fold ``fold``; a pretrained start
        loads the encoder ``encoder`` (a key given to ``add_encoder``). ``snapshots``: a folder of the
        driver's machine to save each epoch's weights in (see :func:`automl_noisy.train.run_trial`); a
        job that runs on another machine saves none."""

    @abstractmethod
    def add_encoder(self, key: str, body: Encoder) -> None:
        """Make a pretrained body available to the jobs submitted after (sent to workers once)."""

    @abstractmethod
    def pretrain(self, requests: list[EncoderRequest], interrupt: Callable[[], None] | None = None) -> None:
        """Start pretraining the encoders ``requests`` name on the data. Jobs submitted after may
        start from them at once: where the executor can, a job waits for its encoder while jobs
        that need none run. An executor that pretrains in this process calls ``interrupt`` between
        epochs (it raises ``KeyboardInterrupt`` when the search is asked to stop)."""

    @abstractmethod
    def pretrained(self, timeout: float = 0.0) -> list[tuple[str, Encoder | BaseException]]:
        """The encoders ``pretrain`` finished since the last call (waiting up to ``timeout`` seconds
        for all of them), each with its body, or with the exception its pretraining raised (the jobs
        that start from it then fail with that reason)."""

    @abstractmethod
    def next_event(self, timeout: float | None = None) -> TrialEvent | None:
        """The next event of any running job; ``None`` if none came within ``timeout`` seconds."""

    @abstractmethod
    def cancel(self, job: Hashable) -> None:
        """Stop ``job`` (its trial was pruned or failed); no more events come from it."""

    def running(self) -> int:
        """How many submitted jobs have not ended."""
        return 0

    def close(self) -> None:
        """Release workers and resources."""


def describe_error(exc: BaseException) -> str:
    """One line naming an exception, for a failed trial's ``fail_reason``."""
    cause = getattr(exc, "cause", None) or exc  # Ray wraps the task's exception
    text = " ".join(str(cause).split())
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__
