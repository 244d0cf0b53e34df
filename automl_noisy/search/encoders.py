"""The encoders of a search: each pretrained once per key, kept beside the study, shared by trials.

Before its first trial a search asks its space which encoders its trials may start from (one per
model choice, ``SearchSpace.encoder_pipelines``), loads those already in the cache folder and
starts pretraining the others through the executor (with Ray, as tasks running at once on the CPUs
that are free, after which the trials run; a trial that needs an encoder waits for it), and hands
every one to the executor once. Each is stored as soon as it is there; a killed search resumes without pretraining
again what it stored; a search that never starts from a pretrained body computes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from automl_noisy.data import NoisyDataset
from automl_noisy.pipeline import Pipeline
from automl_noisy.search.executors import Executor
from automl_noisy.search.executors.base import describe_error
from automl_noisy.train.pretrain import EncoderCache, EncoderRequest

#: the cache folder when the storage is not a file (PostgreSQL, MySQL): in the working directory
DEFAULT_ENCODERS = "automl-noisy-encoders"


def encoder_folder(storage_url: str) -> Path | None:
    """Where a search on ``storage_url`` keeps its encoders: beside an SQLite file (``study.db`` ->
    ``study-encoders/``), ``./automl-noisy-encoders`` for a database server, none (memory only) for
    an in-memory database."""
    if storage_url.startswith("sqlite:///"):
        path = storage_url.removeprefix("sqlite:///").split("?", 1)[0]
        if path in ("", ":memory:"):
            return None
        db = Path(path)
        return db.with_name(f"{db.stem}-encoders")
    return Path(DEFAULT_ENCODERS)


class SearchEncoders:
    """Which encoder each trial's pipeline starts from, all of them made ready before the first.
    ``interrupt`` is called during pretraining in the driver's process (the local executor) and stops
    it by raising ``KeyboardInterrupt`` when the search is asked to stop."""

    def __init__(self, folder: str | Path | None, data: NoisyDataset, executor: Executor,
                 interrupt: Callable[[], None] | None = None) -> None:
        self.cache = EncoderCache(folder) if folder is not None else None
        self.data, self.executor, self._interrupt = data, executor, interrupt
        self.threads: int | None = None  # the threads the encoders this search pretrained got (None: none)
        self._keys: dict[tuple, str] = {}  # (model, pretraining, seed) -> key
        self._pending: dict[str, tuple[EncoderRequest, float]] = {}  # pretraining, not yet stored

    def prepare(self, pipelines: list[Pipeline], say: Callable[[str], None]) -> None:
        """Load or pretrain the encoders ``pipelines`` start from, and give them to the executor."""
        requests = {}
        for pipeline in pipelines:
            request = EncoderRequest.of(pipeline, self.data)
            self._keys[_identity(pipeline)] = request.key
            requests[request.key] = request
        missing = []
        for key, request in requests.items():
            body, problem = self.cache.read(key, request) if self.cache is not None else (None, None)
            if problem:
                say(f"encoder file {self.cache.path(key)} is not used: {problem}; it is pretrained again")  # type: ignore[union-attr]
            if body is None:
                missing.append(request)
            else:
                say(f"encoder {request.describe()} loaded from {self.cache.folder}")  # type: ignore[union-attr]
                self.executor.add_encoder(key, body)
        if not missing:
            return
        rows = len(self.data.y_train) + len(self.data.y_val)
        say(f"pretraining {', '.join(r.describe() for r in missing)} on the {rows} training-pool rows (inputs "
            "only); trials that start from an encoder wait for it")
        for request in missing:
            self._pending[request.key] = (request, time.monotonic())
        self.executor.pretrain(missing, self._interrupt)
        self.threads = self.executor.pretrain_threads
        self.collect(say)

    @property
    def pending(self) -> bool:
        """Whether some pretraining has not been collected yet."""
        return bool(self._pending)

    def collect(self, say: Callable[[str], None], timeout: float = 0.0) -> None:
        """Store the encoders whose pretraining has finished (waiting up to ``timeout`` seconds for
        all of them)."""
        if not self._pending:
            return
        for key, body in self.executor.pretrained(timeout):
            request, began = self._pending.pop(key)
            if isinstance(body, BaseException):  # the trials that start from it fail with the reason
                say(f"pretraining {request.describe()} failed: {describe_error(body)}")
                continue
            if self.cache is not None:
                self.cache.save(key, body)
            where = f"stored in {self.cache.folder}" if self.cache is not None else "kept in memory"
            say(f"pretrained {request.describe()} in {time.monotonic() - began:.0f} s, {where}")

    def key(self, pipeline: Pipeline) -> str | None:
        """The encoder ``pipeline`` starts from (None: random weights)."""
        if not pipeline.start.pretrained:
            return None
        identity = _identity(pipeline)
        if identity not in self._keys:  # a pipeline the space did not announce: computed now
            self.prepare([pipeline], lambda _: None)
        return self._keys[identity]


def _identity(pipeline: Pipeline) -> tuple:
    return (json.dumps(pipeline.model.to_dict(), sort_keys=True),
            json.dumps(pipeline.pretraining.to_dict() if pipeline.pretraining else None, sort_keys=True), pipeline.seed)
