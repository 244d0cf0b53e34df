"""The search driver: ask -> suggest -> Pipeline -> executor -> report/prune -> tell.

Only the driver touches the study storage, so an SQLite file can serve a whole Ray cluster and no
worker needs database credentials. Re-running the same search resumes its study up to the
requested number of trials.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from automl_noisy.credentials import secrets_of
from automl_noisy.data import DataSpec, NoisyDataset, load_data
from automl_noisy.data.folds import default_folds, pool_folds, scored_rows, train_rows, trusted_gap
from automl_noisy.errors import UserError
from automl_noisy.pipeline import Pipeline
from automl_noisy.outputs import data_files, refuse_inputs, sqlite_file
from automl_noisy.search.curve import TrialCurve
from automl_noisy.search.encoders import SearchEncoders, encoder_folder
from automl_noisy.search.fold_models import FoldModels, models_folder
from automl_noisy.search.executors import Executor
from automl_noisy.search.executors.base import describe_error
from automl_noisy.search.order import LaggedPruner, TrialOrder, trials_in_flight
from automl_noisy.search.stop import StopRequest, stop_on_signals
from automl_noisy.search.progress import SearchProgress
from automl_noisy.search.racing import behind
from automl_noisy.search.selection import correct_rows
from automl_noisy.search.shared import STUDY_FULL, WARM_START_ATTRS, queued_as, surplus
from automl_noisy.search.space import SearchSpace, load_space
from automl_noisy.search.storage import DEFAULT_STORAGE, HEARTBEAT_SECONDS, open_storage
from automl_noisy.search.study import (tally, default_study_name, driver_name, fail_interrupted,
                                       has_baseline, open_study, stored_folds, unqueue)


#: the longest study name Optuna's database tables hold
MAX_STUDY_NAME = 512


@dataclass
class SearchOptions:
    """Everything a search needs; the CLI flags map onto these fields one to one."""

    data: DataSpec = field(default_factory=DataSpec)
    space: str = "default"
    trials: int = 20
    storage: str = DEFAULT_STORAGE
    study: str | None = None
    executor: str = "ray"  # "ray" or "local"
    workers: int | None = None
    ray_address: str | None = None
    gpus_per_trial: float = 0.0
    seed: int = 0
    progress: bool = True
    cv: int | None = None  # folds of cross-validation; 1 = one holdout split; None = by size (default_folds)
    encoders: str | None = None  # the folder of pretrained encoders (None: beside the storage, encoder_folder)
    portfolio: str | None = "default"  # a portfolio file run after the baseline; "default": the shipped one; None: off
    warm_start: str | None = None  # an earlier study (NAME, or STORAGE_URL#NAME) whose best pipelines run first
    warm_start_k: int = 3  # how many of them
    reproducible: bool = True  # trials seen in number order (search/order.py); False: as they finish
    time_budget: float | None = None  # seconds of wall time after which no trial is launched (None: no limit)


def search(options: SearchOptions) -> optuna.Study:
    """Run (or resume) a search and return its study.

    >>> from automl_noisy.data import DataSpec
    >>> study = search(SearchOptions(DataSpec("digits", "symmetric:0.4"), space="quick", trials=2,
    ...                              storage="sqlite:///:memory:", executor="local", progress=False))
    >>> len(study.trials)
    2
    """
    started = time.monotonic()
    if options.trials < 1:
        raise UserError(f"--trials must be at least 1, got {options.trials}")
    budget = options.time_budget
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))
                               or not math.isfinite(budget) or budget <= 0):
        raise UserError(f"--time-budget must be a positive duration such as 90s, 5m or 1h, got {budget!r}")
    if options.executor not in ("ray", "local"):
        raise UserError(f"unknown executor {options.executor!r}; choose one of: local, ray")
    if options.workers is not None and options.workers < 1:
        raise UserError(f"--workers must be at least 1, got {options.workers}")
    if options.executor == "local" and options.workers not in (None, 1):
        raise UserError(f"--workers {options.workers} has no effect with --executor local, which runs one job at "
                        "a time; drop --workers, or use --executor ray")
    _check_gpus(options)
    if options.study is not None and len(options.study) > MAX_STUDY_NAME:
        raise UserError(f"--study names of at most {MAX_STUDY_NAME} characters fit a study database; "
                        f"this one has {len(options.study)}")
    space = load_space(options.space)
    _refuse_overwriting(options)
    data = load_data(options.data)
    storage = open_storage(options.storage)
    name = options.study or default_study_name(options.data, space)
    folds = options.cv
    if folds is None:  # a resumed study keeps its folds; a new one gets them by the pool's size
        folds = stored_folds(storage, name) or default_folds(data)
    if folds != data.spec.folds:
        spec = replace(options.data, folds=folds)  # a UserError for folds < 1
        options, data = replace(options, data=spec), replace(data, spec=spec)
    if folds > 1:
        pool_folds(data)  # too many folds for the smallest class: one line now, not a failure per trial
    trusted = data.trusted_train is not None
    gap = trusted_gap(data) if trusted else None  # a method that needs trusted rows of every class is left out
    notes = _left_out(space.needing_trusted_per_class(), gap)
    space = space.for_shape(data.input_shape, train_rows(data), trusted, gap)
    planned = _warm_starts(space, data, options)  # mistakes in them: one line before the study is touched
    study = open_study(storage, options.storage, name, options.data, options.seed, space, data)
    fail_interrupted(study)
    remaining = options.trials - sum(tally(study).values())
    if remaining <= 0:
        return study
    ran = {(attr, t.user_attrs.get(attr)) for t in study.get_trials(deepcopy=False) for attr in WARM_START_ATTRS
           if not (t.state == TrialState.FAIL and t.user_attrs.get("interrupted"))}
    warm_starts = [w for w in planned if (w[0], w[1]) not in ran]  # a resumed search runs no entry twice
    executor = _executor(options, data)  # before anything is queued: a cluster that cannot be reached leaves no trace
    try:
        room = remaining
        if not has_baseline(study):
            _, params = space.baseline(data.spec, options.seed)
            study.enqueue_trial(params, user_attrs={"baseline": True, "driver": driver_name()})
            room -= 1
        for attr, name, params in warm_starts[:max(0, room)]:
            study.enqueue_trial(params, user_attrs={attr: name, "driver": driver_name()})
        folder = options.encoders if options.encoders is not None else encoder_folder(options.storage)
        if folder is not None:  # export names it, so train reuses the encoders
            study.set_user_attr("encoder_folder", str(Path(folder).resolve()))
        kept = None
        root = models_folder(Path(folder)) if folder is not None and folds > 1 else None
        if root is not None:  # export names it, so train ships the fold models the search trained
            kept = FoldModels(root, study.study_name)
            study.set_user_attr("fold_models", str(kept.folder.resolve()))
        with stop_on_signals() as stop:
            encoders = SearchEncoders(folder, data, executor, interrupt=stop.check)
            _drive(study, space, data, executor, encoders, options, remaining, stop,
                   None if budget is None else started + budget, kept, notes)
    finally:
        executor.close()
    return study


def _left_out(choices: list[str], gap: str | None) -> tuple[str, ...]:
    """The progress line saying why the search leaves out ``choices`` (methods that need a trusted
    training row of every class) when the data's trusted rows have a ``gap``; none otherwise."""
    if gap is None or not choices:
        return ()
    they = "it needs" if len(choices) == 1 else "they need"
    return (f"{', '.join(choices)} left out of the search: {they} a trusted training row of every class, and {gap}",)


