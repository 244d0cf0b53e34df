"""Label files (--labels): real noisy labels replace the source's, which become the clean ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automl_noisy.data import DataSpec, load_data
from automl_noisy.data.sources import load_source
from automl_noisy.data.sources.labels import parse_labels_option


def _cifar_n(path, clean: np.ndarray, rate: float = 0.3) -> dict:
    """A CIFAR-10N-like dict of numpy arrays, saved with torch.save."""
    rng = np.random.default_rng(0)
    noisy = {}
    for key, r in (("aggre_label", rate / 3), ("worse_label", rate), ("random_label1", rate / 2)):
        flip = rng.random(len(clean)) < r
        noisy[key] = np.where(flip, (clean + 1) % 10, clean).astype(np.int64)
    content = {"clean_label": clean.astype(np.int64), **noisy}
    torch.save(content, path)
    return content


def test_cifar_n_labels_cover_the_training_images(cifar_root, tmp_path):
    root = cifar_root("CIFAR10", n_train=150, n_test=30)
    content = _cifar_n(tmp_path / "CIFAR-10_human.pt", np.arange(150) % 10)
    labels = f"{tmp_path}/CIFAR-10_human.pt:worse_label"
    spec = DataSpec(source=f"torchvision:CIFAR10:{root}", options={"labels": labels})
    data = load_data(spec)
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 150  # the pool: training images only
    worse = content["worse_label"]
    np.testing.assert_array_equal(data.y_train, worse[data.train_index])
    np.testing.assert_array_equal(data.y_train_clean, (np.arange(150) % 10)[data.train_index])
    assert data.clean_labels_known
    assert data.noise_rate == pytest.approx(np.mean(worse[data.train_index] != data.y_train_clean))
    assert data.noise_rate > 0.1 and (data.y_val != data.y_val_clean).any()
    assert "labels " in data.summary() and "realized" in data.summary()
    raw = load_source(spec)
    source_label = {row.tobytes(): label for row, label in zip(raw.x, raw.y)}
    assert [source_label[row.tobytes()] for row in data.x_test] == data.y_test.tolist()  # test labels: the source's
    aggre = load_data(DataSpec(source=spec.source, options={"labels": f"{tmp_path}/CIFAR-10_human.pt:aggre_label"}))
    plain = load_data(DataSpec(source=spec.source))
    assert len({data.fingerprint, aggre.fingerprint, plain.fingerprint}) == 3
    assert plain.num_classes == 10 and len(plain.y_test) == 36  # without labels the pool is train + test


def test_npy_labels_for_every_sample(write_csv, blobs, tmp_path):
    x, y = blobs(n_per_class=20)
    source = write_csv({"a": x[:, 0], "b": x[:, 1], "label": y})
    noisy = y.copy()
    noisy[:6] = (y[:6] + 1) % 3
    np.save(tmp_path / "noisy.npy", noisy)
    data = load_data(DataSpec(source=source, options={"labels": str(tmp_path / "noisy.npy")}))
    np.testing.assert_array_equal(data.y_train, noisy[data.train_index])
    np.testing.assert_array_equal(data.y_train_clean, y[data.train_index])
    assert data.clean_labels_known


def test_noise_on_top_of_given_labels(write_csv, blobs, tmp_path):
    x, y = blobs(n_per_class=30)
    source = write_csv({"a": x[:, 0], "label": y})
    np.save(tmp_path / "same.npy", y)
    data = load_data(DataSpec(source=source, noise="symmetric:0.3", options={"labels": str(tmp_path / "same.npy")}))
    assert data.noise_rate == pytest.approx(0.3, abs=0.02)


def test_label_names_npz_and_tensor_pt(image_folder, tmp_path):
    root = image_folder({"cat": 4, "dog": 4})
    names = np.array(["dog", "cat"] * 4)
    np.savez(tmp_path / "names.npz", mine=names, other=np.zeros(8))
    raw = load_source(DataSpec(source=f"folder:{root}", options={"labels": f"{tmp_path}/names.npz:mine"}))
    np.testing.assert_array_equal(raw.given_labels, [1, 0] * 4)
    torch.save(torch.tensor([1, 0] * 4), tmp_path / "plain.pt")
    raw = load_source(DataSpec(source=f"folder:{root}", options={"labels": str(tmp_path / "plain.pt")}))
    np.testing.assert_array_equal(raw.given_labels, [1, 0] * 4)


def test_parse_labels_option():
    assert parse_labels_option("a/b.pt:aggre_label") == ("a/b.pt", "aggre_label")
    assert parse_labels_option("a/b.npy") == ("a/b.npy", None)
    assert parse_labels_option("C:/x/b.pt") == ("C:/x/b.pt", None)


# --- user errors -------------------------------------------------------------------------------


@pytest.fixture
def cifar_with_labels(cifar_root, tmp_path):
    root = cifar_root("CIFAR10", n_train=150, n_test=30)
    _cifar_n(tmp_path / "n.pt", np.arange(150) % 10)
    return f"torchvision:CIFAR10:{root}", str(tmp_path / "n.pt")


def test_missing_key_lists_the_keys(raises_user_error, cifar_with_labels):
    source, path = cifar_with_labels
    with raises_user_error("has no key 'worst_label'", "its keys: clean_label, aggre_label, worse_label"):
        load_source(DataSpec(source=source, options={"labels": f"{path}:worst_label"}))
    with raises_user_error("holds several arrays", "--labels", "worse_label"):
        load_source(DataSpec(source=source, options={"labels": path}))


def test_length_mismatch(raises_user_error, cifar_root, tmp_path):
    root = cifar_root("CIFAR10", n_train=150, n_test=30)
    np.save(tmp_path / "short.npy", np.zeros(100, dtype=np.int64))
    with raises_user_error("has 100 labels", "has 180 samples (150 in its training set)"):
        load_source(DataSpec(source=f"torchvision:CIFAR10:{root}", options={"labels": str(tmp_path / "short.npy")}))


@pytest.mark.parametrize("labels, fragment", [
    (np.arange(16) % 2 + 1, "out of range: 8 outside 0..1 (e.g. 2 at position 1)"),
    (np.full(16, 0.5), "whole class ids"),
    (np.array(["cat", "bird"] * 8), "unknown class(es) 'bird'"),
    (np.zeros((16, 2)), "1-D array"),
])
def test_bad_label_values(raises_user_error, image_folder, tmp_path, labels, fragment):
    root = image_folder({"cat": 8, "dog": 8})
    np.save(tmp_path / "bad.npy", labels)
    with raises_user_error(fragment):
        load_source(DataSpec(source=f"folder:{root}", options={"labels": str(tmp_path / "bad.npy")}))


def test_pt_needing_full_pickle_is_refused(raises_user_error, image_folder, tmp_path):
    from fractions import Fraction

    root = image_folder({"cat": 4, "dog": 4})
    torch.save({"labels": [Fraction(1, 3)] * 8}, tmp_path / "objects.pt")
    with raises_user_error("need full pickle", "weights_only=True"):
        load_source(DataSpec(source=f"folder:{root}", options={"labels": str(tmp_path / "objects.pt")}))


def test_npy_of_objects_is_refused(raises_user_error, image_folder, tmp_path):
    root = image_folder({"cat": 4, "dog": 4})
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}] * 8, dtype=object), allow_pickle=True)
    with raises_user_error("cannot read label file", "never loaded"):
        load_source(DataSpec(source=f"folder:{root}", options={"labels": str(tmp_path / "objects.npy")}))


def test_clean_label_of_another_dataset(raises_user_error, cifar_root, tmp_path):
    root = cifar_root("CIFAR10", n_train=150, n_test=30)
    _cifar_n(tmp_path / "n.pt", (np.arange(150) + 1) % 10)
    with raises_user_error("clean_label", "differs from the labels"):
        load_source(DataSpec(source=f"torchvision:CIFAR10:{root}", options={"labels": f"{tmp_path}/n.pt:aggre_label"}))


@pytest.mark.parametrize("name, fragment", [("absent.npy", "label file not found"), ("labels.csv", "must end in")])
def test_label_file_path_problems(raises_user_error, image_folder, tmp_path, name, fragment):
    root = image_folder({"cat": 4, "dog": 4})
    (tmp_path / "labels.csv").write_text("0\n1\n")
    with raises_user_error(fragment):
        load_source(DataSpec(source=f"folder:{root}", options={"labels": str(tmp_path / name)}))
