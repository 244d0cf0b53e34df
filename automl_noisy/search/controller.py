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
from typing import Any, NamedTuple

import optuna
from optuna.trial import TrialState

from automl_noisy.credentials import secrets_of
from automl_noisy.data import DataSpec, NoisyDataset, load_data
from automl_noisy.data.folds import default_folds, pool_folds, train_rows, trusted_gap
from automl_noisy.errors import UserError
from automl_noisy.outputs import data_files, refuse_inputs, sqlite_file
from automl_noisy.search.encoders import SearchEncoders, encoder_folder
from automl_noisy.search.fold_models import FoldModels, models_folder
from automl_noisy.search.executors import Executor
from automl_noisy.search.loop import SearchLoop
from automl_noisy.search.stop import StopRequest, stop_on_signals
from automl_noisy.search.progress import SearchProgress
from automl_noisy.search.nearest import ORDERS, order_in
from automl_noisy.search.shared import WARM_START_ATTRS
from automl_noisy.search.space import SearchSpace, load_space
from automl_noisy.search.storage import DEFAULT_STORAGE, open_storage
from automl_noisy.search.study import (tally, default_study_name, driver_name, fail_interrupted,
                                       has_baseline, noise_profile, open_study, stored_folds)


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
    portfolio_order: str | None = None  # "fixed": the file's list order; "nearest": by the suite tasks nearest
    # the data; None: the order the portfolio file names for the data's kind (its `order`), else fixed
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
    if options.portfolio_order is not None and options.portfolio_order not in ORDERS:
        raise UserError(f"unknown --portfolio-order {options.portfolio_order!r}; choose one of: {', '.join(ORDERS)}")
    if options.portfolio_order == "nearest" and not options.portfolio:
        raise UserError("--portfolio-order nearest has no effect with --no-portfolio; drop one of them")
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
    options, data, space, notes = _fitted(options, data, space, folds)
    planned, profile, portfolio = _planned(options, data, space)  # mistakes: one line before the study is touched
    study = open_study(storage, options.storage, name, options.data, options.seed, space, data, profile)
    fail_interrupted(study)
    remaining = options.trials - sum(tally(study).values())
    if remaining <= 0:
        return study
    ran = {(attr, t.user_attrs.get(attr)) for t in study.get_trials(deepcopy=False) for attr in WARM_START_ATTRS
           if not (t.state == TrialState.FAIL and t.user_attrs.get("interrupted"))}
    warm_starts = [w for w in planned if (w[0], w[1]) not in ran]  # a resumed search runs no entry twice
    executor = _executor(options, data)  # before anything is queued: a cluster that cannot be reached leaves no trace
    try:
        room, baseline = remaining, not has_baseline(study)
        if baseline:
            _, params = space.baseline(data.spec, options.seed)
            study.enqueue_trial(params, user_attrs={"baseline": True, "driver": driver_name()})
            room -= 1
        queued = warm_starts[:max(0, room)]
        for attr, name, params in queued:
            study.enqueue_trial(params, user_attrs={attr: name, "driver": driver_name()})
        notes = (*notes, *_queued_note(baseline, queued, portfolio, data))
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


def _queued_note(baseline: bool, queued: list[tuple[str, str, dict]], portfolio: _Portfolio | None,
                 data: NoisyDataset) -> tuple[str, ...]:
    """The progress line saying what this run queued before the sampler draws (plain CE where
    ``baseline``, the ``queued`` warm starts), and where the ``portfolio`` the search read gives none for
    this kind of data, that it lists none; nothing when nothing was queued."""
    from automl_noisy.search.portfolio import data_kind

    if not baseline and not queued:
        return ()
    order = portfolio.order if portfolio else "fixed"
    labels = {"reference": "reference", "warm_start": "from --warm-start",
              "portfolio": f"from the portfolio ({order} order)"}
    parts = ["plain CE"] if baseline else []
    parts += [f"{n} {label}" for attr, label in labels.items() if (n := sum(a == attr for a, _, _ in queued))]
    kind = data_kind(data.input_shape)
    if portfolio and not any(a == "portfolio" for a, _, _ in queued) and not portfolio.entries[kind]:
        parts.append(f"no portfolio entry: {Path(portfolio.path).name} lists none for {kind}")
    return ("queued before the sampler draws: " + "; ".join(parts),)


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


def first_pipelines(options: SearchOptions) -> list[tuple[str, str]]:
    """What a new search with ``options`` runs before its sampler draws, in order, as ``(attribute,
    name)``: ``("baseline", "plain CE")``, then the references, the warm start's and the portfolio's
    entries its space and data allow, as :func:`search` plans them (a resumed search skips those that
    ran). Reads the data, the space and the portfolio; makes no study.

    >>> from automl_noisy.data import DataSpec
    >>> first_pipelines(SearchOptions(DataSpec("synthetic"), portfolio=None))
    [('baseline', 'plain CE')]
    """
    space, data = load_space(options.space), load_data(options.data)
    options, data, space, _ = _fitted(options, data, space, options.cv or default_folds(data))
    planned, _, _ = _planned(options, data, space)
    return [("baseline", "plain CE"), *((attr, name) for attr, name, _ in planned)]