def _check_gpus(options: SearchOptions) -> None:
    """``gpus_per_trial`` is 0, a fraction of one GPU or a whole number of GPUs, and needs Ray."""
    g = options.gpus_per_trial
    if isinstance(g, bool) or not isinstance(g, (int, float)) or not math.isfinite(g) or g < 0:
        raise UserError(f"--gpus-per-trial must be 0 (no GPU), a fraction of one GPU such as 0.25, or a whole number "
                        f"of GPUs; got {g!r}")
    if g > 1 and g != int(g):
        raise UserError(f"--gpus-per-trial {g:g} is more than one GPU but not a whole number; a trial takes a "
                        "fraction of one GPU (up to 1) or whole GPUs (2, 3, ...)")
    if g > 0 and options.executor == "local":
        raise UserError(f"--gpus-per-trial {g:g} has no effect with --executor local, which trains in this process "
                        "on its own device; drop it, or use --executor ray")


def _refuse_overwriting(options: SearchOptions) -> None:
    """The study database (an SQLite file) must not be one of the files the search reads."""
    database = sqlite_file(options.storage)
    if database is None:
        return
    inputs: dict[str, str | None] = dict(data_files(options.data))
    for what, path in (("the search space file", options.space), ("the portfolio file", options.portfolio)):
        if path and os.path.isfile(path):
            inputs[what] = path
    refuse_inputs([database], inputs, flag="--storage")


