"""Trusted rows (--trusted FILE, --trusted-fraction F): verified labels replace the noisy ones, are
marked, belong to the fingerprint, and never come from the test split."""

from __future__ import annotations

import numpy as np
import pytest

from automl_noisy.data import DataSpec, load_data
from automl_noisy.data.sources.memory import hold_trusted, release
from automl_noisy.errors import UserError

SYNTHETIC = {"samples": 300, "features": 8, "classes": 3}


@pytest.fixture
def table(write_csv, blobs):
    """A CSV source of 60 rows, classes 'x', 'y', 'z' (20 each); no noise, so no test split."""
    x, y = blobs(n_per_class=20, classes=("x", "y", "z"))
    return write_csv({"a": x[:, 0], "b": x[:, 1], "label": y}), y


def _by_row(data, labels: bool = True) -> dict[int, int]:
    """Source row -> training or validation label of the trusted rows."""
    rows = np.concatenate([data.train_index[data.trusted_train], data.val_index[data.trusted_val]])
    y = np.concatenate([data.y_train[data.trusted_train], data.y_val[data.trusted_val]])
    return dict(zip(rows.tolist(), y.tolist()))


def test_a_trusted_csv_replaces_the_labels_of_its_rows(table, tmp_path):
    source, y = table
    plain = load_data(DataSpec(source=source))
    path = tmp_path / "trusted.csv"
    path.write_text("row,label\n3,z\n45,x\n7,y\n")  # row 3 was 'x', 45 'z': the file corrects them
    data = load_data(DataSpec(source=source, options={"trusted": str(path)}))
    assert data.trusted_count == 3 and _by_row(data) == {3: 2, 45: 0, 7: 1}
    assert data.trusted_train.dtype == bool and data.trusted_train.shape == data.y_train.shape
    assert data.trusted_val.shape == data.y_val.shape
    untrusted = ~data.trusted_train
    np.testing.assert_array_equal(data.y_train[untrusted], plain.y_train[untrusted])  # the others keep theirs
    assert "3 trusted rows" in data.summary() and str(path) in data.summary()
    assert plain.trusted_train is None and plain.trusted_val is None and plain.trusted_count == 0
    assert "trusted rows" not in plain.summary()
    assert data.fingerprint != plain.fingerprint
    np.testing.assert_array_equal(data.y_train_given, plain.y_train)  # what the data file gave, every row
    np.testing.assert_array_equal(data.y_val_given, plain.y_val)
    given, verified = data.trusted_labels()
    # (given, verified): row 7 'x' -> 'y', row 3 'x' -> 'z', row 45 'z' -> 'x'
    assert sorted(zip(given.tolist(), verified.tolist())) == [(0, 1), (0, 2), (2, 0)]
    assert plain.y_train_given is None and plain.trusted_labels()[0].size == 0
    path.write_text("row,label\n3,z\n45,x\n7,x\n")  # one label differs
    assert load_data(DataSpec(source=source, options={"trusted": str(path)})).fingerprint != data.fingerprint


def test_class_ids_in_a_csv_and_an_npz(table, tmp_path):
    source, _ = table
    (tmp_path / "ids.csv").write_text("row,label\n3,2\n45,0\n")  # not class names: class ids
    np.savez(tmp_path / "ids.npz", row=np.array([45, 3]), label=np.array([0, 2]))
    np.savez(tmp_path / "names.npz", row=np.array([3, 45]), label=np.array(["z", "x"]))
    sets = [load_data(DataSpec(source=source, options={"trusted": str(tmp_path / f)}))
            for f in ("ids.csv", "ids.npz", "names.npz")]
    assert all(_by_row(d) == {3: 2, 45: 0} for d in sets)
    assert len({d.fingerprint for d in sets}) == 1  # the same set, whatever the file


def test_trusted_rows_of_built_in_noised_data_stay_out_of_the_test_split(tmp_path):
    spec = DataSpec("synthetic", "symmetric:0.4", options=SYNTHETIC)
    plain = load_data(spec)
    rows = np.concatenate([plain.train_index[:5], plain.val_index[:2]])
    np.savez(tmp_path / "t.npz", row=rows, label=np.zeros(len(rows), dtype=np.int64))
    data = load_data(DataSpec("synthetic", "symmetric:0.4", options={**SYNTHETIC, "trusted": str(tmp_path / "t.npz")}))
    assert _by_row(data) == {int(r): 0 for r in rows}
    assert (data.trusted_train.sum(), data.trusted_val.sum()) == (5, 2)
    np.testing.assert_array_equal(data.y_train_clean, plain.y_train_clean)  # the clean labels stay the source's
    test_row = int(np.setdiff1d(np.arange(300), np.concatenate([plain.train_index, plain.val_index]))[0])
    np.savez(tmp_path / "test.npz", row=np.array([int(rows[0]), test_row]), label=np.array([0, 1]))
    with pytest.raises(UserError, match=f"trusted row {test_row} of .* is in the test split.*remove them"):
        load_data(DataSpec("synthetic", "symmetric:0.4", options={**SYNTHETIC, "trusted": str(tmp_path / "test.npz")}))


