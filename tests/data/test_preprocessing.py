"""The fitted preprocessing: recorded at load time, equal to scikit-learn's transformers, and what
new rows go through (tables, arrays, image folders)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl_noisy.data import DataSpec, load_data
from automl_noisy.data.inputs import array_inputs, frame_inputs, image_paths, read_inputs
from automl_noisy.data.preprocessing import Column, Preprocessing
from automl_noisy.errors import UserError


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame({"age": rng.normal(40, 12, n).round(1), "city": rng.choice(["Oslo", "Rome", "Lima"], n),
                          "income": rng.lognormal(10, 1, n), "plan": rng.choice(["a", "b"], n),
                          "label": rng.choice(["yes", "no"], n)})
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    return frame, str(path)


def _sklearn_transformer(frame: pd.DataFrame, prep: Preprocessing, unknown: str):
    """One transformer per column, in the model's column order: StandardScaler for numbers,
    OneHotEncoder with the recorded categories for text."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = [(c.name, StandardScaler() if c.categories is None else
              OneHotEncoder(categories=[list(c.categories)], handle_unknown=unknown, sparse_output=False), [c.name])
             for c in prep.columns]
    return ColumnTransformer(parts)


def test_table_preprocessing_equals_scikit_learns_column_transformer(table):
    frame, path = table
    data = load_data(DataSpec(source=f"csv:{path}"))
    prep = data.preprocessing
    assert [c.name for c in prep.columns] == ["age", "city", "income", "plan"]
    assert prep.columns[1].categories == ("Lima", "Oslo", "Rome") and prep.label_column == "label"
    fitted = _sklearn_transformer(frame, prep, "error").fit(frame.iloc[data.train_index])
    for index, x in ((data.train_index, data.x_train), (data.val_index, data.x_val)):
        np.testing.assert_allclose(fitted.transform(frame.iloc[index]), x, rtol=1e-6, atol=1e-6)
    # new rows, an unseen category among them: the same as handle_unknown="ignore"
    new = frame.drop(columns="label").iloc[:5].copy()
    new.loc[new.index[0], "city"] = "Paris"
    ignoring = _sklearn_transformer(frame, prep, "ignore").fit(frame.iloc[data.train_index])
    inputs = frame_inputs(new, prep, "new rows")
    np.testing.assert_allclose(inputs.x, ignoring.transform(new), rtol=1e-6, atol=1e-6)
    assert inputs.x[0, 1:4].tolist() == [0.0, 0.0, 0.0]
    assert inputs.notes == ["column 'city' holds 1 category the model never saw ('Paris'): encoded as none of its "
                            "categories (all-zero one-hot columns)"]


def test_new_rows_of_the_training_file_are_the_training_features(table):
    """Found by name, whatever the order; other columns (the label among them) ignored."""
    frame, path = table
    data = load_data(DataSpec(source=f"csv:{path}"))
    inputs = read_inputs(path, data.preprocessing)
    np.testing.assert_array_equal(inputs.x[data.train_index], data.x_train)
    np.testing.assert_array_equal(inputs.index, np.arange(len(frame)))
    shuffled = frame[["plan", "income", "label", "city", "age"]].assign(extra=1.0)
    np.testing.assert_array_equal(frame_inputs(shuffled, data.preprocessing, "x").x, inputs.x)


@pytest.mark.parametrize("change, fragments", [
    (lambda f: f.drop(columns=["city", "age"]), ("lacks the feature column(s) 'age', 'city'", "its columns are")),
    (lambda f: f.assign(age=f["age"].astype(str).where(f.index != 3, "old")), ("'age'", "holds text ('old')")),
    (lambda f: f.assign(income=f["income"].where(f.index != 2, np.nan)), ("'income' (1)", "missing")),
    (lambda f: f.assign(city=f["city"].where(f.index != 2, None)), ("'city' (1)", "missing")),
])
def test_table_mistakes_are_one_line(table, change, fragments):
    frame, path = table
    prep = load_data(DataSpec(source=f"csv:{path}")).preprocessing
    with pytest.raises(UserError) as caught:
        frame_inputs(change(frame), prep, "new.csv")
    assert "\n" not in str(caught.value) and all(f in str(caught.value) for f in fragments), str(caught.value)


def test_a_table_model_takes_an_array_of_its_columns_in_order(table):
    frame, path = table
    prep = load_data(DataSpec(source=f"csv:{path}")).preprocessing
    features = frame[["age", "city", "income", "plan"]]
    np.testing.assert_array_equal(array_inputs(features.to_numpy(dtype=object), prep, "a").x,
                                  frame_inputs(features, prep, "f").x)
    with pytest.raises(UserError, match=r"reads 4 columns \(age, city, income, plan\)"):
        array_inputs(np.zeros((3, 5)), prep, "the array")


