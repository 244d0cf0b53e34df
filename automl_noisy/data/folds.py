"""K-fold cross-validation over the training pool: a fold is a data split like any other.

The pool is every row that trains or validates (train + validation; the test split stays out). With
``spec.folds = K`` > 1 it is cut into K folds, stratified on the labels the user has (the noisy
ones: clean labels never decide anything) and shuffled with a seed derived from ``spec.seed``. Fold
``i`` is an ordinary :class:`NoisyDataset` whose validation split is the i-th fold and whose training
split is the rest (every per-row array follows its rows: indices, clean labels, trusted marks and the
labels the data gave the trusted rows), so
``run_trial`` trains on it unchanged; the K validation accuracies, weighted by
fold size, are the accuracy of the out-of-fold predictions over the whole pool.

>>> from automl_noisy.data import DataSpec, load_data
>>> data = load_data(DataSpec("synthetic", "symmetric:0.2", folds=3, options={"samples": 300}))
>>> [len(fold_split(data, i).y_val) for i in range(3)], len(pool_dataset(data).y_train)
([80, 80, 80], 240)
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from automl_noisy.data.dataset import NoisyDataset
from automl_noisy.data.trusted import classes_text, missing_classes
from automl_noisy.errors import UserError

_FOLD_STREAM = 3  # load_data draws streams 0-2 of the spec's seed; the fold assignment uses the next
#: ``search`` without ``--cv``: this many folds for a pool of at most AUTO_CV_MAX_ROWS rows, else one holdout.
AUTO_FOLDS = 3
AUTO_CV_MAX_ROWS = 10_000


def default_folds(data: NoisyDataset) -> int:
    """How many folds a search uses unless told: ``AUTO_FOLDS`` for a pool (train + validation) of at
    most ``AUTO_CV_MAX_ROWS`` rows, where a holdout split is too small to rank pipelines; one holdout
    split for larger pools, where it is not and K trainings per trial would cost too much."""
    y = np.concatenate([data.y_train, data.y_val])
    if len(y) > AUTO_CV_MAX_ROWS:
        return 1
    counts = np.bincount(y)
    smallest = int(counts[counts > 0].min())
    return min(AUTO_FOLDS, smallest) if smallest >= 2 else 1


def train_rows(data: NoisyDataset) -> int:
    """How many rows one model of a trial trains on: the pool less one fold with K folds, else the
    training split."""
    if data.spec.folds <= 1:
        return len(data.y_train)
    pool = len(data.y_train) + len(data.y_val)
    return pool - pool // data.spec.folds


def fold_assignment(y_pool: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of each pool row, stratified on ``y_pool`` and shuffled by ``seed``."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y_pool)
    smallest = int(counts[counts > 0].min())
    if not 2 <= folds <= smallest:
        raise UserError(f"--cv {folds} needs 2 to {smallest} folds here (the pool's smallest class has "
                        f"{smallest} rows); pass --cv {min(max(2, smallest), 5)}, or --cv 1 for one holdout split")
    random_state = int(np.random.SeedSequence(seed, spawn_key=(_FOLD_STREAM,)).generate_state(1)[0])
    out = np.empty(len(y_pool), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    for i, (_, held_out) in enumerate(splitter.split(np.zeros(len(y_pool)), y_pool)):
        out[held_out] = i
    return out


def _pool(data: NoisyDataset) -> dict[str, np.ndarray | None]:
    both = lambda a, b: None if a is None else np.concatenate([a, b])  # noqa: E731
    return {"x": np.concatenate([data.x_train, data.x_val]), "y": np.concatenate([data.y_train, data.y_val]),
            "index": np.concatenate([data.train_index, data.val_index]),
            "clean": both(data.y_train_clean, data.y_val_clean),
            "trusted": both(data.trusted_train, data.trusted_val),
            "given": both(data.y_train_given, data.y_val_given)}


def pool_folds(data: NoisyDataset) -> np.ndarray:
    """The fold of each pool row (train rows first, then validation rows), for ``data.spec.folds``."""
    return fold_assignment(np.concatenate([data.y_train, data.y_val]), data.spec.folds, data.spec.seed)


def scored_rows(data: NoisyDataset, trusted_only: bool) -> tuple[list[int], list[np.ndarray] | None]:
    """The rows that score a trial, per fold (one entry for a holdout split): how many each fold holds,
    and where each fold's rows sit among them all in pool order (None for a holdout split). Every
    validating row, or with ``trusted_only`` only the trusted ones (the rows of a clean objective,
    :attr:`NoisyDataset.trusted_objective`).

    >>> from automl_noisy.data import DataSpec, load_data
    >>> data = load_data(DataSpec("synthetic", "symmetric:0.2", folds=3,
    ...                           options={"samples": 300, "trusted_fraction": 0.1}))
    >>> scored_rows(data, False)[0], sum(scored_rows(data, True)[0]) == data.trusted_count
    ([80, 80, 80], True)
    """
    if data.spec.folds <= 1:
        return [int(data.trusted_val.sum()) if trusted_only else len(data.y_val)], None  # type: ignore[union-attr]
    folds = pool_folds(data)
    if trusted_only:
        folds = folds[_pool(data)["trusted"]]  # type: ignore[index]
    rows = [np.flatnonzero(folds == i) for i in range(data.spec.folds)]
    return [len(r) for r in rows], rows


def fold_split(data: NoisyDataset, fold: int) -> NoisyDataset:
    """Fold ``fold`` of ``data``'s pool as validation, the other folds as training."""
    pool, held = _pool(data), pool_folds(data) == fold
    pick = lambda a, rows: None if a is None else np.ascontiguousarray(a[rows])  # noqa: E731
    return replace(data, x_train=pick(pool["x"], ~held), y_train=pick(pool["y"], ~held),
                   train_index=pick(pool["index"], ~held), y_train_clean=pick(pool["clean"], ~held),
                   x_val=pick(pool["x"], held), y_val=pick(pool["y"], held),
                   val_index=pick(pool["index"], held), y_val_clean=pick(pool["clean"], held),
                   trusted_train=pick(pool["trusted"], ~held), trusted_val=pick(pool["trusted"], held),
                   y_train_given=pick(pool["given"], ~held), y_val_given=pick(pool["given"], held))