@pytest.mark.parametrize("fraction", [0.05, 0.2])
def test_a_trusted_fraction_is_stratified_and_clean(fraction):
    spec = DataSpec("synthetic", "symmetric:0.4", options={**SYNTHETIC, "trusted_fraction": fraction})
    data = load_data(spec)
    pool = len(data.y_train) + len(data.y_val)
    assert data.trusted_count == round(fraction * pool)
    clean = np.concatenate([data.y_train_clean[data.trusted_train], data.y_val_clean[data.trusted_val]])
    counts = np.bincount(clean, minlength=3)
    assert counts.min() >= 1 and counts.max() - counts.min() <= 1  # every class, in proportion
    np.testing.assert_array_equal(data.y_train[data.trusted_train], data.y_train_clean[data.trusted_train])
    np.testing.assert_array_equal(data.y_val[data.trusted_val], data.y_val_clean[data.trusted_val])
    noised = load_data(DataSpec("synthetic", "symmetric:0.4", options=SYNTHETIC))
    untrusted = ~data.trusted_train
    np.testing.assert_array_equal(data.y_train[untrusted], noised.y_train[untrusted])  # noise as without
    assert (noised.y_train[data.trusted_train] != data.y_train[data.trusted_train]).any()  # some were noisy
    np.testing.assert_array_equal(data.y_train_given, noised.y_train)  # the given labels: the injected noise's
    np.testing.assert_array_equal(data.y_val_given, noised.y_val)
    again = load_data(spec)
    np.testing.assert_array_equal(again.trusted_train, data.trusted_train)
    assert again.fingerprint == data.fingerprint != noised.fingerprint
    other = load_data(DataSpec("synthetic", "symmetric:0.4", seed=1,
                               options={**SYNTHETIC, "trusted_fraction": fraction}))
    assert other.fingerprint != data.fingerprint


def test_trusted_rows_held_in_memory(table):
    source, _ = table
    key = hold_trusted(np.array([3, 45]), np.array([2, 0]))
    try:
        data = load_data(DataSpec(source=source, options={"trusted": key}))
        assert _by_row(data) == {3: 2, 45: 0}
    finally:
        release(key)
    with pytest.raises(UserError, match="existed only in the Python process"):
        load_data(DataSpec(source=source, options={"trusted": key}))


@pytest.mark.parametrize("content, fragments", [
    ("row,label\n3,z\n60,x\n", ("unknown row id 60", "ids 0..59")),
    ("row,label\n3,z\n4,w\n", ("unknown class(es) 'w'", "classes: x, y, z")),
    ("row,label\n3,1\n4,7\n", ("out of range", "outside 0..2")),
    ("row,label\n3,z\n3,x\n", ("lists row 3 more than once",)),
    ("row,label\n3.5,z\n", ("whole numbers",)),
    ("row,class\n3,z\n", ("lacks the column(s) label",)),
    ("row,label\n", ("lists no rows",)),
])
def test_bad_trusted_csv_files(table, tmp_path, raises_user_error, content, fragments):
    source, _ = table
    (tmp_path / "t.csv").write_text(content)
    with raises_user_error(*fragments):
        load_data(DataSpec(source=source, options={"trusted": str(tmp_path / "t.csv")}))


def test_bad_trusted_files_and_options(table, tmp_path, raises_user_error):
    source, _ = table
    load = lambda **options: load_data(DataSpec(source=source, options=options))  # noqa: E731
    with raises_user_error("trusted file not found"):
        load(trusted=str(tmp_path / "none.csv"))
    (tmp_path / "t.json").write_text("{}")
    with raises_user_error("must end in .csv"):
        load(trusted=str(tmp_path / "t.json"))
    np.savez(tmp_path / "rows.npz", row=np.array([1, 2]))
    with raises_user_error("lacks the array(s) label"):
        load(trusted=str(tmp_path / "rows.npz"))
    np.savez(tmp_path / "uneven.npz", row=np.array([1, 2]), label=np.array([0]))
    with raises_user_error("2 row ids but 1 labels"):
        load(trusted=str(tmp_path / "uneven.npz"))
    with raises_user_error("clean labels of", "are unknown"):
        load(trusted_fraction=0.1)  # the user's own labels, no noise injected
    with raises_user_error("pass one of the two"):
        DataSpec(source=source, options={"trusted": "t.csv", "trusted_fraction": 0.1})
    for bad in (0.0, 1.0, -0.2, "0.1", float("nan"), True):
        with raises_user_error("trusted_fraction (--trusted-fraction) must be a number in (0, 1)"):
            DataSpec(source=source, options={"trusted_fraction": bad})
    with raises_user_error("must name a .csv or .npz file"):
        DataSpec(source=source, options={"trusted": ""})
    with raises_user_error("fewer than the 3 classes", "each class needs a trusted row"):
        load_data(DataSpec("synthetic", "symmetric:0.2", options={**SYNTHETIC, "trusted_fraction": 0.005}))
