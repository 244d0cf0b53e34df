"""CIFAR-10 and CIFAR-100 as their "python version" folders hold them, read without running code.

The batches (``cifar-10-batches-py/data_batch_1..5``, ``test_batch``, ``batches.meta``;
``cifar-100-python/train``, ``test``, ``meta``) are Python pickles. torchvision's ``CIFAR10`` reads
them with an unrestricted ``pickle.load`` and refuses any file whose md5 is not the official one.
Here they are read with :class:`ArrayUnpickler`, which builds dicts, lists, strings, numbers and
numpy arrays and nothing else (the approach of the pickle documentation's "Restricting Globals"),
so a crafted file can not run code; the md5 is not checked, as nothing is downloaded and a file that
is not a CIFAR batch fails the shape checks below with an error naming it.
"""

from __future__ import annotations

import codecs
import os
import pickle
from typing import Any

import numpy as np

from automl_noisy.data.preprocessing import PIXEL_SCALE
from automl_noisy.data.sources.base import RawData, first_line
from automl_noisy.errors import UserError

#: name -> (folder, training files, test files, meta file, class-names key, labels key)
LAYOUTS = {
    "CIFAR10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
                "batches.meta", "label_names", "labels"),
    "CIFAR100": ("cifar-100-python", ["train"], ["test"], "meta", "fine_label_names", "fine_labels"),
}


def _array_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1
        from numpy.core import multiarray
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                           ("_codecs", "encode"): codecs.encode}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    return allowed


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds plain containers and numpy arrays only; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = _array_globals()
        if (module, name) in allowed:
            return allowed[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are read")


def read_pickle(path: str) -> Any:
    """A CIFAR pickle read with :class:`ArrayUnpickler` (Python 2 strings decoded as latin-1)."""
    try:
        with open(path, "rb") as f:
            return ArrayUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, ImportError) as exc:
        raise UserError(f"cannot read {path}: {first_line(exc)}; it is not a CIFAR batch file "
                        f"(only numpy arrays, lists, strings and numbers are read)") from None


def _batch(path: str, labels_key: str) -> tuple[np.ndarray, np.ndarray]:
    entry = read_pickle(path)
    data = entry.get("data") if isinstance(entry, dict) else None
    labels = entry.get(labels_key) if isinstance(entry, dict) else None
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels is None \
            or len(labels) != len(data):
        raise UserError(f"{path} is not a CIFAR batch: expected a dict with 'data' of shape (n, 3072) "
                        f"and {labels_key!r} with n labels")
    return data.astype(np.uint8).reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64).reshape(-1)


def read_cifar(name: str, root: str) -> RawData:
    """CIFAR-10 or CIFAR-100 (fine labels) under ``root``: the training images, then the test images."""
    folder, train_files, test_files, meta_file, names_key, labels_key = LAYOUTS[name]
    where = os.path.join(root, folder)
    never = "download and extract it yourself; automl-noisy never downloads"
    if not os.path.isdir(where):
        raise UserError(f"{name} not found under {root}: expected {where} ({never})")
    missing = [f for f in (*train_files, *test_files, meta_file) if not os.path.isfile(os.path.join(where, f))]
    if missing:
        raise UserError(f"{name} is incomplete under {root}: {where} lacks {', '.join(missing)} ({never})")
    meta = read_pickle(os.path.join(where, meta_file))
    class_names = meta.get(names_key) if isinstance(meta, dict) else None
    if not isinstance(class_names, list) or not all(isinstance(c, str) for c in class_names):
        raise UserError(f"{os.path.join(where, meta_file)} is not a CIFAR meta file: it lacks {names_key!r}")
    train = [_batch(os.path.join(where, f), labels_key) for f in train_files]
    test = [_batch(os.path.join(where, f), labels_key) for f in test_files]
    x = np.concatenate([b[0] for b in train + test])
    y = np.concatenate([b[1] for b in train + test])
    if y.size and (y.min() < 0 or y.max() >= len(class_names)):
        raise UserError(f"{name} under {root} has labels outside 0..{len(class_names) - 1}, the classes of "
                        f"{meta_file}")
    n_train = sum(len(b[1]) for b in train)
    return RawData(PIXEL_SCALE.apply(x), y, tuple(class_names), True, original_train=n_train, scale=PIXEL_SCALE)
