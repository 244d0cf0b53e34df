"""LocalExecutor: jobs run in the driver's process, an epoch of each in turn. For debugging."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Hashable, Iterator

from automl_noisy.data import NoisyDataset
from automl_noisy.pipeline import Pipeline
from automl_noisy.search.executors.base import Executor, Placement, TrialEvent, describe_error
from automl_noisy.train import EpochMetrics, run_trial
from automl_noisy.train.pretrain import Encoder, EncoderRequest, make_encoder


def _failed(error: Exception) -> Iterator[Placement | EpochMetrics]:
    """A job that fails at once with ``error``."""
    raise error
    yield  # a generator, as a job is


def _placed(epochs: Iterator[EpochMetrics]) -> Iterator[Placement | EpochMetrics]:
    """A job's epochs, after where it runs: this process, on this host."""
    yield Placement("local", socket.gethostname())
    yield from epochs


class LocalExecutor(Executor):
    """Runs the jobs' generators in this process, one epoch of each in turn (so the folds of a trial
    advance together); exceptions become failed jobs."""

    capacity = 1

    def __init__(self, data: NoisyDataset, threads: int | None = None, device: str | None = None) -> None:
        self.data, self.threads, self.device = data, threads, device
        self.pretrain_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self._jobs: dict[Hashable, Iterator[Placement | EpochMetrics]] = {}
        self._encoders: dict[str, Encoder | BaseException] = {}
        self._done: list[str] = []  # pretrained, not yet collected

    def submit(self, job: Hashable, pipeline: Pipeline, fold: int | None = None, encoder: str | None = None,
               snapshots: str | None = None) -> None:
        body = self._encoders[encoder] if encoder is not None else None
        if isinstance(body, BaseException):
            self._jobs[job] = _failed(RuntimeError(f"pretraining its encoder failed: {describe_error(body)}"))
            return
        self._jobs[job] = _placed(run_trial(pipeline, self.data, device=self.device, threads=self.threads,
                                            fold=fold, encoder=body, snapshots=snapshots))

    def add_encoder(self, key: str, body: Encoder) -> None:
        self._encoders[key] = body

    def pretrain(self, requests: list[EncoderRequest], interrupt: Callable[[], None] | None = None) -> None:
        """Pretrain each encoder now, in this process, on every core (a failure is kept, as Ray keeps a
        task's); ``interrupt`` is called after every pretraining epoch."""
        def progress(step: int, steps: int, loss: float) -> None:
            if interrupt is not None:
                interrupt()

        for request in requests:
            try:
                self._encoders[request.key] = make_encoder(request, self.data, progress,
                                                           threads=self.pretrain_threads)
            except Exception as e:  # noqa: BLE001 - the trials that start from it fail with the reason
                self._encoders[request.key] = e
            self._done.append(request.key)

    def pretrained(self, timeout: float = 0.0) -> list[tuple[str, Encoder | BaseException]]:
        done, self._done = self._done, []
        return [(key, self._encoders[key]) for key in done]

    def next_event(self, timeout: float | None = None) -> TrialEvent | None:
        if not self._jobs:
            return None
        job = next(iter(self._jobs))
        epochs = self._jobs.pop(job)
        try:
            metrics = next(epochs)
        except StopIteration:
            return TrialEvent(job, done=True)
        except Exception as e:  # noqa: BLE001 - any failure of a trial is recorded, the search goes on
            return TrialEvent(job, error=describe_error(e))
        self._jobs[job] = epochs  # to the back of the line
        return TrialEvent.of(job, metrics)

    def cancel(self, job: Hashable) -> None:
        epochs = self._jobs.pop(job, None)
        if epochs is not None:
            epochs.close()  # type: ignore[attr-defined]

    def running(self) -> int:
        return len(self._jobs)
