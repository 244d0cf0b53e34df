"""What a data file may be, and how big: a FIFO, a device or a folder where a file belongs is one
line, never a wait; tables wider than MAX_COLUMNS and sizes beyond the limits are refused before
anything is read or made; --impute median fills a table's gaps as scikit-learn's imputer would."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl_noisy.data import DataSpec, load_data
from automl_noisy.data.load import fingerprint
from automl_noisy.data.sources import load_source


@pytest.fixture
def fifo(request):
    """``fifo(path)`` makes a FIFO; at teardown a reader left blocked on it is released."""
    made: list[Path] = []

    def make(path: Path) -> Path:
        os.mkfifo(path)
        made.append(path)
        return path

    yield make
    for path in made:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # a waiting reader gets end-of-file
        except OSError:  # no reader
            pass


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["csv", "parquet", "npz"])
def test_a_fifo_as_a_data_file_is_refused(raises_user_error, fifo, tmp_path, kind):
    path = fifo(tmp_path / f"data.{kind}")
    with raises_user_error(f"data file {path} is a FIFO (named pipe), not a file", f"give a .{kind} file"):
        load_data(DataSpec(source=f"{kind}:{path}"))


@pytest.mark.timeout(60)
def test_a_device_or_a_folder_as_a_data_file_is_refused(raises_user_error, tmp_path):
    with raises_user_error("data file /dev/zero is a character device, not a file"):
        load_data(DataSpec(source="npz:/dev/zero"))
    with raises_user_error(f"data file {tmp_path} is a folder, not a file"):
        load_data(DataSpec(source=f"parquet:{tmp_path}"))


@pytest.mark.timeout(60)
def test_a_fifo_as_a_label_file_is_refused(raises_user_error, fifo, tmp_path):
    path = fifo(tmp_path / "labels.npy")
    with raises_user_error(f"label file {path} is a FIFO (named pipe), not a file"):
        load_source(DataSpec(source="digits", options={"labels": str(path)}))
    with raises_user_error(f"label file {tmp_path} is a folder, not a file"):
        load_source(DataSpec(source="digits", options={"labels": f"{tmp_path}"}))


@pytest.mark.timeout(60)
def test_a_fifo_named_like_an_image_is_refused(raises_user_error, fifo, image_folder):
    root = image_folder({"cat": 3, "dog": 3})
    (root / "dog" / "more").mkdir()
    path = fifo(root / "dog" / "more" / "x.PNG")
    with raises_user_error(f"image folder entry {path} is a FIFO (named pipe), not an image file"):
        load_data(DataSpec(source=f"folder:{root}"))
    path.unlink()
    fifo(root / "dog" / "notes.txt")  # not named like an image: never opened
    assert len(load_source(DataSpec(source=f"folder:{root}")).y) == 6


@pytest.mark.timeout(60)
def test_a_csv_wider_than_the_limit_is_refused_from_its_header(raises_user_error, tmp_path):
    """A header of 10^6 columns and no end: refused after the first chunk, never parsed."""
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(1_000_000)))
    with raises_user_error(f"CSV file {path} has at least", "columns, more than the limit of 50,000"):
        load_data(DataSpec(source=f"csv:{path}"))
    path.write_text(",".join(f"c{i}" for i in range(50_000)) + ",label\n" + ",".join("0" * 50_001) + "\n")
    with raises_user_error(f"CSV file {path} has 50,001 columns, more than the limit of 50,000"):
        load_data(DataSpec(source=f"csv:{path}"))


@pytest.mark.timeout(60)
def test_columns_named_twice_are_found_in_linear_time(raises_user_error, tmp_path):
    """30,000 columns took 112 s with the quadratic check; the test's timeout fails it if it comes back."""
    names = [f"c{i}" for i in range(30_000)] + ["c7", "c9", "label"]
    path = tmp_path / "twice.csv"
    path.write_text(",".join(names) + "\n" + ",".join("0" * len(names)) + "\n")
    with raises_user_error("names column(s) 'c7', 'c9' more than once"):
        load_data(DataSpec(source=f"csv:{path}"))


def test_a_parquet_file_wider_than_the_limit_is_refused_from_its_schema(raises_user_error, monkeypatch, tmp_path):
    monkeypatch.setattr("automl_noisy.data.sources.tabular.MAX_COLUMNS", 3)
    pd.DataFrame({"a": [1], "b": [2], "c": [3], "label": [0]}).to_parquet(tmp_path / "t.parquet")
    with raises_user_error("has 4 columns, more than the limit of 3"):
        load_data(DataSpec(source=f"parquet:{tmp_path / 't.parquet'}"))


@pytest.mark.parametrize("options, fragment", [
    ({"samples": 10**12}, "synthetic data of 1000000000000 samples x 20 features (--dims) x 4 classes holds 8e+13"),
    ({"features": 10**9}, "more than the limit of 268,435,456"),
    ({"samples": 10**6, "classes": 10**5}, "x 100000 classes"),
])
def test_synthetic_sizes_beyond_the_limit_are_refused_before_generation(raises_user_error, options, fragment):
    with raises_user_error(fragment, "pass smaller --samples, --dims or --classes"):
        load_data(DataSpec(source="synthetic", options=options))