def pool_dataset(data: NoisyDataset) -> NoisyDataset:
    """The whole pool as training data, nothing held out for validation: for the final model of a
    cross-validated recipe, which the folds have already validated."""
    pool = _pool(data)
    empty = lambda a: None if a is None else a[:0]  # noqa: E731
    return replace(data, x_train=pool["x"], y_train=pool["y"], train_index=pool["index"],
                   y_train_clean=pool["clean"], x_val=data.x_val[:0], y_val=data.y_val[:0],
                   val_index=data.val_index[:0], y_val_clean=empty(data.y_val_clean),
                   trusted_train=pool["trusted"], trusted_val=empty(data.trusted_val),
                   y_train_given=pool["given"], y_val_given=empty(data.y_val_given))


def trusted_gap(data: NoisyDataset) -> str | None:
    """None when every split a model of ``data`` trains on (the training split; with K folds, each
    fold's training rows, and the pool that a refit trains on) has a trusted row of every class;
    else what is missing, in words (for a method that needs them, ``needs_trusted_per_class``), e.g.
    ``"the training split has no trusted row of class 'b'"``. Every class is missing when no row is
    trusted."""
    k = data.num_classes
    names = lambda missing: classes_text([data.class_names[c] for c in missing])  # noqa: E731
    if data.spec.folds <= 1:
        missing = missing_classes(data.y_train, data.trusted_train, k)
        return f"the training split has no trusted row of {names(missing)}" if missing else None
    pool = _pool(data)
    missing = missing_classes(pool["y"], pool["trusted"], k)
    if missing:
        return f"the training and validation rows have no trusted row of {names(missing)}"
    folds = pool_folds(data)
    short = {i + 1: m for i in range(data.spec.folds)
             if (m := missing_classes(pool["y"], pool["trusted"] & (folds != i), k))}  # type: ignore[operator]
    if len(short) == 1:
        (fold, missing), = short.items()
        return f"the training rows of fold {fold} of {data.spec.folds} have no trusted row of {names(missing)}"
    if short:
        each = "; ".join(f"fold {fold}: {names(missing)}" for fold, missing in short.items())
        return (f"the training rows of {len(short)} of the {data.spec.folds} folds have no trusted row of some class "
                f"({each})")
    return None
