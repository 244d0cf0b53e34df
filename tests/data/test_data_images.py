"""Image folders: ImageFolder's conventions, decoding at a chosen size, channels, and errors."""

from __future__ import annotations

import numpy as np
import pytest

from automl_noisy.data import DataSpec, load_data
from automl_noisy.data.sources import load_source


def test_folder_colour_and_gray_mixed_becomes_rgb(image_folder):
    root = image_folder({"dog": 4, "cat": 5, "bird": 3}, gray=("bird",))
    (root / "cat" / "notes.txt").write_text("not an image")
    raw = load_source(DataSpec(source=f"folder:{root}", options={"image_size": 8}))
    assert raw.class_names == ("bird", "cat", "dog")  # sorted sub-folder names
    assert raw.x.shape == (12, 3, 8, 8) and raw.x.dtype == np.float32
    assert 0.0 <= raw.x.min() and raw.x.max() <= 1.0
    np.testing.assert_array_equal(raw.y, [0] * 3 + [1] * 5 + [2] * 4)
    gray = raw.x[raw.y == 0]
    assert np.allclose(gray[:, 0], gray[:, 1]) and np.allclose(gray[:, 0], gray[:, 2])
    assert not raw.labels_trusted and not raw.standardize


def test_folder_all_gray_keeps_one_channel_default_size(image_folder):
    root = image_folder({"a": 3, "b": 3}, gray=("a", "b"))
    raw = load_source(DataSpec(source=f"folder:{root}"))
    assert raw.x.shape == (6, 1, 32, 32)


def test_folder_conventions(image_folder):
    """Extensions in any case, images in nested folders, hidden folders skipped, jpeg read."""
    from PIL import Image

    root = image_folder({"a": 3, "b": 3})
    (root / "a" / "000.png").rename(root / "a" / "000.PNG")
    (root / "b" / "deeper").mkdir()
    Image.new("RGB", (6, 6), (200, 10, 10)).save(root / "b" / "deeper" / "x.jpg")
    (root / ".cache").mkdir()
    (root / ".cache" / "junk.png").write_bytes(b"junk")
    raw = load_source(DataSpec(source=str(root), options={"image_size": 4}))  # a bare folder path
    assert raw.class_names == ("a", "b") and np.bincount(raw.y).tolist() == [3, 4]


def test_folder_load_data_and_label_index(image_folder):
    root = image_folder({"a": 10, "b": 10, "c": 10})
    data = load_data(DataSpec(source=f"folder:{root}", noise="symmetric:0.2", options={"image_size": 6}))
    assert data.input_shape == (3, 6, 6) and data.num_classes == 3
    assert data.x_train.min() >= 0 and data.x_train.max() <= 1  # images are not standardized
    assert data.noise_rate == pytest.approx(0.2, abs=0.05)


def test_folder_image_size_changes_fingerprint(image_folder):
    root = image_folder({"a": 12, "b": 12})
    small = load_data(DataSpec(source=f"folder:{root}", options={"image_size": 4}))
    large = load_data(DataSpec(source=f"folder:{root}", options={"image_size": 8}))
    assert small.fingerprint != large.fingerprint


# --- user errors -------------------------------------------------------------------------------


def test_empty_class_folder(raises_user_error, image_folder):
    root = image_folder({"a": 3, "b": 3})
    (root / "empty").mkdir()
    with raises_user_error(f"class folder {root / 'empty'} has no images", "png"):
        load_source(DataSpec(source=f"folder:{root}"))


def test_corrupt_image(raises_user_error, image_folder):
    root = image_folder({"a": 3, "b": 3})
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with raises_user_error(f"cannot read image file {root / 'b' / 'broken.png'}"):
        load_source(DataSpec(source=f"folder:{root}"))


def test_truncated_image(raises_user_error, image_folder):
    root = image_folder({"a": 3, "b": 3})
    path = root / "a" / "001.png"
    path.write_bytes(path.read_bytes()[:60])
    with raises_user_error(f"cannot read image file {path}"):
        load_source(DataSpec(source=f"folder:{root}"))


def test_no_class_folders(raises_user_error, tmp_path):
    (tmp_path / "loose.png").write_bytes(b"")
    with raises_user_error("has no class folders", "sub-folder"):
        load_source(DataSpec(source=f"folder:{tmp_path}"))


def test_single_class_folder(raises_user_error, image_folder):
    root = image_folder({"only": 4})
    with raises_user_error("single class folder 'only'", "at least two"):
        load_source(DataSpec(source=f"folder:{root}"))


@pytest.mark.parametrize("path, fragment", [("absent", "image folder not found"), ("file.png", "not a folder")])
def test_folder_path_problems(raises_user_error, tmp_path, path, fragment):
    (tmp_path / "file.png").write_bytes(b"")
    with raises_user_error(fragment):
        load_source(DataSpec(source=f"folder:{tmp_path / path}"))


@pytest.mark.parametrize("options, fragment", [
    ({"image_size": 1}, "image_size (--image-size) must be an integer >= 2"),
    ({"image_size": "big"}, "image_size"),
    ({"columns": ["a"]}, "columns (--features) do not apply to folder data"),
])
def test_folder_bad_options(raises_user_error, image_folder, options, fragment):
    root = image_folder({"a": 3, "b": 3})
    with raises_user_error(fragment):
        load_source(DataSpec(source=f"folder:{root}", options=options))