def _warm_starts(space: SearchSpace, data: NoisyDataset, options: SearchOptions) -> list[tuple[str, str, dict]]:
    """``(attribute, name, params)`` of the pipelines to run after the baseline and before the
    sampler: the best of an earlier study (``--warm-start``), then the portfolio's entries for this
    kind of data that the space allows."""
    from automl_noisy.search.portfolio import (DEFAULT_PORTFOLIO, best_of_study, data_kind, fitting,
                                               load_portfolio, resolve)

    out: list[tuple[str, str, dict]] = []
    if options.warm_start:
        earlier = _earlier_study(options.warm_start, options.storage)
        shape = earlier.user_attrs.get("input_shape")
        if shape is not None and tuple(shape) != data.input_shape:
            raise UserError(f"--warm-start study {earlier.study_name!r} was made on data of shape {tuple(shape)}; "
                            f"this data has shape {data.input_shape}")
        entries = best_of_study(earlier, len(earlier.trials))  # best first; the baseline's pipeline runs anyway
        fit = fitting(entries, space, data.spec, options.seed)[:options.warm_start_k]
        if entries and not fit:
            try:
                resolve(space, entries[0].params, data.spec, options.seed)
            except UserError as e:
                raise UserError(f"--warm-start study {earlier.study_name!r}: none of its best pipelines fits this "
                                f"search space ({e})") from None
        out += [("warm_start", entry.name, params) for entry, params in fit]
    path = options.portfolio
    if path == "default":
        path = str(DEFAULT_PORTFOLIO) if DEFAULT_PORTFOLIO.is_file() else None
    if path:
        entries = load_portfolio(path)[data_kind(data.input_shape)]
        out += [("portfolio", entry.name, params) for entry, params in fitting(entries, space, data.spec, options.seed)]
    return out


def _earlier_study(spec: str, storage_url: str) -> optuna.Study:
    """``NAME`` (in this search's storage) or ``STORAGE_URL#NAME``."""
    from automl_noisy.search.storage import resolve_study

    url, sep, name = spec.rpartition("#")
    if not sep:
        url, name = storage_url, spec
    storage = open_storage(url, must_exist=True)
    return resolve_study(storage, name, url)


def _secrets(options: SearchOptions) -> tuple[str, ...]:
    """The passwords of the storage URLs the driver holds (its storage, an earlier study's)."""
    earlier = (options.warm_start or "").rpartition("#")[0]
    return (*secrets_of(options.storage), *(secrets_of(earlier) if earlier else ()))


def _executor(options: SearchOptions, data: NoisyDataset) -> Executor:
    if options.executor == "local":
        from automl_noisy.search.executors.local import LocalExecutor

        return LocalExecutor(data, threads=None)
    from automl_noisy.search.executors.ray_executor import RayExecutor

    return RayExecutor(data, workers=options.workers, address=options.ray_address,
                       gpus_per_trial=options.gpus_per_trial, secrets=_secrets(options))


