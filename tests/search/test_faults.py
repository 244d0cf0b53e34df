"""Injected faults, with both executors: a trial that raises, a trial whose loss diverges, a worker
that dies. Each fails that trial with a readable reason; the search goes on to its total."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from optuna.trial import TrialState

from automl_noisy.pipeline import ComponentSpec, OptimizerSpec, Pipeline, StartSpec
from automl_noisy.search import controller
from automl_noisy.search.controller import SearchOptions, search

EXECUTORS = ["local", "ray"]


def _search(tmp_path, spec, executor: str, request) -> SearchOptions:
    if executor == "ray":
        request.getfixturevalue("ray_session")
    return SearchOptions(data=spec, space="quick", trials=3, storage=f"sqlite:///{tmp_path}/s.db", executor=executor,
                         workers=None if executor == "local" else 2, progress=False, cv=1)


def _with_trial_1(monkeypatch, change) -> None:
    """Trial 1 of the search gets ``change(pipeline)``; the others stay as the space draws them."""
    real = controller.SearchSpace.suggest

    def suggest(self, trial, data, seed=0):
        pipeline = real(self, trial, data, seed)
        return change(pipeline) if trial.number == 1 else pipeline

    monkeypatch.setattr(controller.SearchSpace, "suggest", suggest)


@pytest.mark.parametrize("start", ["random", "finetune"])  # finetune: the driver fails to make its encoder
@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_trial_that_raises(executor, start, tmp_path, tiny_spec, monkeypatch, request):
    pretrained = start != "random"
    _with_trial_1(monkeypatch, lambda p: Pipeline(**{
        **p.__dict__, "model": ComponentSpec("no_such_model"), "start": StartSpec(start),
        "pretraining": (p.pretraining or ComponentSpec("simclr")) if pretrained else None}))
    study = search(_search(tmp_path, tiny_spec, executor, request))
    states = [t.state for t in study.trials]
    assert len(states) == 3 and states[1] == TrialState.FAIL and states.count(TrialState.FAIL) == 1
    assert "unknown model 'no_such_model'" in study.trials[1].user_attrs["fail_reason"]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_trial_whose_loss_diverges(executor, tmp_path, tiny_spec, monkeypatch, request):
    """A deep wide MLP at the largest learning rate a pipeline allows, with heavy momentum and no decay:
    its loss overflows within two epochs, and the trial fails as diverged."""
    diverging = lambda p: Pipeline(**{**p.__dict__, "model": ComponentSpec("mlp", {"width": 1024, "depth": 4}),  # noqa: E731
                                      "optimizer": OptimizerSpec("sgd", lr=10.0, momentum=0.99, schedule="constant")})
    _with_trial_1(monkeypatch, diverging)
    study = search(_search(tmp_path, tiny_spec, executor, request))
    states = [t.state for t in study.trials]
    assert len(states) == 3 and states[1] == TrialState.FAIL and states.count(TrialState.FAIL) == 1
    assert "TrainingDiverged: non-finite training loss" in study.trials[1].user_attrs["fail_reason"]


def _workers_titled(ray, title: str) -> list[int]:
    """Pids of this Ray session's workers (children of its raylet) whose title (a Ray worker sets its
    command line to its task's name) starts with ``title``."""
    (raylet,) = [p.process.pid for p in ray._private.worker._global_node.all_processes["raylet"]]
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == raylet and (proc / "cmdline").read_bytes().startswith(title.encode()):
                found.append(int(proc.name))
        except (OSError, ValueError, IndexError):  # gone meanwhile
            pass
    return found


def test_a_worker_that_dies(ray_session, tmp_path, tiny_spec, tiny_data):
    """kill -9 of the Ray worker running a trial: that trial fails with Ray's reason, others go on."""
    from automl_noisy.search.executors.ray_executor import RayExecutor

    executor = RayExecutor(tiny_data, workers=2)
    long = Pipeline(model=ComponentSpec("mlp", {"width": 32}), epochs=100_000, data=tiny_spec)
    executor.submit("doomed", long)
    assert executor.next_event().placement is not None  # no timeout: however long a busy machine takes
    first = executor.next_event()  # the trial has reported an epoch, so its worker runs it
    assert first.job == "doomed" and first.metrics is not None
    workers = _workers_titled(ray_session, "ray::_trial_task")  # ours, and maybe one still ending a cancelled task
    assert workers
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    event = executor.next_event()
    while event.metrics is not None:  # epochs reported before the kill may still be queued
        event = executor.next_event()
    assert event.job == "doomed" and event.error and not event.done
    assert "died" in event.error.lower() or "crash" in event.error.lower() or "exit" in event.error.lower()
    executor.submit("after", Pipeline(model=ComponentSpec("mlp", {"width": 32}), epochs=2, data=tiny_spec))
    events = []
    while executor.running():
        events.append(executor.next_event())
    assert [e.metrics.epoch for e in events if e.metrics] == [1, 2] and events[-1].done and events[0].placement
    executor.close()
