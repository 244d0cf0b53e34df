"""CSV and parquet tables: chosen feature columns, one-hot categories, scaling of numeric columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl_noisy.data import DataSpec, load_data
from automl_noisy.data.sources import load_source
from automl_noisy.data.preprocessing import MAX_CATEGORIES


@pytest.fixture
def table(blobs) -> pd.DataFrame:
    x, y = blobs(n_per_class=30, features=2)
    city = np.array(["oslo", "rome", "lima"])[np.arange(len(y)) % 3]
    return pd.DataFrame({"age": x[:, 0] * 10 + 40, "income": x[:, 1], "city": city, "id": np.arange(len(y)),
                         "label": np.array(["a", "b", "c"])[y]})


@pytest.fixture
def write_parquet(tmp_path):
    def write(frame: pd.DataFrame, name: str = "data.parquet") -> str:
        frame.to_parquet(tmp_path / name, engine="pyarrow")
        return f"parquet:{tmp_path / name}"

    return write


def test_parquet_with_categorical_and_chosen_features(write_parquet, table):
    source = write_parquet(table)
    raw = load_source(DataSpec(source=source, options={"columns": ["city", "age"]}))
    assert raw.x.shape == (90, 4) and raw.unscaled_columns == (0, 1, 2)  # lima, oslo, rome, then age
    np.testing.assert_array_equal(raw.x[:3, :3], [[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    np.testing.assert_allclose(raw.x[:, 3], table["age"], rtol=1e-6)
    assert raw.class_names == ("a", "b", "c") and not raw.labels_trusted


def test_csv_and_parquet_agree(write_parquet, write_csv, table):
    options = {"columns": ["age", "income", "city"]}
    a = load_data(DataSpec(source=write_parquet(table), options=options))
    b = load_data(DataSpec(source=write_csv(table), options=options))
    np.testing.assert_allclose(a.x_train, b.x_train, atol=1e-5)
    assert a.fingerprint == b.fingerprint


def test_numeric_columns_standardized_one_hot_left_as_0_1(write_parquet, table):
    data = load_data(DataSpec(source=write_parquet(table), options={"columns": ["age", "city", "income"]}))
    numeric = data.x_train[:, [0, 4]]
    assert np.allclose(numeric.mean(axis=0), 0, atol=1e-5) and np.allclose(numeric.std(axis=0), 1, atol=1e-4)
    one_hot = np.concatenate([data.x_train[:, 1:4], data.x_val[:, 1:4], data.x_test[:, 1:4]])
    assert set(np.unique(one_hot)) == {0.0, 1.0} and np.all(one_hot.sum(axis=1) == 1)


def test_default_features_are_every_column_but_the_label(write_parquet, table):
    raw = load_source(DataSpec(source=write_parquet(table)))
    assert raw.x.shape == (90, 1 + 1 + 3 + 1)


def test_bare_parquet_path(tmp_path, table):
    table[["age", "label"]].to_parquet(tmp_path / "t.parquet")
    assert load_source(DataSpec(source=str(tmp_path / "t.parquet"))).x.shape == (90, 1)


# --- user errors -------------------------------------------------------------------------------


def test_unknown_feature_column(raises_user_error, write_parquet, table):
    with raises_user_error("'height' not in", "columns are: age, income, city, id, label", "--features"):
        load_source(DataSpec(source=write_parquet(table), options={"columns": ["age", "height"]}))


def test_label_column_as_feature(raises_user_error, write_csv, table):
    with raises_user_error("label column 'label' cannot also be a feature"):
        load_source(DataSpec(source=write_csv(table), options={"columns": ["age", "label"]}))


def test_too_many_categories(raises_user_error, write_csv, table):
    table["name"] = [f"person{i}" for i in range(len(table))]
    with raises_user_error("'name'", f"90 categories, more than {MAX_CATEGORIES}", "--features"):
        load_source(DataSpec(source=write_csv(table)))
    assert load_source(DataSpec(source=write_csv(table), options={"columns": ["age", "city"]})).x.shape == (90, 4)


def test_missing_category(raises_user_error, write_parquet, table):
    table.loc[[3, 7], "city"] = None
    with raises_user_error("'city' (2)", "missing"):
        load_source(DataSpec(source=write_parquet(table)))


def test_not_a_parquet_file(raises_user_error, tmp_path):
    (tmp_path / "x.parquet").write_text("a,b\n1,2\n")
    with raises_user_error("cannot read parquet file", str(tmp_path / "x.parquet")):
        load_source(DataSpec(source=f"parquet:{tmp_path / 'x.parquet'}"))


@pytest.mark.parametrize("columns", [[], "", [1, 2]])
def test_bad_columns_option(raises_user_error, write_csv, table, columns):
    with raises_user_error("--features"):
        load_source(DataSpec(source=write_csv(table), options={"columns": columns}))