def _drive(study: optuna.Study, space: SearchSpace, data: NoisyDataset, executor: Executor,
           encoders: SearchEncoders, options: SearchOptions, remaining: int, stop_request: StopRequest,
           deadline: float | None = None, kept: FoldModels | None = None, notes: tuple[str, ...] = ()) -> None:
    """Ask, run and tell trials until ``remaining`` more have been launched and have finished; past
    ``deadline`` (a ``time.monotonic()`` value: the time budget) no more are launched, and the
    running ones finish. ``kept``: where fold jobs save their epochs, and a complete trial's best
    epoch is kept (search/fold_models.py). ``notes``: progress lines said first."""
    folds = data.spec.folds
    jobs_of_trial = list(range(folds)) if folds > 1 else [None]
    sizes, rows = scored_rows(data, data.trusted_objective)  # the rows a trial's value is measured on
    all_sizes = scored_rows(data, False)[0] if data.trusted_objective else None
    order = None
    if options.reproducible and executor.capacity > 1:  # one job at a time is in order already
        order = TrialOrder(trials_in_flight(executor.capacity, len(jobs_of_trial)), len(study.trials))
        study.pruner = LaggedPruner(study.pruner, order.lag)
    running: dict[int, optuna.Trial] = {}
    curves: dict[int, TrialCurve] = {}
    places: dict[int, set[str]] = {}  # where each running trial's jobs run
    open_jobs: dict[int, set[int | None]] = {}
    held: dict[int, tuple[optuna.Trial, TrialState, TrialCurve]] = {}  # finished, not yet told (see order.py)
    launched, beat = 0, time.monotonic()
    driver = driver_name()
    queued: set[int] = set()  # trials the search queued itself: they run every epoch (see QUEUED_ATTRS)
    racing = space.racing if folds > 1 and space.racing is not None and space.racing.folds < folds else None
    first_jobs = jobs_of_trial[:racing.folds] if racing is not None else jobs_of_trial
    later: dict[int, tuple[Pipeline, str | None]] = {}  # raced trials whose other folds wait for the verdict
    mine: set[int] = set()  # the trials this driver ran

    def race(number: int) -> tuple[int, float, str] | None:
        """Whether trial ``number`` is clearly behind on its first folds (search/racing.py): its best
        epoch there, that epoch's accuracy and the reason; None when it goes on."""
        first = curves[number].best_of_folds(first_jobs)  # type: ignore[arg-type]
        if first is None:
            return None
        epoch, accuracy, correct = first
        below = number - order.lag if order is not None else math.inf  # what the ordered search lets it see
        rivals = [(t, c) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                  if t.number < below and (c := correct_rows(t)) is not None and len(c) == sum(sizes)]
        if not rivals:
            return None
        incumbent, record = max(rivals, key=lambda tc: (tc[0].value, -tc[0].number))
        on_first = record[np.concatenate([rows[f] for f in first_jobs])]  # type: ignore[index]
        stopped, mean, stderr = behind(correct, on_first, racing.z)  # type: ignore[union-attr]
        if not stopped:
            return None
        return epoch, accuracy, (f"raced out after {len(first_jobs)} of {folds} folds: {mean:+.4f} ± {stderr:.4f} "
                                 f"against trial {incumbent.number} on the same {len(correct)} rows "
                                 f"(more than z = {racing.z:g} standard errors behind)")  # type: ignore[union-attr]

    def release(below: float) -> None:
        told = False
        for number in sorted(k for k in held if k < below):
            _finish(study, *held.pop(number))
            told = True
        if told and kept is not None:
            kept.forget_the_unreachable(study)

    def stop(number: int, state: TrialState, reason: str | None = None, note: str | None = None) -> None:
        for fold in open_jobs.pop(number):
            executor.cancel((number, fold))
        trial = running.pop(number)
        places.pop(number, None)
        if reason is not None:
            trial.set_user_attr("fail_reason", reason)
        curve = curves.pop(number)
        if kept is not None:
            if state == TrialState.COMPLETE and curve.best is not None:
                kept.keep(trial, trial.user_attrs["pipeline"], curve.best.epoch, folds, data.fingerprint)
            else:
                kept.drop(number)
        held[number] = (trial, state, curve)
        if order is None or launched >= remaining:  # nothing more to ask: no order to keep
            release(math.inf)
        best = curve.best
        progress.finished(number, state, best.val_accuracy if best is not None else None,
                          curve.stderr() if best is not None else None, trial.user_attrs.get("combination"),
                          reason or note)

    def may_ask() -> bool:
        if order is None:
            return executor.running() < executor.capacity
        return order.may_ask(running)

    with SearchProgress(study, options.trials, enabled=options.progress) as progress:
        try:
            for note in notes:
                progress.say(note)
            if space.racing is not None and racing is None:
                progress.say(f"racing is off: it needs more folds than its first {space.racing.folds}, and this search "
                             + (f"has {folds}" if folds > 1 else "scores one holdout split"))
            encoders.prepare(space.encoder_pipelines(data.spec, options.seed), progress.say)
            if encoders.threads is not None and "encoder_threads" not in study.user_attrs:
                study.set_user_attr("encoder_threads", encoders.threads)  # train pretrains alike (export names it)
            while launched < remaining or running:
                stop_request.check()
                if deadline is not None and launched < remaining and time.monotonic() >= deadline:
                    progress.say(f"time budget of {options.time_budget:g} s spent: no more trials are launched; "
                                 f"the {len(running)} running finish")
                    launched = remaining
                    release(math.inf)
                while launched < remaining and may_ask():
                    stop_request.check()
                    if order is not None:
                        release(order.release_below())
                        order.asked()
                    trial = study.ask()
                    trial.set_user_attr("driver", driver)
                    reason = surplus(study, trial, options.trials)  # another search shares the study
                    if reason is not None:
                        trial.set_user_attr("interrupted", True)
                        trial.set_user_attr("fail_reason", reason)
                        study.tell(trial, state=TrialState.FAIL)
                        if reason.startswith(STUDY_FULL):
                            launched = remaining
                        continue
                    if queued_as(trial) is not None:
                        queued.add(trial.number)
                    pipeline = space.suggest(trial, data.spec, options.seed)
                    trial.set_user_attr("pipeline", pipeline.to_dict())
                    trial.set_user_attr("combination", {**pipeline.combination(),
                                                        **({"preset": trial.params.get("preset", "none")}
                                                           if space.presets else {})})
                    running[trial.number], curves[trial.number] = trial, TrialCurve(sizes, rows, all_sizes)
                    mine.add(trial.number)
                    places[trial.number] = set()
                    launched += 1
                    try:
                        encoder = encoders.key(pipeline)
                    except Exception as e:  # noqa: BLE001 - as if the trial raised: it fails, the search goes on
                        open_jobs[trial.number] = set()
                        stop(trial.number, TrialState.FAIL, describe_error(e))
                        continue
                    if encoder is not None:
                        trial.set_user_attr("encoder", encoder)
                    start = jobs_of_trial if trial.number in queued else first_jobs  # queued: never raced
                    for fold in start:
                        executor.submit((trial.number, fold), pipeline, fold, encoder,
                                        kept.snapshots(trial.number, fold) if kept is not None else None)
                    open_jobs[trial.number] = set(start)
                    if len(start) < len(jobs_of_trial):
                        later[trial.number] = (pipeline, encoder)
                if launched >= remaining:
                    release(math.inf)
                event = executor.next_event(timeout=1.0)
                encoders.collect(progress.say)
                if time.monotonic() - beat > HEARTBEAT_SECONDS / 2:
                    for t in [*running.values(), *(h[0] for h in held.values())]:
                        study._storage.record_heartbeat(t._trial_id)  # type: ignore[attr-defined]
                    beat = time.monotonic()
                if event is None or event.job[0] not in running:  # nothing, or a stopped trial's last words
                    continue
                number, fold = event.job
                if event.placement is not None:
                    places[number].add(event.placement.describe())
                    running[number].set_user_attr("ran_on", sorted(places[number]))
                elif event.metrics is not None:
                    epoch = curves[number].add(fold or 0, event.metrics)
                    if epoch is not None:
                        running[number].report(epoch.val_accuracy, epoch.epoch)
                        if number not in queued and running[number].should_prune():
                            stop(number, TrialState.PRUNED)
                elif event.done:
                    open_jobs[number].discard(fold)
                    if not open_jobs[number] and number in later:  # its first folds are done: race it
                        pipeline, encoder = later.pop(number)
                        verdict = race(number)
                        if verdict is None:
                            rest = [f for f in jobs_of_trial if f not in first_jobs]
                            for f in rest:
                                executor.submit((number, f), pipeline, f, encoder,
                                                kept.snapshots(number, f) if kept is not None else None)
                            open_jobs[number] = set(rest)
                        else:
                            epoch_run, accuracy, why = verdict
                            running[number].report(accuracy, epoch_run)
                            running[number].set_user_attr("raced_out", why)
                            stop(number, TrialState.PRUNED, note=why)
                    elif not open_jobs[number]:
                        if curves[number].best is not None:
                            stop(number, TrialState.COMPLETE)
                        else:
                            stop(number, TrialState.FAIL, "the trial ended without an epoch")
                else:
                    where = f"fold {fold}: " if fold is not None else ""
                    stop(number, TrialState.FAIL, where + (event.error or "the trial failed"))
            release(math.inf)
            while encoders.pending:  # stored for a resume or train, even if no trial used it
                stop_request.check()
                encoders.collect(progress.say, timeout=1.0)
            unqueue(study, driver, "not run: the search ended before it")
            if kept is not None:
                kept.tidy(mine)
        except KeyboardInterrupt:
            release(math.inf)  # finished trials keep their results
            for number, trial in running.items():
                for fold in open_jobs.get(number, ()):  # none yet when it stopped while preparing
                    executor.cancel((number, fold))
                trial.set_user_attr("interrupted", True)
                trial.set_user_attr("fail_reason", "interrupted: the search was stopped")
                study.tell(trial, state=TrialState.FAIL)
            unqueue(study, driver, "interrupted: the search was stopped")
            if kept is not None:
                kept.tidy(mine)
            raise


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
