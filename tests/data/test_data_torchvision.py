"""torchvision roots: fake roots in the datasets' own on-disk formats, one pool, no downloads."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from automl_noisy.data import DataSpec, load_data
from automl_noisy.data.sources import load_source


def test_cifar10_pool_is_train_then_test(cifar_root):
    root = cifar_root("CIFAR10", n_train=150, n_test=30)
    raw = load_source(DataSpec(source=f"torchvision:CIFAR10:{root}"))
    assert raw.x.shape == (180, 3, 32, 32) and raw.x.dtype == np.float32
    assert 0.0 <= raw.x.min() and raw.x.max() <= 1.0
    np.testing.assert_array_equal(raw.y, np.arange(180) % 10)
    assert raw.class_names == tuple(f"class{c}" for c in range(10))
    assert raw.labels_trusted and raw.original_train == 150
    np.testing.assert_allclose(raw.x[:, 0, 0, 0], (raw.y * 255 // 10) / 255.0, rtol=1e-6)


def test_cifar10_load_data_uses_our_splits(cifar_root):
    root = cifar_root("CIFAR10", n_train=150, n_test=30)
    data = load_data(DataSpec(source=f"torchvision:cifar10:{root}", noise="symmetric:0.2", test_fraction=0.2))
    assert len(data.y_test) == 36 and data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert data.clean_labels_known and data.noise_rate == pytest.approx(0.2, abs=0.02)


def test_cifar100_fine_labels(cifar_root):
    root = cifar_root("CIFAR100", n_train=300, n_test=100)
    raw = load_source(DataSpec(source=f"torchvision:CIFAR100:{root}"))
    assert raw.x.shape == (400, 3, 32, 32) and len(raw.class_names) == 100 and raw.class_names[7] == "fine7"
    np.testing.assert_array_equal(raw.y, np.arange(400) % 100)
    assert raw.original_train == 300


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST"])
def test_mnist_family_through_torchvision(mnist_root, name):
    root = mnist_root(name, n_train=130, n_test=30)
    raw = load_source(DataSpec(source=f"torchvision:{name}:{root}"))
    assert raw.x.shape == (160, 1, 28, 28) and raw.x.dtype == np.float32 and raw.x.max() <= 1.0
    np.testing.assert_array_equal(raw.y, np.arange(160) % 10)
    assert len(raw.class_names) == 10 and raw.original_train == 130 and raw.labels_trusted
    assert (raw.class_names[0] == "T-shirt/top") == (name == "FashionMNIST")
    data = load_data(DataSpec(source=f"torchvision:{name}:{root}"))
    assert data.input_shape == (1, 28, 28)


def test_cifar_pickles_cannot_run_code(raises_user_error, cifar_root, tmp_path):
    """The batches are read by a restricted unpickler: a global other than numpy's array
    reconstruction is refused before it can run."""
    root = cifar_root("CIFAR10")
    target = tmp_path / "was-run"

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(target),)

    (root / "cifar-10-batches-py" / "data_batch_2").write_bytes(pickle.dumps({"data": Payload()}, protocol=2))
    with raises_user_error("data_batch_2", "refusing to load posix.mkdir"):
        load_source(DataSpec(source=f"torchvision:CIFAR10:{root}"))
    assert not target.exists()


# --- user errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, expected", [
    ("CIFAR10", "expected {root}/cifar-10-batches-py"),
    ("CIFAR100", "expected {root}/cifar-100-python"),
    ("MNIST", "expected {root}/MNIST/raw with train-images-idx3-ubyte"),
    ("FashionMNIST", "expected {root}/FashionMNIST/raw"),
])
def test_missing_files_say_where_they_are_expected(raises_user_error, tmp_path, name, expected):
    with raises_user_error(f"{name} not found under {tmp_path}", expected.format(root=tmp_path), "never downloads"):
        load_source(DataSpec(source=f"torchvision:{name}:{tmp_path}"))


def test_incomplete_cifar(raises_user_error, cifar_root):
    root = cifar_root("CIFAR10")
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with raises_user_error("CIFAR10 is incomplete", "lacks data_batch_3"):
        load_source(DataSpec(source=f"torchvision:CIFAR10:{root}"))


def test_gzipped_mnist_asks_to_extract(raises_user_error, mnist_root):
    import gzip

    root = mnist_root("MNIST")
    for path in (root / "MNIST" / "raw").iterdir():
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    with raises_user_error("train-images-idx3-ubyte.gz", "gunzip"):
        load_source(DataSpec(source=f"torchvision:MNIST:{root}"))


def test_damaged_idx_file(raises_user_error, mnist_root):
    root = mnist_root("MNIST")
    (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x07garbage")
    with raises_user_error("cannot read MNIST under"):
        load_source(DataSpec(source=f"torchvision:MNIST:{root}"))


def test_not_a_cifar_batch(raises_user_error, cifar_root):
    root = cifar_root("CIFAR10")
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({"data": [1, 2]}, protocol=2))
    with raises_user_error("test_batch is not a CIFAR batch"):
        load_source(DataSpec(source=f"torchvision:CIFAR10:{root}"))


@pytest.mark.parametrize("source, fragment", [
    ("torchvision:", "needs NAME:ROOT"),
    ("torchvision:CIFAR10", "needs NAME:ROOT"),
    ("torchvision:SVHN:{tmp}", "unknown torchvision dataset 'SVHN'; choose one of: CIFAR10, CIFAR100, MNIST"),
    ("torchvision:MNIST:{tmp}/absent", "torchvision root not found"),
    ("mnist", "torchvision:MNIST:ROOT"),
])
def test_bad_torchvision_sources(raises_user_error, tmp_path, source, fragment):
    with raises_user_error(fragment):
        load_source(DataSpec(source=source.format(tmp=tmp_path)))
