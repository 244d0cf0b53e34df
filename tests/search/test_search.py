"""The driver loop against real storage: local and Ray executors, resume, failures, pruning."""

from __future__ import annotations

import os
import socket

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from automl_noisy.errors import UserError
from automl_noisy.pipeline import ComponentSpec, Pipeline
from automl_noisy.search import controller
from automl_noisy.search.controller import SearchOptions, search
from automl_noisy.search.executors.base import Executor, TrialEvent
from automl_noisy.search.executors.local import LocalExecutor
from automl_noisy.search.order import trials_in_flight


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


# A space of its own for the reproducibility tests: the sampler's start-up is two random trials and the
# median pruner judges from the third finished trial on, so a search of 8 trials on two workers (two
# in flight: trial n is drawn seeing trials 0 .. n-3 finished) has its trials 4 .. 7 drawn by TPE from
# the trials before them, and its pruner at work.
REPRODUCIBLE_SPACE = """\
epochs: 3
batch_size: 32
optimizer: {sgd: {lr: [0.001, 0.5]}}
sampler: {name: tpe, multivariate: true, group: true, n_startup_trials: 2}
pruner: {name: median, n_startup_trials: 2, n_warmup_steps: 0}
families:
  model: {mlp: {width: [32, 128], depth: [1, 2]}}
  loss: [ce, mae, gce, sce]
  mixing: [none, mixup]
  selection: [none, small_loss]
  penalty: [weight_decay]
"""
SAMPLED_FROM = 4  # trials numbered from here on were drawn by TPE (two start-up draws, two in flight)


def _reproducible_options(tmp_path, spec, name: str, **kw) -> SearchOptions:
    space = tmp_path / "reproducible.yaml"
    space.write_text(REPRODUCIBLE_SPACE)
    return _options(tmp_path, spec, **{"trials": 8, "space": str(space), "portfolio": None, "executor": "ray",
                                       "workers": 2, "cv": 1, "storage": f"sqlite:///{tmp_path}/{name}.db", **kw})


def _outcome(study: optuna.Study) -> list[tuple]:
    """Every trial as the sampler and the pruner left it: number, state, parameters, value, epochs."""
    return [(t.number, t.state, t.params, t.value, t.intermediate_values, t.user_attrs.get("best_epoch"))
            for t in study.trials]


class _InTurn(Executor):
    """The Ray executor with the timing taken out: a job's events are held until it has ended, and the
    driver hears the ended jobs one at a time, whole, in a fixed turn among the jobs it has running:
    the lowest-numbered first, or (``latest_first``) the highest. Two searches through it stand for
    two runs of one command whose trials happened to finish in two different orders."""

    def __init__(self, inner: Executor, latest_first: bool) -> None:
        self.inner, self.capacity, self.latest_first = inner, inner.capacity, latest_first
        self.live: dict = {}  # job -> its events so far; the driver has not yet heard it end
        self.ended: set = set()
        self.out: list[TrialEvent] = []  # the turn's job's events, being handed to the driver

    def submit(self, job, pipeline, fold=None, encoder=None, snapshots=None) -> None:
        self.inner.submit(job, pipeline, fold, encoder, snapshots)
        self.live[job] = []

    def next_event(self, timeout=None):
        while not self.out:
            turn = (max if self.latest_first else min)(self.live) if self.live else None
            if turn in self.ended:
                self.out, self.live[turn] = self.live[turn], []
                continue
            event = self.inner.next_event(timeout)
            if event is None:
                return None
            self.live[event.job].append(event)
            if event.done or event.error is not None:
                self.ended.add(event.job)
        event = self.out.pop(0)
        if event.done or event.error is not None:
            del self.live[event.job]
        return event

    def cancel(self, job) -> None:
        self.inner.cancel(job)
        self.live.pop(job, None)
        self.out = [e for e in self.out if e.job != job]

    def running(self) -> int:
        return len(self.live)

    def add_encoder(self, key, body) -> None:
        self.inner.add_encoder(key, body)

    def pretrain(self, requests, interrupt=None) -> None:
        self.inner.pretrain(requests, interrupt)

    def pretrained(self, timeout=0.0):
        return self.inner.pretrained(timeout)

    def close(self) -> None:
        self.inner.close()


