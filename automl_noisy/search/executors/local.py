"""LocalExecutor: trials run in the driver's process, one at a time. For debugging."""

from __future__ import annotations

from collections.abc import Iterator

from automl_noisy.data import NoisyDataset
from automl_noisy.pipeline import Pipeline
from automl_noisy.search.executors.base import Executor, TrialEvent, describe_error
from automl_noisy.train import EpochMetrics, run_trial


class LocalExecutor(Executor):
    """Runs each trial's generator in this process; exceptions become failed trials."""

    capacity = 1

    def __init__(self, data: NoisyDataset, threads: int | None = None, device: str | None = None) -> None:
        self.data, self.threads, self.device = data, threads, device
        self._trials: dict[int, Iterator[EpochMetrics]] = {}

    def submit(self, number: int, pipeline: Pipeline) -> None:
        self._trials[number] = run_trial(pipeline, self.data, device=self.device, threads=self.threads)

    def next_event(self, timeout: float | None = None) -> TrialEvent | None:
        if not self._trials:
            return None
        number, trial = next(iter(self._trials.items()))
        try:
            return TrialEvent(number, metrics=next(trial))
        except StopIteration:
            del self._trials[number]
            return TrialEvent(number, done=True)
        except Exception as e:  # noqa: BLE001 - any failure of a trial is recorded, the search goes on
            del self._trials[number]
            return TrialEvent(number, error=describe_error(e))

    def cancel(self, number: int) -> None:
        trial = self._trials.pop(number, None)
        if trial is not None:
            trial.close()  # type: ignore[attr-defined]

    def running(self) -> int:
        return len(self._trials)