def test_vectors_keep_the_training_standardization(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.normal(5, 3, (90, 4)), np.repeat([0, 1, 2], 30)
    np.savez(tmp_path / "v.npz", X=x, y=y)
    np.savez(tmp_path / "new.npz", X=x)  # no labels: new rows
    data = load_data(DataSpec(source=f"npz:{tmp_path / 'v.npz'}"))
    prep = Preprocessing.from_dict(data.preprocessing.to_dict())  # as a model folder keeps it
    assert prep == data.preprocessing and prep.mean is not None
    new = read_inputs(str(tmp_path / "new.npz"), prep)
    np.testing.assert_array_equal(new.x[data.train_index], data.x_train)
    with pytest.raises(UserError, match=r"samples of shape \(3,\); the model takes arrays of shape \(n, 4\)"):
        array_inputs(x[:, :3], prep, "X")
    with pytest.raises(UserError, match="one sample"):
        array_inputs(x[0], prep, "X")
    with pytest.raises(UserError, match="not the columns of a table"):
        frame_inputs(pd.DataFrame(x), prep, "t.csv")


def _png(path, pixels):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB").save(path)


def test_image_folders_new_images_take_the_models_size_and_channels(tmp_path):
    rng = np.random.default_rng(2)
    for k, label in enumerate(("cat", "dog")):
        for i in range(6):
            _png(tmp_path / "train" / label / f"{i}.png", rng.integers(40 + 90 * k, 120 + 90 * k, (9, 7, 3), dtype=np.uint8))
    data = load_data(DataSpec(source=f"folder:{tmp_path / 'train'}", options={"image_size": 8}))
    prep = data.preprocessing
    assert prep.input_shape == (3, 8, 8) and prep.image_size == 8 and prep.images
    same = read_inputs(str(tmp_path / "train"), prep)  # a class tree: training's order and pixels
    np.testing.assert_array_equal(same.x[data.train_index], data.x_train)
    assert same.paths[:2] == ["cat/0.png", "cat/1.png"]
    # unlabeled, any size, grayscale: resized and converted, with a note
    _png(tmp_path / "new" / "b.png", rng.integers(0, 255, (20, 30), dtype=np.uint8))
    _png(tmp_path / "new" / "a.png", rng.integers(0, 255, (5, 5, 3), dtype=np.uint8))
    _png(tmp_path / "new" / "more" / "c.png", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    new = read_inputs(str(tmp_path / "new"), prep)
    assert new.x.shape == (3, 3, 8, 8) and new.paths == ["a.png", "b.png", "more/c.png"]
    assert new.notes == ["1 grayscale image(s) converted to colour: the model takes 3 channel(s)"]
    assert np.array_equal(new.x[1, 0], new.x[1, 2])  # gray copied into every channel
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no images"):
        read_inputs(str(tmp_path / "empty"), prep)
    with pytest.raises(UserError, match=r"samples of shape \(1, 8, 8\)"):
        array_inputs(np.zeros((2, 1, 8, 8)), prep, "the array")
    assert image_paths(str(tmp_path / "train"))[-1].endswith("dog/5.png")


def test_builtin_data_is_read_with_the_models_options():
    data = load_data(DataSpec(source="digits"))
    inputs = read_inputs("digits", data.preprocessing, data.spec)
    np.testing.assert_array_equal(inputs.x[data.train_index], data.x_train)
    table_model = Preprocessing("csv", (2,), columns=(Column("a"), Column("b")), label_column="label")
    with pytest.raises(UserError, match="give a CSV or parquet file"):
        read_inputs("digits", table_model)


@pytest.mark.parametrize("bad", [
    {"source": "csv"},
    {"source": "npz", "input_shape": [3], "mean": [0.0], "std": [1.0]},
    {"source": "csv", "input_shape": [2], "columns": [{"name": "a", "categories": None}]},
    {"source": "npz", "input_shape": "x"},
    {"source": "npz", "input_shape": [0]},
    {"source": "npz", "input_shape": [2], "mean": [0.0, float("nan")], "std": [1.0, 1.0]},
    {"source": "npz", "input_shape": [2], "mean": [0.0, 0.0], "std": [1.0, 0.0]},
    {"source": "npz", "input_shape": [2], "mean": [0.0, 0.0]},
    {"source": "npz", "input_shape": [1, 8, 8], "mean": [0.0], "std": [1.0]},
    {"source": "folder", "input_shape": [3, 8, 8], "image_size": 16},
    {"source": "folder", "input_shape": [3, 8, 8], "scale": {"divide_by": -1, "range": [0, 255]}},
    {"source": "folder", "input_shape": [3, 8, 8], "scale": {"divide_by": 255, "range": [255, 0]}},
    {"source": "csv", "input_shape": [2], "columns": [{"name": "a"}, {"name": "a"}]},
    {"source": "csv", "input_shape": [1], "columns": [{"name": "a"}], "impute": "median"},
    {"source": "csv", "input_shape": [1], "columns": [{"name": "a", "fill": 1.0}], "impute": "mode"},
    {"source": "csv", "input_shape": [2], "columns": [{"name": "a", "categories": ["b", "a"]}]},
])
def test_malformed_preprocessing_is_a_user_error(bad):
    with pytest.raises(UserError, match="malformed preprocessing"):
        Preprocessing.from_dict(bad)


def test_a_card_without_a_scale_gets_the_one_its_source_kind_applied():
    """Model cards of format 1 recorded no scale: each source kind's own (arrays: uint8 only, as then)."""
    from automl_noisy.data.preprocessing import DIGITS_SCALE, PIXEL_SCALE

    digits = Preprocessing.from_dict({"source": "digits", "input_shape": [1, 8, 8]})
    assert digits.scale == DIGITS_SCALE
    assert Preprocessing.from_dict({"source": "folder", "input_shape": [3, 8, 8], "image_size": 8}).scale == PIXEL_SCALE
    arrays = Preprocessing.from_dict({"source": "npz", "input_shape": [1, 8, 8]})
    pixels = np.full((2, 1, 8, 8), 255, dtype=np.uint8)
    assert array_inputs(pixels, arrays, "a").x.max() == 1.0  # uint8: divided by 255
    assert array_inputs(pixels.astype(np.float32), arrays, "a").x.max() == 255.0  # other numbers: as they are
    assert Preprocessing.from_dict({"source": "csv", "input_shape": [1], "columns": [{"name": "a"}]}).scale is None
    assert Preprocessing.from_dict(digits.to_dict()) == digits  # format 2 records it
