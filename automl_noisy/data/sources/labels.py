"""Label files (``--labels FILE[:KEY]``): real noisy labels that replace a source's labels.

A label file holds one class id (``0..K-1``, in the order of the source's class names) or one class
name per sample of the source, in the source's sample order. The source's own labels are kept as
the clean labels: the file's labels become the training and validation labels (so the realized
noise rate is known), the test labels stay the source's. For a source with its own train/test split
(a torchvision root) a file may instead hold one label per *training* image, as CIFAR-10N and
CIFAR-100N do; the pool is then those training images only (the test images have no noisy label),
and the stratified splits apply to them.

Formats, none of which unpickles arbitrary objects:

- ``.pt``/``.pth``: ``torch.load(..., weights_only=True)`` with numpy arrays allowed, a tensor,
  an array or a list, or a dict of them (CIFAR-N: ``aggre_label``, ``worse_label``,
  ``random_label1``, ``noisy_label``, ...) from which ``:KEY`` picks one;
- ``.npy``: ``numpy.load(..., allow_pickle=False)``; ``.npz``: an archive from which ``:KEY`` picks one.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import numpy as np

from automl_noisy.data.sources.base import RawData, first_line, regular_file
from automl_noisy.errors import UserError

SUFFIXES = (".pt", ".pth", ".npy", ".npz")


def parse_labels_option(text: Any) -> tuple[str, str | None]:
    """``FILE[:KEY]`` -> ``(FILE, KEY or None)``."""
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"option labels (--labels) must be FILE[:KEY], got {text!r}")
    path, sep, key = text.strip().rpartition(":")
    if sep and path.lower().endswith(SUFFIXES) and key and not any(c in key for c in "/\\"):
        return path, key
    return text.strip(), None


def _torch_load(path: str) -> Any:
    import pickle

    import torch

    from automl_noisy.data.sources.cifar import _array_globals

    # numpy arrays, allowed under the names old and new numpy versions pickle them by; building an
    # array also builds its dtype, an instance of one of numpy.dtypes' classes
    allowed: list[Any] = list({id(v): v for v in _array_globals().values()}.values())
    allowed += [(v, f"{m}.{n}") for (m, n), v in _array_globals().items() if m.startswith("numpy")]
    allowed += [v for v in vars(np.dtypes).values() if isinstance(v, type) and issubclass(v, np.dtype)]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" in str(exc).lower() or "unsupported global" in str(exc).lower():
            raise UserError(f"label file {path} holds Python objects that need full pickle to load; "
                            f"automl-noisy loads .pt files with weights_only=True only: save the labels "
                            f"as a tensor, a numpy array or a dict of them") from None
        raise UserError(f"cannot read label file {path}: {first_line(exc)}") from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise UserError(f"cannot read label file {path}: {first_line(exc)}") from None


def read_label_file(path: str, key: str | None) -> tuple[np.ndarray, dict[str, Any]]:
    """The chosen label array of a label file, and every array it holds by key."""
    import zipfile

    regular_file(path, "label file", "give a .pt, .npy or .npz file")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise UserError(f"label file {path} must end in {', '.join(SUFFIXES)}")
    if suffix in (".pt", ".pth"):
        content = _torch_load(path)
    else:
        try:
            loaded = np.load(path, allow_pickle=False)
            content = dict(loaded.items()) if isinstance(loaded, np.lib.npyio.NpzFile) else loaded
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise UserError(f"cannot read label file {path}: {first_line(exc)} (arrays of Python objects "
                            f"are never loaded)") from None
    if isinstance(content, dict):
        keys = [str(k) for k in content]
        if key is None:
            if len(content) != 1:
                raise UserError(f"label file {path} holds several arrays; choose one with --labels {path}:KEY; "
                                f"keys: {', '.join(keys)}")
            key = keys[0]
        if key not in keys:
            raise UserError(f"label file {path} has no key {key!r}; its keys: {', '.join(keys)}")
        arrays = {str(k): v for k, v in content.items()}
        return _as_array(arrays[key], f"{path}:{key}"), arrays
    if key is not None:
        raise UserError(f"label file {path} holds a single array, not a dict; drop :{key} from --labels")
    return _as_array(content, path), {}


def _as_array(value: Any, where: str) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise UserError(f"labels in {where} are not an array: {first_line(exc)}") from None
    if array.ndim == 2 and 1 in array.shape:
        array = array.reshape(-1)
    if array.ndim != 1 or array.dtype.kind not in "biufUS":
        raise UserError(f"labels in {where} must be one class id or name per sample, a 1-D array; "
                        f"got shape {array.shape} of {array.dtype}")
    return array


def _class_ids(labels: np.ndarray, class_names: tuple[str, ...], where: str) -> np.ndarray:
    k = len(class_names)
    if labels.dtype.kind in "US":
        index = {name: i for i, name in enumerate(class_names)}
        text = labels.astype(str)
        unknown = sorted(str(t) for t in set(text) - set(index))
        if unknown:
            raise UserError(f"labels in {where} name unknown class(es) {', '.join(map(repr, unknown[:5]))}; "
                            f"classes: {', '.join(class_names)}")
        return np.array([index[t] for t in text], dtype=np.int64)
    if labels.dtype.kind == "f" and not (np.isfinite(labels).all() and np.all(np.mod(labels, 1) == 0)):
        raise UserError(f"labels in {where} must be whole class ids, found non-integer values")
    ids = labels.astype(np.int64)
    outside = np.flatnonzero((ids < 0) | (ids >= k))
    if outside.size:
        raise UserError(f"labels in {where} are out of range: {outside.size} outside 0..{k - 1} (e.g. "
                        f"{ids[outside[0]]} at position {outside[0]}); the data has {k} classes")
    return ids


def apply_label_file(raw: RawData, text: Any, source: str) -> RawData:
    """``raw`` with the label file's labels as ``given_labels`` (see the module docstring)."""
    path, key = parse_labels_option(text)
    labels, arrays = read_label_file(path, key)
    where = f"{path}:{key}" if key else path
    n = len(raw.y)
    if len(labels) == n:
        rows = slice(None)
    elif raw.original_train is not None and len(labels) == raw.original_train:
        rows = slice(0, raw.original_train)
    else:
        train = f" ({raw.original_train} in its training set)" if raw.original_train is not None else ""
        raise UserError(f"label file {where} has {len(labels)} labels but {source} has {n} samples{train}; "
                        f"give one label per sample, in the source's order")
    clean = raw.y[rows]
    given = _class_ids(labels, raw.class_names, where)
    reference = arrays.get("clean_label")
    if reference is not None and key != "clean_label" and np.shape(reference) == given.shape:
        if not np.array_equal(_class_ids(_as_array(reference, path), raw.class_names, path), clean):
            raise UserError(f"the clean_label array of {path} differs from the labels of {source}: the file "
                            f"belongs to other data or another sample order")
    return replace(raw, x=raw.x[rows], y=clean, given_labels=given, labels_trusted=True,
                   original_train=None if rows != slice(None) else raw.original_train)
