"""The driver loop against real storage: local and Ray executors, resume, failures, pruning."""

from __future__ import annotations

import os
import socket

import optuna
import pytest
from optuna.trial import TrialState

from automl_noisy.errors import UserError
from automl_noisy.pipeline import ComponentSpec, Pipeline
from automl_noisy.search import controller
from automl_noisy.search.controller import SearchOptions, search
from automl_noisy.search.executors.local import LocalExecutor


def _options(tmp_path, spec, **kw) -> SearchOptions:
    base = dict(data=spec, space="quick", trials=3, storage=f"sqlite:///{tmp_path}/s.db", executor="local",
                progress=False)
    return SearchOptions(**{**base, **kw})


def test_local_search_records_trials_and_baseline(tmp_path, tiny_spec):
    study = search(_options(tmp_path, tiny_spec))
    trials = study.trials
    assert len(trials) == 3 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    first = trials[0]
    assert first.user_attrs["baseline"] is True
    assert first.user_attrs["combination"] == {"model": "mlp", "adjustment": "none", "mixing": "none",
                                               "loss": "ce", "penalty": "none", "scheme": "single",
                                               "selection": "none", "correction": "none", "semi": "none",
                                               "start": "random", "preset": "none"}
    assert Pipeline.from_dict(first.user_attrs["pipeline"]).loss == ComponentSpec("ce")
    assert first.user_attrs["test_accuracy"] is not None
    assert 0.5 < first.user_attrs["label_issue_auroc"] <= 1  # the injected noise is known: detection quality
    assert len(first.intermediate_values) == 4  # quick.yaml: 4 epochs, reported each
    assert study.user_attrs["space_name"] == "quick" and study.user_attrs["noise_rate"] > 0


def test_rerun_resumes_up_to_the_requested_total(tmp_path, tiny_spec):
    search(_options(tmp_path, tiny_spec, trials=2))
    study = search(_options(tmp_path, tiny_spec, trials=4))
    assert len(study.trials) == 4
    assert sum(bool(t.user_attrs.get("baseline")) for t in study.trials) == 1
    assert len(search(_options(tmp_path, tiny_spec, trials=3)).trials) == 4  # nothing more to do


def test_trials_left_running_by_a_killed_driver_are_failed_and_not_counted(tmp_path, tiny_spec):
    options = _options(tmp_path, tiny_spec, trials=2)
    study = search(options)
    stale = study.ask()
    stale.set_user_attr("driver", f"{socket.gethostname()}:{2 ** 22 + 12345}")  # no such process
    assert not _alive(2 ** 22 + 12345)
    study = search(_options(tmp_path, tiny_spec, trials=3))
    states = {t.number: t.state for t in study.trials}
    assert states[stale.number] == TrialState.FAIL
    assert study.trials[stale.number].user_attrs["interrupted"] is True
    assert sum(s != TrialState.FAIL for s in states.values()) == 3  # the interrupted one did not count


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_changed_space_under_an_existing_study_name_is_a_user_error(tmp_path, tiny_spec):
    search(_options(tmp_path, tiny_spec, trials=1, study="mine"))
    other = tmp_path / "other.yaml"
    other.write_text("epochs: 2\nfamilies:\n  model: [mlp]\n  loss: [ce, mae]\n")
    with pytest.raises(UserError, match="was created with a different search space"):
        search(_options(tmp_path, tiny_spec, trials=2, study="mine", space=str(other)))
    with pytest.raises(UserError, match="different data, noise or --cv"):
        search(_options(tmp_path, tiny_spec.__class__(**{**tiny_spec.to_dict(), "noise": "pair:0.2"}),
                        trials=2, study="mine"))
    assert len(optuna.load_study(study_name="mine", storage=f"sqlite:///{tmp_path}/s.db").trials) == 1


