"""One trial's objective curve: its folds' epochs combined into one, its best epoch, its uncertainty.

A trial trains one job on the holdout split, or one job per cross-validation fold. Epoch ``e`` of
the trial is known once every fold has finished epoch ``e``: its noisy validation accuracy is the
fold accuracies weighted by fold size, which is the accuracy of the out-of-fold predictions over the
whole pool. The trial's value is the best epoch of that curve (early stopping on noisy validation
accuracy is sound under class-conditional noise: Chen et al., "Robustness of accuracy metric and
its inspirations in learning with noisy labels", AAAI 2021), with the binomial standard error
``sqrt(a (1 - a) / n)`` of an accuracy ``a`` measured on ``n`` rows. Each epoch also keeps which
rows were predicted right (the folds' rows put back in pool order), so that two trials can be
compared row by row on the same rows (:mod:`automl_noisy.search.selection`).

With enough trusted rows (``NoisyDataset.trusted_objective``) the objective is clean: only the
trusted rows score (out of fold under K-fold, each weighted as one row), and the noisy accuracy on
every validation row is kept beside it (``noisy_val_accuracy``).

>>> from automl_noisy.train import EpochMetrics
>>> curve = TrialCurve([100, 50])
>>> curve.add(0, EpochMetrics(1, 1.0, 0.60, None, 1.0)) is None  # fold 1 has not reached epoch 1
True
>>> curve.add(1, EpochMetrics(1, 1.2, 0.90, None, 1.0)).val_accuracy
0.7
>>> round(curve.stderr(), 4)
0.0374
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from automl_noisy.train import EpochMetrics
from automl_noisy.train.trainer import pack_rows, unpack_rows


def binomial_stderr(accuracy: float, n: int) -> float:
    """The standard error of an accuracy measured on ``n`` samples."""
    return math.sqrt(max(accuracy * (1 - accuracy), 0.0) / n) if n > 0 else float("nan")


def _weighted(values: Sequence[float], sizes: Sequence[int]) -> float:
    """The mean of per-fold accuracies weighted by their rows (a fold without rows counts for nothing)."""
    total = sum(sizes)
    return sum(v * n for v, n in zip(values, sizes) if n) / total if total else float("nan")


def combine(epochs: Sequence[EpochMetrics], sizes: Sequence[int],
            rows: Sequence[np.ndarray] | None = None, all_sizes: Sequence[int] | None = None) -> EpochMetrics:
    """The folds' metrics of one epoch as one: validation accuracy weighted by the rows each fold
    scores (the out-of-fold accuracy), the noisy accuracy on every row (weighted by ``all_sizes``)
    when the trusted rows score, the mean training loss, clean test accuracy and label-issue AUROC of
    the fold models (when all have one), the wall time of all folds together, and which scored rows
    were predicted right (``rows[i]``: where fold ``i``'s scored rows sit among all of them, in pool
    order)."""
    if len(epochs) == 1:
        return epochs[0]
    total = sum(sizes)
    mean = lambda values: None if any(v is None for v in values) else sum(values) / len(values)  # noqa: E731
    noisy = [m.noisy_val_accuracy for m in epochs]
    correct = None
    if rows is not None and all(m.val_correct is not None for m in epochs):
        pool = np.zeros(total, dtype=bool)
        for m, where in zip(epochs, rows):
            pool[where] = unpack_rows(m.val_correct)  # type: ignore[arg-type]
        correct = pack_rows(pool)
    return EpochMetrics(
        epoch=epochs[0].epoch,
        train_loss=sum(m.train_loss for m in epochs) / len(epochs),
        val_accuracy=_weighted([m.val_accuracy for m in epochs], sizes),
        test_accuracy=mean([m.test_accuracy for m in epochs]),
        seconds=sum(m.seconds for m in epochs),
        label_issue_auroc=mean([m.label_issue_auroc for m in epochs]),
        val_correct=correct,
        noisy_val_accuracy=None if any(v is None for v in noisy) or all_sizes is None
        else _weighted(noisy, all_sizes),  # type: ignore[arg-type]
    )


class TrialCurve:
    """Collects the epochs of one trial's jobs; ``sizes`` are the rows that score in each fold (one
    entry for a holdout split), ``rows`` (optional) where each fold's scored rows sit among them all
    (:func:`automl_noisy.data.folds.scored_rows`), ``all_sizes`` every validation row of each fold when
    only its trusted rows score."""

    def __init__(self, sizes: Sequence[int], rows: Sequence[np.ndarray] | None = None,
                 all_sizes: Sequence[int] | None = None) -> None:
        self.sizes = list(sizes)
        self.rows = rows
        self.all_sizes = all_sizes  # every validation row of each fold, when only some of them score
        self.best: EpochMetrics | None = None  # the epoch with the highest validation accuracy (earliest of ties)
        self.last: EpochMetrics | None = None
        self._waiting: dict[int, dict[int, EpochMetrics]] = {}  # epoch -> fold -> metrics
        self.by_fold: dict[int, dict[int, EpochMetrics]] = {}  # fold -> epoch -> metrics, every epoch

    def add(self, fold: int, metrics: EpochMetrics) -> EpochMetrics | None:
        """Record one fold's epoch; once every fold has reached that epoch, return the combined epoch."""
        self.by_fold.setdefault(fold, {})[metrics.epoch] = metrics
        got = self._waiting.setdefault(metrics.epoch, {})
        got[fold] = metrics
        if len(got) < len(self.sizes):
            return None
        del self._waiting[metrics.epoch]
        combined = combine([got[i] for i in range(len(self.sizes))], self.sizes, self.rows, self.all_sizes)
        self.last = combined
        if self.best is None or combined.val_accuracy > self.best.val_accuracy:
            self.best = combined
        return combined

    def best_of_folds(self, folds: Sequence[int]) -> tuple[int, float, np.ndarray] | None:
        """The best epoch of the given folds taken together (every one of them at that epoch): the
        epoch, its accuracy over their rows, and their rows' correctness, fold after fold (None when
        an epoch lacks a fold's record)."""
        epochs = set.intersection(*(set(self.by_fold.get(f, {})) for f in folds)) if folds else set()
        best = None
        for epoch in sorted(epochs):
            records = [self.by_fold[f][epoch].val_correct for f in folds]
            if any(r is None for r in records):
                return None
            correct = np.concatenate([unpack_rows(r) for r in records])  # type: ignore[arg-type]
            if best is None or correct.mean() > best[1]:
                best = (epoch, float(correct.mean()), correct)
        return best

    def stderr(self) -> float:
        """The standard error of the best epoch's validation accuracy (over all folds' rows)."""
        return binomial_stderr(self.best.val_accuracy, sum(self.sizes)) if self.best else float("nan")