def test_an_image_size_beyond_the_limit_is_refused_before_decoding(raises_user_error, image_folder, monkeypatch):
    root = image_folder({"cat": 3, "dog": 3})

    def never(*args):
        raise AssertionError("an image was decoded")

    monkeypatch.setattr("automl_noisy.data.sources.images.decode_image", never)
    with raises_user_error("6 images of", "decoded at 100000x100000 pixels", "more than the limit of 1,073,741,824",
                           "--image-size"):
        load_data(DataSpec(source=f"folder:{root}", options={"image_size": 100_000}))


def test_a_sample_beyond_the_limit_is_refused(raises_user_error, monkeypatch, write_npz):
    monkeypatch.setattr("automl_noisy.data.load.MAX_SAMPLE_VALUES", 10)
    source = write_npz(X=np.zeros((6, 11)), y=np.array([0, 1] * 3))
    with raises_user_error("one sample of", "(shape (11,)) holds 11 values, more than the limit of 10"):
        load_data(DataSpec(source=source))


@pytest.fixture
def gappy(tmp_path) -> tuple[pd.DataFrame, str]:
    rng = np.random.default_rng(4)
    n = 90
    frame = pd.DataFrame({"age": rng.normal(40, 9, n).round(1), "city": rng.choice(["oslo", "rome"], n),
                          "income": rng.lognormal(3, 1, n), "label": np.repeat(["a", "b", "c"], n // 3)})
    frame.loc[[2, 30, 31, 77], "age"] = np.nan
    frame.loc[[5], "income"] = np.nan
    frame.loc[[8, 40], "city"] = None
    path = tmp_path / "gappy.csv"
    frame.to_csv(path, index=False)
    return frame, f"csv:{path}"


def test_gaps_are_refused_by_default_with_the_impute_flag_as_the_fix(raises_user_error, gappy):
    _, source = gappy
    with raises_user_error("'age' (4)", "'city' (2)", "'income' (1)", "NaN", "pass --impute median"):
        load_data(DataSpec(source=source))


def test_impute_median_equals_scikit_learns_imputer_fitted_on_the_training_split(gappy):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame, source = gappy
    data = load_data(DataSpec(source=source, options={"impute": "median"}))
    prep = data.preprocessing
    assert prep.impute == "median" and [c.name for c in prep.columns] == ["age", "city", "income"]
    assert prep.columns[1].categories == ("oslo", "rome") and prep.columns[1].missing_category
    sklearn = ColumnTransformer([
        ("age", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["age"]),
        ("city", OneHotEncoder(categories=[["oslo", "rome", np.nan]], sparse_output=False), ["city"]),
        ("income", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["income"]),
    ]).fit(frame.iloc[data.train_index])
    for index, x in ((data.train_index, data.x_train), (data.val_index, data.x_val)):
        np.testing.assert_allclose(sklearn.transform(frame.iloc[index]), x, rtol=1e-5, atol=1e-5)
    assert prep.columns[0].fill == pytest.approx(frame["age"].iloc[data.train_index].median())


def test_imputed_data_has_its_own_fingerprint(gappy, tmp_path):
    """The gaps are part of the data: the same file with the gaps filled in by hand is other data."""
    frame, source = gappy
    data = load_data(DataSpec(source=source, options={"impute": "median"}))
    filled = frame.assign(age=frame["age"].fillna(data.preprocessing.columns[0].fill),
                          income=frame["income"].fillna(data.preprocessing.columns[2].fill),
                          city=frame["city"].fillna("(missing)"))
    filled.to_csv(tmp_path / "filled.csv", index=False)
    other = load_data(DataSpec(source=f"csv:{tmp_path / 'filled.csv'}"))
    assert data.fingerprint != other.fingerprint
    assert data.fingerprint == load_data(DataSpec(source=source, options={"impute": "median"})).fingerprint
    raw = load_source(DataSpec(source=source, options={"impute": "median"}))
    assert data.fingerprint == fingerprint(raw.x, raw.y) and np.isnan(raw.x).any()


def test_impute_mistakes(raises_user_error, gappy, write_csv):
    _, source = gappy
    with raises_user_error("option impute (--impute) must be one of: median; got 'mean'"):
        load_data(DataSpec(source=source, options={"impute": "mean"}))
    empty = write_csv({"a": [np.nan] * 12, "b": range(12), "label": [0, 1] * 6})
    with raises_user_error("feature column 'a'", "has no value in the training split"):
        load_data(DataSpec(source=empty, options={"impute": "median"}))
    infinite = write_csv({"a": [1.0, np.inf] * 6, "label": [0, 1] * 6}, name="inf.csv")
    with raises_user_error("feature column 'a'", "holds an infinite value (file line 3)", "not infinite ones"):
        load_data(DataSpec(source=infinite, options={"impute": "median"}))
