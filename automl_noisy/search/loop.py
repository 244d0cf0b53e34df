"""The search loop: ask -> suggest -> executor -> report/prune -> tell, for the trials of one driver.

:class:`SearchLoop` holds what the loop keeps track of (the running trials, their curves and open
jobs, the finished trials not yet told) and has one method per thing it does: launch a trial, handle
one executor event, stop a trial, tell held trials in number order, and clean up when interrupted.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.trial import TrialState

from automl_noisy.data import NoisyDataset
from automl_noisy.data.folds import scored_rows
from automl_noisy.pipeline import Pipeline
from automl_noisy.search.curve import TrialCurve
from automl_noisy.search.encoders import SearchEncoders
from automl_noisy.search.executors import Executor
from automl_noisy.search.executors.base import TrialEvent, describe_error
from automl_noisy.search.fold_models import FoldModels
from automl_noisy.search.order import LaggedPruner, TrialOrder, next_number, trials_in_flight
from automl_noisy.search.progress import SearchProgress
from automl_noisy.search.racing import behind
from automl_noisy.search.selection import correct_rows
from automl_noisy.search.shared import STUDY_FULL, queued_as, surplus
from automl_noisy.search.space import SearchSpace
from automl_noisy.search.stop import StopRequest
from automl_noisy.search.storage import HEARTBEAT_SECONDS
from automl_noisy.search.study import driver_name, unqueue
from automl_noisy.train import EpochMetrics

if TYPE_CHECKING:
    from automl_noisy.search.controller import SearchOptions


class SearchLoop:
    """Asks, runs and tells trials until ``remaining`` more have been launched and have finished;
    past ``deadline`` (a ``time.monotonic()`` value: the time budget) no more are launched, and the
    running ones finish. ``kept``: where fold jobs save their epochs, and a complete trial's best
    epoch is kept (search/fold_models.py)."""

    progress: SearchProgress  # set by run()

    def __init__(self, study: optuna.Study, space: SearchSpace, data: NoisyDataset, executor: Executor,
                 encoders: SearchEncoders, options: SearchOptions, remaining: int, stop_request: StopRequest,
                 deadline: float | None = None, kept: FoldModels | None = None) -> None:
        self.study, self.space, self.data, self.executor, self.encoders = study, space, data, executor, encoders
        self.options, self.remaining, self.stop_request = options, remaining, stop_request
        self.deadline, self.kept = deadline, kept
        self.folds = folds = data.spec.folds
        self.jobs_of_trial = list(range(folds)) if folds > 1 else [None]
        self.sizes, self.rows = scored_rows(data, data.trusted_objective)  # the rows a trial's value is measured on
        self.all_sizes = scored_rows(data, False)[0] if data.trusted_objective else None
        self.order: TrialOrder | None = None
        if options.reproducible and executor.capacity > 1:  # one job at a time is in order already
            self.order = TrialOrder(trials_in_flight(executor.capacity, len(self.jobs_of_trial)))
            study.pruner = LaggedPruner(study.pruner, self.order.lag)
        self.running: dict[int, optuna.Trial] = {}
        self.curves: dict[int, TrialCurve] = {}
        self.places: dict[int, set[str]] = {}  # where each running trial's jobs run
        self.open_jobs: dict[int, set[int | None]] = {}
        self.held: dict[int, tuple[optuna.Trial, TrialState, TrialCurve]] = {}  # finished, not yet told (order.py)
        self.launched, self.beat = 0, time.monotonic()
        self.driver = driver_name()
        self.queued: set[int] = set()  # trials the search queued itself: they run every epoch (see QUEUED_ATTRS)
        self.racing = (space.racing if folds > 1 and space.racing is not None and space.racing.folds < folds
                       else None)
        self.first_jobs = self.jobs_of_trial[:self.racing.folds] if self.racing is not None else self.jobs_of_trial
        self.later: dict[int, tuple[Pipeline, str | None]] = {}  # raced trials whose other folds wait for the verdict
        self.mine: set[int] = set()  # the trials this driver ran

    def run(self, progress: SearchProgress, notes: tuple[str, ...] = ()) -> None:
        """The whole loop, its progress shown on ``progress``; ``notes``: progress lines said first."""
        self.progress = progress
        try:
            self._prepare(notes)
            while self.launched < self.remaining or self.running:
                self._step()
            self._wind_up()
        except KeyboardInterrupt:
            self._interrupted()
            raise

    def _prepare(self, notes: tuple[str, ...]) -> None:
        """Say the notes (and why racing is off), pretrain the encoders the space needs."""
        for note in notes:
            self.progress.say(note)
        space, folds = self.space, self.folds
        if space.racing is not None and self.racing is None:
            self.progress.say(f"racing is off: it needs more folds than its first {space.racing.folds}, and this search "
                              + (f"has {folds}" if folds > 1 else "scores one holdout split"))
        self.encoders.prepare(space.encoder_pipelines(self.data.spec, self.options.seed), self.progress.say)
        if self.encoders.threads is not None and "encoder_threads" not in self.study.user_attrs:
            self.study.set_user_attr("encoder_threads", self.encoders.threads)  # train pretrains alike (export names it)

    def _step(self) -> None:
        """One turn of the loop: launch what may be launched, then handle the executor's next event."""
        self.stop_request.check()
        self._check_time_budget()
        self._launch_while_allowed()
        if self.launched >= self.remaining:
            self._release(math.inf)
        event = self.executor.next_event(timeout=1.0)
        self.encoders.collect(self.progress.say)
        self._heartbeat()
        if event is None or event.job[0] not in self.running:  # nothing, or a stopped trial's last words
            return
        self._handle(event)

    def _wind_up(self) -> None:
        """After the last trial: tell the held ones, wait for the encoders, unqueue what did not run."""
        self._release(math.inf)
        while self.encoders.pending:  # stored for a resume or train, even if no trial used it
            self.stop_request.check()
            self.encoders.collect(self.progress.say, timeout=1.0)
        unqueue(self.study, self.driver, "not run: the search ended before it")
        if self.kept is not None:
            self.kept.tidy(self.mine)

    def _interrupted(self) -> None:
        """The search was stopped: the running trials are marked FAIL and ``interrupted``."""
        self._release(math.inf)  # finished trials keep their results
        for number, trial in self.running.items():
            for fold in self.open_jobs.get(number, ()):  # none yet when it stopped while preparing
                self.executor.cancel((number, fold))
            trial.set_user_attr("interrupted", True)
            trial.set_user_attr("fail_reason", "interrupted: the search was stopped")
            self.study.tell(trial, state=TrialState.FAIL)
        unqueue(self.study, self.driver, "interrupted: the search was stopped")
        if self.kept is not None:
            self.kept.tidy(self.mine)

    # launching trials

    def _check_time_budget(self) -> None:
        """Past the deadline, launch no more trials; the running ones finish."""
        if self.deadline is not None and self.launched < self.remaining and time.monotonic() >= self.deadline:
            self.progress.say(f"time budget of {self.options.time_budget:g} s spent: no more trials are launched; "
                              f"the {len(self.running)} running finish")
            self.launched = self.remaining
            self._release(math.inf)

    def _may_ask(self, upcoming: int | None) -> bool:
        """Whether the next trial may be asked now: a free job slot, or the ordered search's rule for
        the number it gets (``upcoming``)."""
        if self.order is None:
            return self.executor.running() < self.executor.capacity
        return self.order.may_ask(self.running, upcoming)

    def _launch_while_allowed(self) -> None:
        """Launch trials while more are to be launched and the next may be asked."""
        while self.launched < self.remaining:
            upcoming = None if self.order is None else next_number(self.study)  # one storage read a launch
            if not self._may_ask(upcoming):
                return
            self.stop_request.check()
            if upcoming is not None:
                self._release(self.order.release_below(upcoming))
            self._launch()

    def _launch(self) -> None:
        """Ask a trial and submit its first folds (all of them for a queued trial, or without racing)."""
        trial = self.study.ask()
        trial.set_user_attr("driver", self.driver)
        reason = surplus(self.study, trial, self.options.trials)  # another search shares the study
        if reason is not None:
            self._turn_away(trial, reason)
            return
        if queued_as(trial) is not None:
            self.queued.add(trial.number)
        pipeline = self._suggest(trial)
        self._start(trial)
        try:
            encoder = self.encoders.key(pipeline)
        except Exception as e:  # noqa: BLE001 - as if the trial raised: it fails, the search goes on
            self.open_jobs[trial.number] = set()
            self._stop(trial.number, TrialState.FAIL, describe_error(e))
            return
        if encoder is not None:
            trial.set_user_attr("encoder", encoder)
        start = self.jobs_of_trial if trial.number in self.queued else self.first_jobs  # queued: never raced
        self._submit(trial.number, start, pipeline, encoder)
        if len(start) < len(self.jobs_of_trial):
            self.later[trial.number] = (pipeline, encoder)

    def _turn_away(self, trial: optuna.Trial, reason: str) -> None:
        """A trial that may not run (search/shared.py) is failed and marked interrupted; once the study
        is full, no more are launched."""
        trial.set_user_attr("interrupted", True)
        trial.set_user_attr("fail_reason", reason)
        self.study.tell(trial, state=TrialState.FAIL)
        if reason.startswith(STUDY_FULL):
            self.launched = self.remaining

    def _suggest(self, trial: optuna.Trial) -> Pipeline:
        """The trial's pipeline, recorded in its attributes with its combination of methods."""
        space = self.space
        pipeline = space.suggest(trial, self.data.spec, self.options.seed)
        trial.set_user_attr("pipeline", pipeline.to_dict())
        trial.set_user_attr("combination", {**pipeline.combination(),
                                            **({"preset": trial.params.get("preset", "none")}
                                               if space.presets else {})})
        return pipeline

    def _start(self, trial: optuna.Trial) -> None:
        """Count ``trial`` as launched and running."""
        number = trial.number
        self.running[number], self.curves[number] = trial, TrialCurve(self.sizes, self.rows, self.all_sizes)
        self.mine.add(number)
        self.places[number] = set()
        self.launched += 1

    def _submit(self, number: int, folds: list[int | None], pipeline: Pipeline, encoder: str | None) -> None:
        """Submit the jobs of trial ``number`` for ``folds``, which become its open jobs."""
        for fold in folds:
            self.executor.submit((number, fold), pipeline, fold, encoder,
                                 self.kept.snapshots(number, fold) if self.kept is not None else None)
        self.open_jobs[number] = set(folds)

    # the executor's events

    def _heartbeat(self) -> None:
        """Keep the running and held trials alive in the storage."""
        if time.monotonic() - self.beat > HEARTBEAT_SECONDS / 2:
            for t in [*self.running.values(), *(h[0] for h in self.held.values())]:
                self.study._storage.record_heartbeat(t._trial_id)  # type: ignore[attr-defined]
            self.beat = time.monotonic()

    def _handle(self, event: TrialEvent) -> None:
        """One event of a running trial's job: where it runs, an epoch, its end or its error."""
        number, fold = event.job
        if event.placement is not None:
            self.places[number].add(event.placement.describe())
            self.running[number].set_user_attr("ran_on", sorted(self.places[number]))
        elif event.metrics is not None:
            self._epoch(number, fold, event.metrics)
        elif event.done:
            self._job_done(number, fold)
        else:
            where = f"fold {fold}: " if fold is not None else ""
            self._stop(number, TrialState.FAIL, where + (event.error or "the trial failed"))

    def _epoch(self, number: int, fold: int | None, metrics: EpochMetrics) -> None:
        """Add a fold's epoch to the trial's curve; a complete epoch is reported, and may prune it."""
        epoch = self.curves[number].add(fold or 0, metrics)
        if epoch is not None:
            self.running[number].report(epoch.val_accuracy, epoch.epoch)
            if number not in self.queued and self.running[number].should_prune():
                self._stop(number, TrialState.PRUNED)

    def _job_done(self, number: int, fold: int | None) -> None:
        """A job ended: when the trial has no open jobs left, race it (after its first folds) or finish it."""
        self.open_jobs[number].discard(fold)
        if not self.open_jobs[number] and number in self.later:  # its first folds are done: race it
            self._after_first_folds(number)
        elif not self.open_jobs[number]:
            if self.curves[number].best is not None:
                self._stop(number, TrialState.COMPLETE)
            else:
                self._stop(number, TrialState.FAIL, "the trial ended without an epoch")

    def _after_first_folds(self, number: int) -> None:
        """Race trial ``number``: submit its other folds, or prune it when it is clearly behind."""
        pipeline, encoder = self.later.pop(number)
        verdict = self._race(number)
        if verdict is None:
            rest = [f for f in self.jobs_of_trial if f not in self.first_jobs]
            self._submit(number, rest, pipeline, encoder)
        else:
            epoch_run, accuracy, why = verdict
            self.running[number].report(accuracy, epoch_run)
            self.running[number].set_user_attr("raced_out", why)
            self._stop(number, TrialState.PRUNED, note=why)

    def _race(self, number: int) -> tuple[int, float, str] | None:
        """Whether trial ``number`` is clearly behind on its first folds (search/racing.py): its best
        epoch there, that epoch's accuracy and the reason; None when it goes on."""
        first_jobs, racing, order, folds = self.first_jobs, self.racing, self.order, self.folds
        first = self.curves[number].best_of_folds(first_jobs)  # type: ignore[arg-type]
        if first is None:
            return None
        epoch, accuracy, correct = first
        below = number - order.lag if order is not None else math.inf  # what the ordered search lets it see
        rivals = [(t, c) for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                  if t.number < below and (c := correct_rows(t)) is not None and len(c) == sum(self.sizes)]
        if not rivals:
            return None
        incumbent, record = max(rivals, key=lambda tc: (tc[0].value, -tc[0].number))
        on_first = record[np.concatenate([self.rows[f] for f in first_jobs])]  # type: ignore[index]
        stopped, mean, stderr = behind(correct, on_first, racing.z)  # type: ignore[union-attr]
        if not stopped:
            return None
        return epoch, accuracy, (f"raced out after {len(first_jobs)} of {folds} folds: {mean:+.4f} ± {stderr:.4f} "
                                 f"against trial {incumbent.number} on the same {len(correct)} rows "
                                 f"(more than z = {racing.z:g} standard errors behind)")  # type: ignore[union-attr]

    # stopping and telling

    def _stop(self, number: int, state: TrialState, reason: str | None = None, note: str | None = None) -> None:
        """Trial ``number`` ends in ``state``: its open jobs are cancelled, its best epoch kept (or its
        fold models dropped), and it is held until it may be told (search/order.py)."""
        for fold in self.open_jobs.pop(number):
            self.executor.cancel((number, fold))
        trial = self.running.pop(number)
        self.places.pop(number, None)
        if reason is not None:
            trial.set_user_attr("fail_reason", reason)
        curve = self.curves.pop(number)
        if self.kept is not None:
            if state == TrialState.COMPLETE and curve.best is not None:
                self.kept.keep(trial, trial.user_attrs["pipeline"], curve.best.epoch, self.folds,
                               self.data.fingerprint)
            else:
                self.kept.drop(number)
        self.held[number] = (trial, state, curve)
        if self.order is None or self.launched >= self.remaining:  # nothing more to ask: no order to keep
            self._release(math.inf)
        best = curve.best
        self.progress.finished(number, state, best.val_accuracy if best is not None else None,
                               curve.stderr() if best is not None else None, trial.user_attrs.get("combination"),
                               reason or note)

    def _release(self, below: float) -> None:
        """Tell the study the held trials numbered below ``below``, in number order."""
        told = False
        for number in sorted(k for k in self.held if k < below):
            _finish(self.study, *self.held.pop(number))
            told = True
        if told and self.kept is not None:
            self.kept.forget_the_unreachable(self.study)