def test_pruning_cancels_a_losing_trial(tmp_path, tiny_spec):
    space = tmp_path / "prune.yaml"
    space.write_text("epochs: 6\nfamilies:\n  model: {mlp: {width: 32, depth: 1}}\n  loss: [ce, mae]\n"
                     "optimizer: {sgd: {lr: [0.001, 0.5]}}\n"
                     "pruner: {name: threshold, lower: 0.99}\n")
    study = search(_options(tmp_path, tiny_spec, trials=3, space=str(space), portfolio=None))
    baseline, *sampled = study.trials  # plain CE, queued by the search, runs every epoch (QUEUED_ATTRS)
    assert baseline.state == TrialState.COMPLETE and len(baseline.intermediate_values) == 6
    assert len(sampled) == 2 and all(t.state == TrialState.PRUNED for t in sampled)
    assert all(len(t.intermediate_values) == 1 for t in sampled)


def test_local_executor_streams_and_cancels(tiny_spec, tiny_data):
    executor = LocalExecutor(tiny_data)
    executor.submit(0, Pipeline(model=ComponentSpec("mlp", {"width": 32}), epochs=3, data=tiny_spec))
    placed, first = executor.next_event(), executor.next_event()
    assert placed.job == 0 and placed.placement.node == "local"  # where the job runs, before its epochs
    assert first.job == 0 and first.metrics.epoch == 1
    executor.cancel(0)
    assert executor.running() == 0 and executor.next_event() is None


def test_ray_executor_runs_trials_as_generator_tasks(ray_session, tiny_spec, tiny_data):
    from automl_noisy.search.executors.ray_executor import RayExecutor

    executor = RayExecutor(tiny_data, workers=2)
    good = Pipeline(model=ComponentSpec("mlp", {"width": 32}), epochs=3, data=tiny_spec)
    executor.submit(0, good)
    executor.submit(1, Pipeline(**{**good.__dict__, "model": ComponentSpec("no_such_model")}))
    events = []
    while executor.running():
        events.append(executor.next_event())
    epochs = [e.metrics.epoch for e in events if e.job == 0 and e.metrics]
    assert epochs == [1, 2, 3] and any(e.job == 0 and e.done for e in events)
    assert [e.job for e in events if e.placement] == [0, 1] or [e.job for e in events if e.placement] == [1, 0]
    assert events[[e.job for e in events].index(0)].placement is not None  # a job's first event: where it runs
    (failure,) = [e for e in events if e.job == 1 and not e.placement]
    assert "UserError" in failure.error and "no_such_model" in failure.error
    executor.submit(2, Pipeline(**{**good.__dict__, "epochs": 50}))
    assert executor.next_event().placement is not None  # no timeout: however long a busy machine takes
    assert executor.next_event().metrics.epoch == 1
    executor.cancel(2)
    assert executor.running() == 0
    executor.close()


def test_search_through_ray(ray_session, tmp_path, tiny_spec):
    study = search(_options(tmp_path, tiny_spec, trials=4, executor="ray", workers=2))
    assert len(study.trials) == 4
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    # 240 rows of train + validation: cross-validated by default, each fold a Ray task
    assert study.best_trial.user_attrs["pipeline"]["data"] == {**tiny_spec.to_dict(), "folds": 3}
    assert study.best_trial.value == max(study.best_trial.intermediate_values.values())


def test_a_search_on_several_workers_is_reproducible(ray_session, tmp_path, tiny_spec):
    """Trials finish in an order that depends on timing; the sampler and the pruner see them in number
    order, so the same command gives the same trials (search/order.py)."""
    runs = []
    for name in ("a", "b"):
        study = search(_options(tmp_path, tiny_spec, trials=6, executor="ray", workers=2, cv=1,
                                storage=f"sqlite:///{tmp_path}/{name}.db"))
        runs.append([(t.params, t.state, t.value, t.user_attrs.get("best_epoch")) for t in study.trials])
    assert runs[0] == runs[1]
    assert len({repr(params) for params, *_ in runs[0]}) == 6  # the sampler drew six different pipelines