def _fitted(options: SearchOptions, data: NoisyDataset, space: SearchSpace,
            folds: int) -> tuple[SearchOptions, NoisyDataset, SearchSpace, list[str]]:
    """``options`` and ``data`` with ``folds`` folds, the space as it fits the data (its shape, rows and
    trusted rows), and the notes on what it left out."""
    if folds != data.spec.folds:
        spec = replace(options.data, folds=folds)  # a UserError for folds < 1
        options, data = replace(options, data=spec), replace(data, spec=spec)
    if folds > 1:
        pool_folds(data)  # too many folds for the smallest class: one line now, not a failure per trial
    trusted = data.trusted_train is not None
    gap = trusted_gap(data) if trusted else None  # a method that needs trusted rows of every class is left out
    notes = _left_out(space.needing_trusted_per_class(), gap)
    return options, data, space.for_shape(data.input_shape, train_rows(data), trusted, gap), notes


class _Portfolio(NamedTuple):
    """The portfolio file a search reads (``path``; parsed once: ``doc``), its ``entries`` per data kind
    as :func:`~automl_noisy.search.portfolio.portfolio_entries` reads them, and the ``order`` the search
    runs this data's kind in."""

    path: str
    doc: Any
    entries: dict
    order: str


def _planned(options: SearchOptions, data: NoisyDataset,
             space: SearchSpace) -> tuple[list[tuple[str, str, dict]], dict | None, _Portfolio | None]:
    """The warm starts a search runs after its baseline (:func:`_warm_starts`), the data's noise profile
    where the portfolio's order needs it (computed once: the study records it) and the portfolio read
    (None: none), which the progress note reuses."""
    portfolio = _portfolio(options, data)
    profile = noise_profile(data, options.seed) if portfolio and portfolio.order == "nearest" else None
    return _warm_starts(space, data, options, portfolio, profile), profile, portfolio


def _portfolio(options: SearchOptions, data: NoisyDataset) -> _Portfolio | None:
    """The portfolio a search reads (None: none) with the order it runs its entries for this data's
    kind in: ``--portfolio-order`` where given, else the order the file names for the kind (``fixed``
    where it names none)."""
    from automl_noisy.search.portfolio import DEFAULT_PORTFOLIO, data_kind, portfolio_entries, read_portfolio_file

    path = options.portfolio
    if path == "default":
        path = str(DEFAULT_PORTFOLIO) if DEFAULT_PORTFOLIO.is_file() else None
    if not path:
        return None
    doc = read_portfolio_file(path)
    entries = portfolio_entries(doc, path)
    return _Portfolio(path, doc, entries, options.portfolio_order or order_in(doc, path, data_kind(data.input_shape)))


def _warm_starts(space: SearchSpace, data: NoisyDataset, options: SearchOptions, portfolio: _Portfolio | None = None,
                 profile: dict | None = None) -> list[tuple[str, str, dict]]:
    """``(attribute, name, params)`` of the pipelines to run after the baseline and before the
    sampler: the references the data calls for (with trusted rows, ``trusted+mixmatch``), the best of
    an earlier study (``--warm-start``), then the ``portfolio``'s entries for this kind of data that the
    space allows, in the file's order or (its order "nearest", with the data's noise ``profile``) in the
    order of the suite tasks nearest the data (:mod:`automl_noisy.search.nearest`)."""
    from automl_noisy.search.portfolio import best_of_study, data_kind, fitting, references, resolve

    out: list[tuple[str, str, dict]] = [("reference", name, params) for name, params in
                                        references(space, data.spec, options.seed, data.trusted_train is not None,
                                                   data_kind(data.input_shape))]
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
    if portfolio:
        kind = data_kind(data.input_shape)
        entries = portfolio.entries[kind]
        if portfolio.order == "nearest" and entries:  # a kind with no entries has nothing to order
            entries = _nearest(portfolio, kind, data, profile)
        out += [("portfolio", entry.name, params) for entry, params in fitting(entries, space, data.spec, options.seed)]
    return out


def _nearest(portfolio: _Portfolio, kind: str, data: NoisyDataset, profile: dict | None) -> list:
    """The ``portfolio``'s entries for ``kind`` in the order of the suite tasks nearest the data (``profile``:
    the data's noise profile, which ``search`` computes once when this order is asked for)."""
    from automl_noisy.search.nearest import nearest_in, nearest_order

    path = portfolio.path
    tasks = nearest_in(portfolio.doc, path, portfolio.entries).get(kind)
    if not tasks:
        raise UserError(f"{path} records no suite tasks for {kind} data (its 'nearest' part), which "
                        "--portfolio-order nearest needs; build the portfolio with benchmarks/portfolio.py, or use "
                        "--portfolio-order fixed")
    rows = len(data.y_train) + len(data.y_val)  # the pool a search selects with, as the suite's tasks count it
    assert profile is not None, "search computes the noise profile for the nearest order"
    return nearest_order(portfolio.entries[kind], tasks, rows, len(data.class_names), profile["estimated_rate"])


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
    epoch is kept (search/fold_models.py). ``notes``: progress lines said first. The loop itself:
    :class:`~automl_noisy.search.loop.SearchLoop`."""
    loop = SearchLoop(study, space, data, executor, encoders, options, remaining, stop_request, deadline, kept)
    with SearchProgress(study, options.trials, enabled=options.progress) as progress:
        loop.run(progress, notes)