def _finish(study: optuna.Study, trial: optuna.Trial, state: TrialState, curve: TrialCurve) -> None:
    """Record what the trial reached and tell the study: its value is the best epoch of its curve."""
    best, last = curve.best, curve.last
    trial.set_user_attr("fold_epochs", sum(len(epochs) for epochs in curve.by_fold.values()))  # what it cost
    if best is not None and last is not None:
        trial.set_user_attr("best_epoch", best.epoch)
        trial.set_user_attr("value_stderr", curve.stderr())
        trial.set_user_attr("test_accuracy", best.test_accuracy)  # what the exported pipeline trains to
        trial.set_user_attr("epochs_run", last.epoch)
        trial.set_user_attr("train_loss", best.train_loss)
        if best.noisy_val_accuracy is not None:  # the trusted rows ranked it; the noisy labels said this
            trial.set_user_attr("noisy_val_accuracy", best.noisy_val_accuracy)
        if best.val_correct is not None:  # for comparing trials row by row (search/selection.py)
            trial.set_user_attr("val_correct", best.val_correct)
        if last.label_issue_auroc is not None:
            trial.set_user_attr("label_issue_auroc", last.label_issue_auroc)
    if state == TrialState.COMPLETE:
        study.tell(trial, best.val_accuracy)  # type: ignore[union-attr]
    else:
        study.tell(trial, state=state)