def _search_in_turn(monkeypatch, options: SearchOptions, latest_first: bool) -> optuna.Study:
    make = controller._executor
    monkeypatch.setattr(controller, "_executor", lambda o, d: _InTurn(make(o, d), latest_first))
    return search(options)


def test_a_search_on_several_workers_is_reproducible(ray_session, tmp_path, tiny_spec):
    """Trials finish in an order that depends on timing; the sampler and the pruner see them in number
    order, so the same command gives the same trials, the sampler's included (search/order.py)."""
    a, b = (search(_reproducible_options(tmp_path, tiny_spec, name)) for name in ("a", "b"))
    assert _outcome(a) == _outcome(b)
    assert trials_in_flight(2, 1) == 2 and len(a.trials) == 8 > SAMPLED_FROM  # TPE drew trials 4 .. 7
    assert len({repr(t.params) for t in a.trials[1:]}) == 7  # the sampler drew seven different pipelines


def test_an_ordered_search_gives_the_same_trials_whichever_trial_finishes_first(ray_session, tmp_path, tiny_spec,
                                                                               monkeypatch):
    """The trials of two runs finish in opposite orders (the earliest running trial first, or the
    latest): the sampler and the pruner still see the same study, so the runs give the same trials."""
    first = _search_in_turn(monkeypatch, _reproducible_options(tmp_path, tiny_spec, "first"), latest_first=False)
    latest = _search_in_turn(monkeypatch, _reproducible_options(tmp_path, tiny_spec, "latest"), latest_first=True)
    assert _outcome(first) == _outcome(latest)


# Queued ahead of the sampler's trials: with plain CE, four trials wait in the study before the first is asked.
QUEUED_PORTFOLIO = {"vectors": [{"name": "gce", "params": {"loss": "gce"}},
                                {"name": "mixup", "params": {"mixing": "mixup"}},
                                {"name": "small-loss", "params": {"selection": "small_loss"}}]}


def test_queued_trials_run_two_at_a_time_and_the_order_holds(ray_session, tmp_path, tiny_spec, monkeypatch):
    """The trials a search queues (plain CE, the portfolio) wait in the study before the first is
    asked, so the next trial's number is the lowest waiting one: two of them run at once on two
    workers (trial 1 is asked before trial 0 is told), and two opposite finishing orders still give
    the same trials."""
    portfolio = tmp_path / "portfolio.yaml"
    portfolio.write_text(yaml.safe_dump(QUEUED_PORTFOLIO))
    runs = [_search_in_turn(monkeypatch, _reproducible_options(tmp_path, tiny_spec, name, portfolio=str(portfolio)),
                            latest_first=latest) for name, latest in (("first", False), ("latest", True))]
    for study in runs:
        assert [t.user_attrs.get("portfolio") for t in study.trials[:4]] == [None, "gce", "mixup", "small-loss"]
        asked, told = [t.datetime_start for t in study.trials], [t.datetime_complete for t in study.trials]
        assert all(asked[n] < told[n - 1] for n in range(1, 4))  # in flight together, not one after the other
    assert _outcome(runs[0]) == _outcome(runs[1])


def test_an_unordered_search_depends_on_which_trial_finishes_first(ray_session, tmp_path, tiny_spec, monkeypatch):
    """The same two finishing orders with ``--unordered`` (``reproducible=False``): the sampler sees each
    trial as it finishes, so it draws other trials and the runs differ. What differs is only the
    order in which trials finish, held fixed here, so the runs differ on every run of the test; and
    the comparison of the test above fails when the order is not kept. Checked by hand without the
    fixed order too: five pairs of unordered runs of this search on a local Ray of 2 CPUs all
    differed (from trial 2, 3 or 4 on), five pairs of ordered runs were all the same."""
    first = _search_in_turn(monkeypatch, _reproducible_options(tmp_path, tiny_spec, "first", reproducible=False),
                            latest_first=False)
    latest = _search_in_turn(monkeypatch, _reproducible_options(tmp_path, tiny_spec, "latest", reproducible=False),
                             latest_first=True)
    assert _outcome(first) != _outcome(latest)
    assert _outcome(first)[:2] == _outcome(latest)[:2]  # plain CE and the first start-up draw, asked at once
    differ = [x[0] for x, y in zip(_outcome(first), _outcome(latest)) if x[2] != y[2]]
    assert differ and min(differ) >= 2  # trial 2 on: drawn after the first trial to finish
