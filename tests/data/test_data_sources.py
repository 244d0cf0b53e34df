"""Sources: each loads, and each user mistake is a one-line UserError naming the problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl_noisy.data import DataSpec, load_data
from automl_noisy.data.sources import DIGITS_CLASS_MAP, LOADERS, load_source


def test_digits():
    raw = load_source(DataSpec(source="digits"))
    assert raw.x.shape == (1797, 1, 8, 8) and raw.x.dtype == np.float32
    assert 0.0 <= raw.x.min() and raw.x.max() <= 1.0
    assert raw.class_names == tuple(str(c) for c in range(10))
    assert raw.labels_trusted and raw.default_class_map == DIGITS_CLASS_MAP


def test_synthetic_options():
    raw = load_source(DataSpec(source="synthetic", options={"samples": 300, "features": 5, "classes": 3}))
    assert raw.x.shape == (300, 5) and raw.x.dtype == np.float32
    assert raw.class_names == ("0", "1", "2") and raw.labels_trusted
    assert np.bincount(raw.y).min() >= 90


def test_synthetic_seed_changes_data():
    a = load_source(DataSpec(source="synthetic", seed=0, options={"samples": 100}))
    b = load_source(DataSpec(source="synthetic", seed=1, options={"samples": 100}))
    assert not np.array_equal(a.x, b.x)


def test_synthetic_many_classes_few_features():
    raw = load_source(DataSpec(source="synthetic", options={"samples": 400, "features": 3, "classes": 8}))
    assert len(raw.class_names) == 8


@pytest.mark.parametrize("options, fragment", [
    ({"classes": 1}, "classes"),
    ({"samples": "many"}, "samples"),
    ({"features": True}, "features"),
    ({"samples": 10, "classes": 4}, "samples"),
    ({"features": 2, "classes": 9}, "features"),
    ({"informative": 3}, "informative"),
])
def test_synthetic_bad_options(raises_user_error, options, fragment):
    with raises_user_error(fragment):
        load_source(DataSpec(source="synthetic", options=options))


def test_csv_string_labels(write_csv):
    source = write_csv({"a": [1.0, 2, 3, 4, 5, 6], "b": [0, 1, 0, 1, 0, 1],
                        "label": ["dog", "cat", "dog", "cat", "dog", "cat"]})
    raw = load_source(DataSpec(source=source))
    assert raw.class_names == ("cat", "dog")
    np.testing.assert_array_equal(raw.y, [1, 0, 1, 0, 1, 0])
    assert raw.x.shape == (6, 2) and raw.x.dtype == np.float32 and not raw.labels_trusted


def test_csv_int_labels_and_custom_column(write_csv):
    source = write_csv({"target": [3, 7, 3, 7, 3, 7], "f": [0.5, 1, 2, 3, 4, 5]})
    raw = load_source(DataSpec(source=source, label_column="target"))
    assert raw.class_names == ("3", "7")
    np.testing.assert_array_equal(raw.x[:, 0], [0.5, 1, 2, 3, 4, 5])


def test_bare_csv_path_is_inferred(write_csv):
    source = write_csv({"f": range(6), "label": [0, 1] * 3})
    assert load_source(DataSpec(source=source.removeprefix("csv:"))).x.shape == (6, 1)


def test_npz_uint8_images_and_string_labels(write_npz):
    x = np.arange(6 * 2 * 4 * 4).reshape(6, 2, 4, 4).astype(np.uint8)
    source = write_npz(X=x, y=np.array(["b", "a"] * 3))
    raw = load_source(DataSpec(source=source))
    assert raw.x.shape == (6, 2, 4, 4) and raw.x.dtype == np.float32
    np.testing.assert_allclose(raw.x, x / 255.0, rtol=1e-6)
    assert raw.class_names == ("a", "b") and not raw.labels_trusted and not raw.standardize


def test_npz_vectors_are_standardized(write_npz, blobs):
    x, y = blobs(n_per_class=20, classes=(0, 1))
    raw = load_source(DataSpec(source=write_npz(X=x * 10 + 5, y=y)))
    assert raw.standardize


def test_loaders_are_registered_by_prefix():
    assert {"digits", "synthetic", "csv", "npz", "parquet", "folder", "torchvision"} <= set(LOADERS)


# --- user errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "npz"])
def test_missing_file(raises_user_error, tmp_path, kind):
    path = tmp_path / f"absent.{kind}"
    with raises_user_error(f"data file not found: {path}"):
        load_data(DataSpec(source=f"{kind}:{path}"))


def test_unknown_source(raises_user_error):
    with raises_user_error("'mnist'", "digits, synthetic, csv:PATH, npz:PATH"):
        load_data(DataSpec(source="mnist"))


def test_source_without_path(raises_user_error):
    with raises_user_error("csv:", "file path"):
        load_data(DataSpec(source="csv:"))


def test_builtin_source_with_path(raises_user_error):
    with raises_user_error("'digits'", "no path"):
        load_data(DataSpec(source="digits:foo"))


def test_directory_is_not_a_file(raises_user_error, tmp_path):
    with raises_user_error(str(tmp_path), "not a file"):
        load_data(DataSpec(source=f"csv:{tmp_path}"))


def test_label_column_absent(raises_user_error, write_csv):
    source = write_csv({"a": [1, 2], "b": [3, 4], "label": [0, 1]})
    with raises_user_error("'target'", "columns are: a, b, label", "--label-column"):
        load_data(DataSpec(source=source, label_column="target"))


def test_single_class(raises_user_error, write_csv):
    source = write_csv({"a": range(10), "label": ["cat"] * 10})
    with raises_user_error("single class 'cat'", "at least two"):
        load_data(DataSpec(source=source))


def test_class_too_small_to_split(raises_user_error, write_csv):
    source = write_csv({"a": range(12), "label": ["cat"] * 10 + ["dog"] * 2})
    with raises_user_error("'dog' (2)", "too few"):
        load_data(DataSpec(source=source))


def test_nan_features_csv(raises_user_error, write_csv):
    source = write_csv({"a": [1.0, np.nan, 3, np.nan], "b": [1.0, 2, np.inf, 4], "c": [1, 2, 3, 4],
                        "label": [0, 1, 0, 1]})
    with raises_user_error("'a' (2)", "'b' (1)", "NaN"):
        load_data(DataSpec(source=source))
    with pytest.raises(Exception) as info:
        load_data(DataSpec(source=source))
    assert "'c'" not in str(info.value)


def test_nan_label_csv(raises_user_error, write_csv):
    source = write_csv({"a": range(4), "label": [0, None, 1, 1]})
    with raises_user_error("label column 'label'", "1 row", "line(s) 3"):
        load_data(DataSpec(source=source))


def test_non_numeric_feature_column_is_one_hot(write_csv):
    source = write_csv({"a": [1, 2, 3, 4, 5, 6], "colour": ["red", "blue", "red", "green", "blue", "red"],
                        "label": [0, 1, 0, 1, 0, 1]})
    raw = load_source(DataSpec(source=source))
    assert raw.x.shape == (6, 4) and raw.unscaled_columns == (1, 2, 3)  # a, then blue, green, red
    np.testing.assert_array_equal(raw.x[:, 1:], [[0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 1]])


def test_csv_with_only_the_label_column(raises_user_error, write_csv):
    source = write_csv({"label": [0, 1, 0, 1]})
    with raises_user_error("no feature columns"):
        load_data(DataSpec(source=source))


def test_malformed_csv(raises_user_error, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with raises_user_error("cannot read CSV file", str(path)):
        load_data(DataSpec(source=f"csv:{path}"))


def test_npz_missing_key(raises_user_error, write_npz):
    source = write_npz(features=np.zeros((4, 2)), labels=np.array([0, 1, 0, 1]))
    with raises_user_error("'X' and 'y'", "features, labels"):
        load_data(DataSpec(source=source))


def test_npz_nan_features(raises_user_error, write_npz):
    x = np.ones((6, 2))
    x[1, 1] = np.nan
    with raises_user_error("1 NaN"):
        load_data(DataSpec(source=write_npz(X=x, y=np.array([0, 1] * 3))))


def test_npz_nan_labels(raises_user_error, write_npz):
    y = np.array([0, 1, np.nan, 1, 0, 1])
    with raises_user_error("y in", "NaN"):
        load_data(DataSpec(source=write_npz(X=np.ones((6, 2)), y=y)))


def test_npz_shape_mismatch(raises_user_error, write_npz):
    with raises_user_error("X (6, 2)", "y (5,)"):
        load_data(DataSpec(source=write_npz(X=np.ones((6, 2)), y=np.arange(5))))


def test_npz_object_arrays_are_not_unpickled(raises_user_error, write_npz):
    source = write_npz(X=np.array([{"a": 1}] * 4, dtype=object), y=np.array([0, 1, 0, 1]))
    with raises_user_error("array 'X' in npz file", "holds Python objects", "never loaded"):
        load_data(DataSpec(source=source))


def test_npz_without_samples(raises_user_error, write_npz):
    with raises_user_error("no samples"):
        load_data(DataSpec(source=write_npz(X=np.zeros((0, 2)), y=np.zeros(0, dtype=int))))


def test_not_an_npz_file(raises_user_error, tmp_path):
    path = tmp_path / "data.npz"
    path.write_text("hello")
    with raises_user_error("cannot read npz file", str(path)):
        load_data(DataSpec(source=f"npz:{path}"))
    np.save(tmp_path / "plain.npy", np.zeros(3))
    (tmp_path / "plain.npy").rename(tmp_path / "plain.npz")
    with raises_user_error("not an .npz archive"):
        load_data(DataSpec(source=f"npz:{tmp_path / 'plain.npz'}"))


def test_csv_read_with_pandas_matches(write_csv):
    source = write_csv({"x1": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "label": [1, 2] * 3})
    frame = pd.read_csv(source.removeprefix("csv:"))
    raw = load_source(DataSpec(source=source))
    np.testing.assert_allclose(raw.x[:, 0], frame["x1"].to_numpy(), rtol=1e-6)
