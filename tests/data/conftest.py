"""Fixtures for the data tests: small files written to tmp_path, and a UserError checker."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl_noisy.errors import UserError


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., str]:
    """Write a DataFrame (or a dict of columns) to a CSV file and return ``csv:PATH``."""

    def write(columns: dict | pd.DataFrame, name: str = "data.csv") -> str:
        path = tmp_path / name
        pd.DataFrame(columns).to_csv(path, index=False)
        return f"csv:{path}"

    return write


@pytest.fixture
def write_npz(tmp_path: Path) -> Callable[..., str]:
    """Write arrays to an .npz file and return ``npz:PATH``."""

    def write(name: str = "data.npz", **arrays: np.ndarray) -> str:
        path = tmp_path / name
        np.savez(path, **arrays)
        return f"npz:{path}"

    return write


@pytest.fixture
def raises_user_error() -> Callable[..., object]:
    """``with raises_user_error("label", "--label-column"):`` asserts a one-line UserError whose
    message contains every given fragment."""

    class Check:
        def __init__(self, fragments: tuple[str, ...]) -> None:
            self.fragments = fragments
            self.inner = pytest.raises(UserError)

        def __enter__(self):
            self.info = self.inner.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self.inner.__exit__(*exc)
            message = str(self.info.value)
            assert "\n" not in message, message
            for fragment in self.fragments:
                assert re.search(re.escape(fragment), message), f"{fragment!r} not in {message!r}"
            return suppressed

    return lambda *fragments: Check(fragments)


@pytest.fixture
def blobs() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """``blobs(n_per_class, classes, features)``: separable Gaussian blobs, ``n_per_class`` rows per
    label in ``classes``, shifted by the class position."""

    def make(n_per_class: int = 20, classes: tuple = (0, 1, 2), features: int = 3,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        y = np.repeat(np.array(classes), n_per_class)
        codes = np.repeat(np.arange(len(classes)), n_per_class)
        x = rng.normal(size=(len(y), features)) + 3.0 * codes[:, None]
        return x, y

    return make


@pytest.fixture
def image_folder(tmp_path: Path) -> Callable[..., Path]:
    """``image_folder({"cat": 4, "dog": 3}, gray=("cat",))`` writes PNGs (sizes varying from 5x7 to
    12x9) into ``tmp_path/images/<class>/`` and returns the folder; classes named in ``gray`` get
    grayscale images. Class ``k``'s pixels are brighter with ``k``, so the classes are learnable."""
    from PIL import Image

    def write(counts: dict[str, int], gray: tuple[str, ...] = (), name: str = "images") -> Path:
        root = tmp_path / name
        rng = np.random.default_rng(0)
        for k, (label, n) in enumerate(counts.items()):
            (root / label).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                size = (5 + (i * 3) % 8, 7 + i % 3)
                base = 40 + 60 * k
                if label in gray:
                    pixels = rng.integers(base, base + 40, size=(size[1], size[0]), dtype=np.uint8)
                    Image.fromarray(pixels, "L").save(root / label / f"{i:03d}.png")
                else:
                    pixels = rng.integers(base, base + 40, size=(size[1], size[0], 3), dtype=np.uint8)
                    Image.fromarray(pixels, "RGB").save(root / label / f"{i:03d}.png")
        return root

    return write


def _pickle(path: Path, obj: object) -> None:
    import pickle

    path.write_bytes(pickle.dumps(obj, protocol=2))  # the protocol of the CIFAR python files


@pytest.fixture
def cifar_root(tmp_path: Path) -> Callable[..., Path]:
    """``cifar_root("CIFAR10", n_train, n_test)`` writes a CIFAR-10 (``cifar-10-batches-py/``) or
    CIFAR-100 (``cifar-100-python/``) root in the datasets' own format: pickled dicts of uint8
    ``data`` (n, 3072) and labels (class ``i % K`` for image ``i``). Returns the root."""

    def write(name: str = "CIFAR10", n_train: int = 150, n_test: int = 30) -> Path:
        root = tmp_path / f"tv-{name}"
        k = 10 if name == "CIFAR10" else 100
        rng = np.random.default_rng(1)

        def batch(start: int, n: int, key: str, extra: dict) -> dict:
            labels = [(start + i) % k for i in range(n)]
            data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
            data[:, :1024] = (np.array(labels) * 255 // k)[:, None]  # the red channel tells the class
            return {"data": data, key: labels, "filenames": [f"img_{start + i}.png" for i in range(n)], **extra}

        if name == "CIFAR10":
            folder = root / "cifar-10-batches-py"
            folder.mkdir(parents=True)
            sizes = [n_train // 5 + (1 if i < n_train % 5 else 0) for i in range(5)]
            start = 0
            for i, n in enumerate(sizes, 1):
                label = {"batch_label": f"training batch {i} of 5"}
                _pickle(folder / f"data_batch_{i}", batch(start, n, "labels", label))
                start += n
            _pickle(folder / "test_batch", batch(start, n_test, "labels", {"batch_label": "testing batch 1 of 1"}))
            _pickle(folder / "batches.meta", {"label_names": [f"class{c}" for c in range(k)],
                                              "num_cases_per_batch": n_train // 5, "num_vis": 3072})
        else:
            folder = root / "cifar-100-python"
            folder.mkdir(parents=True)
            coarse = {"coarse_labels": [0] * n_train}
            _pickle(folder / "train", batch(0, n_train, "fine_labels", {**coarse, "batch_label": "training"}))
            _pickle(folder / "test", batch(n_train, n_test, "fine_labels", {"coarse_labels": [0] * n_test}))
            _pickle(folder / "meta", {"fine_label_names": [f"fine{c}" for c in range(k)],
                                      "coarse_label_names": [f"coarse{c}" for c in range(20)]})
        return root

    return write


@pytest.fixture
def mnist_root(tmp_path: Path) -> Callable[..., Path]:
    """``mnist_root("MNIST", n_train, n_test)`` writes ``ROOT/<name>/raw/`` with the four idx ubyte
    files torchvision reads (28x28 uint8 images, label ``i % 10`` for image ``i``). Returns ROOT."""
    import struct

    def write(name: str = "MNIST", n_train: int = 130, n_test: int = 30) -> Path:
        root = tmp_path / f"tv-{name}"
        raw = root / name / "raw"
        raw.mkdir(parents=True)
        rng = np.random.default_rng(2)
        start = 0
        for prefix, n in (("train", n_train), ("t10k", n_test)):
            labels = np.array([(start + i) % 10 for i in range(n)], dtype=np.uint8)
            images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
            (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes())
            (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())
            start += n
        return root

    return write
