"""Cross-validation folds of the training pool: a partition, stratified on the labels the user has."""

from __future__ import annotations

import numpy as np
import pytest

from automl_noisy.data import DataSpec, load_data
from automl_noisy.data.folds import default_folds, fold_assignment, fold_split, pool_dataset, pool_folds
from automl_noisy.errors import UserError


@pytest.fixture(scope="module")
def folded():
    return load_data(DataSpec("synthetic", "symmetric:0.4", folds=4, options={"samples": 400, "classes": 4}))


def test_folds_partition_the_pool(folded):
    pool = np.concatenate([folded.train_index, folded.val_index])
    held = np.concatenate([fold_split(folded, i).val_index for i in range(4)])
    assert sorted(held.tolist()) == sorted(pool.tolist())  # every pool row validates exactly once
    for i in range(4):
        fold = fold_split(folded, i)
        assert not set(fold.train_index) & set(fold.val_index)
        assert len(fold.train_index) + len(fold.val_index) == len(pool)
        np.testing.assert_array_equal(fold.x_test, folded.x_test)  # the test split is never touched


def test_rows_keep_their_features_and_labels(folded):
    by_row = {int(r): (x, y) for r, x, y in zip(np.concatenate([folded.train_index, folded.val_index]),
                                                 np.concatenate([folded.x_train, folded.x_val]),
                                                 np.concatenate([folded.y_train, folded.y_val]))}
    fold = fold_split(folded, 2)
    for r, x, y in zip(fold.val_index, fold.x_val, fold.y_val):
        np.testing.assert_array_equal(by_row[int(r)][0], x)
        assert by_row[int(r)][1] == y


def test_folds_are_stratified_on_the_noisy_labels_and_never_read_the_clean_ones(folded):
    y = np.concatenate([folded.y_train, folded.y_val])
    folds = pool_folds(folded)
    for c in range(4):
        per_fold = np.bincount(folds[y == c], minlength=4)
        assert per_fold.max() - per_fold.min() <= 1
    np.testing.assert_array_equal(folds, fold_assignment(y, 4, folded.spec.seed))  # a function of y and seed only
    assert not np.array_equal(folds, fold_assignment(y, 4, folded.spec.seed + 1))


def test_pool_dataset_trains_on_every_pool_row(folded):
    pool = pool_dataset(folded)
    assert len(pool.y_train) == len(folded.y_train) + len(folded.y_val) and len(pool.y_val) == 0
    np.testing.assert_array_equal(pool.noise_mask, np.concatenate([folded.noise_mask,
                                                                   folded.y_val != folded.y_val_clean]))


def test_too_many_folds_for_the_smallest_class_is_a_user_error():
    y = np.array([0] * 10 + [1] * 3)
    with pytest.raises(UserError, match=r"--cv 4 needs 2 to 3 folds"):
        fold_assignment(y, 4, 0)
    with pytest.raises(UserError, match="--cv"):
        DataSpec(folds=0)


def test_default_cross_validates_small_pools_and_keeps_a_holdout_for_large_ones():
    small = load_data(DataSpec("synthetic", options={"samples": 300}))
    large = load_data(DataSpec("synthetic", options={"samples": 13_000, "features": 4}))
    assert default_folds(small) == 3 and default_folds(large) == 1


def test_the_trusted_marks_follow_their_rows_into_each_fold_and_the_pool():
    data = load_data(DataSpec("synthetic", "symmetric:0.4", folds=3,
                              options={"samples": 300, "classes": 3, "trusted_fraction": 0.1}))
    trusted = set(np.concatenate([data.train_index[data.trusted_train], data.val_index[data.trusted_val]]).tolist())
    assert len(trusted) == data.trusted_count == 24
    for i in range(3):
        fold = fold_split(data, i)
        assert fold.trusted_train.shape == fold.y_train.shape and fold.trusted_val.shape == fold.y_val.shape
        assert set(fold.train_index[fold.trusted_train].tolist()) | set(fold.val_index[fold.trusted_val].tolist()) \
            == trusted
        assert fold.trusted_count == 24 and fold.trusted_val.any()
        np.testing.assert_array_equal(fold.y_val[fold.trusted_val], fold.y_val_clean[fold.trusted_val])
    pool = pool_dataset(data)
    assert set(pool.train_index[pool.trusted_train].tolist()) == trusted and len(pool.trusted_val) == 0
    plain = fold_split(load_data(DataSpec("synthetic", folds=3, options={"samples": 300})), 0)
    assert plain.trusted_train is None and plain.trusted_val is None


def test_the_given_labels_of_trusted_rows_follow_their_rows_into_each_fold_and_the_pool():
    data = load_data(DataSpec("synthetic", "symmetric:0.4", folds=3,
                              options={"samples": 300, "classes": 3, "trusted_fraction": 0.1}))
    index = np.concatenate([data.train_index, data.val_index])
    given = dict(zip(index.tolist(), np.concatenate([data.y_train_given, data.y_val_given]).tolist()))
    assert data.y_train_given.shape == data.y_train.shape and data.y_val_given.shape == data.y_val.shape
    for part in [fold_split(data, i) for i in range(3)] + [pool_dataset(data)]:
        for rows, labels in ((part.train_index, part.y_train_given), (part.val_index, part.y_val_given)):
            assert labels.shape == rows.shape and labels.tolist() == [given[r] for r in rows.tolist()]
        assert sorted(part.trusted_labels()[0].tolist()) == sorted(data.trusted_labels()[0].tolist())
    assert len(pool_dataset(data).y_val_given) == 0
    plain = load_data(DataSpec("synthetic", folds=3, options={"samples": 300}))
    assert fold_split(plain, 0).y_train_given is None and pool_dataset(plain).y_val_given is None
