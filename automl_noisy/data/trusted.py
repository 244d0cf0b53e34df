"""Trusted rows: rows whose labels a user vouches for (``--trusted FILE``), or, where the clean labels
are known, a stratified share of the training pool kept clean (``--trusted-fraction F``, for benchmarks).

A trusted row's training or validation label *is* its verified label: it replaces the noisy one. The
rows are data, like the labels: they are part of the dataset's fingerprint, and they never come from
the test split. Methods that need them (``needs_trusted``, e.g. ``glc``) read the training rows'
mask; those that need a trusted training row of every class (``needs_trusted_per_class``, ``glc``)
refuse a training split that lacks one (:func:`missing_classes`), and a search leaves them out. On
the trusted rows the noise is measured (the labels the data gave them against the verified ones,
see :mod:`automl_noisy.data.noise_profile`), and with enough of them validating, they rank the
search's trials (:attr:`automl_noisy.data.dataset.NoisyDataset.trusted_objective`).

A trusted file lists row ids (0-based, in the data's own row order: a CSV's data lines, an ``.npz``'s
``X``, an image folder's images by class folder then path; after a label file that keeps only a
torchvision root's training images, those images) with their verified labels:

- ``.csv`` with a header and the columns ``row`` and ``label``; a label is a class name, as the data
  names its classes, or else a class id ``0..K-1`` when the labels are not all class names;
- ``.npz`` with 1-D arrays ``row`` and ``label``: class ids (numbers) or class names (strings), as a
  label file holds them (:mod:`automl_noisy.data.sources.labels`); read with ``allow_pickle=False``;
- ``memory:KEY``, rows and class ids held by this process (:func:`automl_noisy.data.sources.memory.hold_trusted`,
  for :class:`automl_noisy.NoisyLabelSearch`).

>>> from automl_noisy.data import DataSpec, load_data
>>> data = load_data(DataSpec("synthetic", "symmetric:0.4", options={"samples": 300, "trusted_fraction": 0.1}))
>>> data.trusted_count, bool((data.y_train[data.trusted_train] == data.y_train_clean[data.trusted_train]).all())
(24, True)
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Sequence

import numpy as np

from automl_noisy.data.sources.base import first_line, regular_file
from automl_noisy.data.sources.labels import _as_array, _class_ids
from automl_noisy.errors import UserError

SUFFIXES = (".csv", ".npz")
NONE = -1  # a row with no trusted label
_TRUSTED_STREAM = 4  # load_data draws streams 0-2 of the spec's seed, the folds stream 3


def _read_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    import csv

    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, csv.Error) as exc:
        raise UserError(f"cannot read trusted file {path}: {first_line(exc)}") from None
    missing = [c for c in ("row", "label") if c not in frame.columns]
    if missing:
        raise UserError(f"trusted file {path} lacks the column(s) {', '.join(missing)}; it needs a header "
                        f"row,label; its columns: {', '.join(map(str, frame.columns))}")
    return frame["row"].str.strip().to_numpy(dtype=str), frame["label"].str.strip().to_numpy(dtype=str)


def _read_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files if k in ("row", "label")}
            keys = list(archive.files)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"cannot read trusted file {path}: {first_line(exc)} (arrays of Python objects are "
                        "never loaded)") from None
    missing = [k for k in ("row", "label") if k not in arrays]
    if missing:
        raise UserError(f"trusted file {path} lacks the array(s) {', '.join(missing)}; it needs arrays row and "
                        f"label; its arrays: {', '.join(keys) or 'none'}")
    return _as_array(arrays["row"], f"{path}:row"), _as_array(arrays["label"], f"{path}:label")


def _row_ids(rows: np.ndarray, n: int, where: str) -> np.ndarray:
    if rows.dtype.kind in "US":
        bad = [str(r) for r in rows.astype(str) if not re.fullmatch(r"\d+", str(r))]
        if bad:
            raise UserError(f"row ids in trusted file {where} must be whole numbers from 0, got {bad[0]!r}")
        rows = rows.astype(np.int64)
    elif rows.dtype.kind == "f" and not (np.isfinite(rows).all() and np.all(np.mod(rows, 1) == 0)):
        raise UserError(f"row ids in trusted file {where} must be whole numbers, found non-integer values")
    elif rows.dtype.kind not in "iuf":
        raise UserError(f"row ids in trusted file {where} must be whole numbers, got {rows.dtype}")
    ids = rows.astype(np.int64)
    unknown = np.flatnonzero((ids < 0) | (ids >= n))
    if unknown.size:
        raise UserError(f"trusted file {where} names unknown row id {ids[unknown[0]]}"
                        f"{f' (and {unknown.size - 1} more)' if unknown.size > 1 else ''}; the data has {n} rows, "
                        f"ids 0..{n - 1} in its own order")
    values, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        twice = values[counts > 1]
        raise UserError(f"trusted file {where} lists row {twice[0]} more than once"
                        f"{f' ({twice.size} rows are repeated)' if twice.size > 1 else ''}; give each row once")
    return ids


def _label_ids(labels: np.ndarray, class_names: tuple[str, ...], where: str) -> np.ndarray:
    """Class names as the data names its classes, or else (a CSV's text that is not all names) class ids."""
    if labels.dtype.kind in "US":
        text = labels.astype(str)
        if not set(text) <= set(class_names) and all(re.fullmatch(r"-?\d+", t) for t in text):
            return _class_ids(text.astype(np.int64), class_names, where)
    return _class_ids(labels, class_names, where)


def read_trusted(text: str, class_names: tuple[str, ...], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The row ids and class ids of a trusted file (see the module docstring), checked against data of
    ``n`` rows with ``class_names``."""
    if text.startswith("memory:"):
        from automl_noisy.data.sources.memory import held_trusted

        rows, labels = held_trusted(text)
    else:
        regular_file(text, "trusted file", "give a .csv or .npz file of row,label")
        suffix = os.path.splitext(text)[1].lower()
        if suffix not in SUFFIXES:
            raise UserError(f"trusted file {text} must end in .csv (columns row,label) or .npz (arrays row, label)")
        rows, labels = _read_csv(text) if suffix == ".csv" else _read_npz(text)
    if len(rows) != len(labels):
        raise UserError(f"trusted file {text} has {len(rows)} row ids but {len(labels)} labels; give one label per row")
    if len(rows) == 0:
        raise UserError(f"trusted file {text} lists no rows; give at least one row with its verified label")
    return _row_ids(rows, n, text), _label_ids(labels, class_names, text)


def refuse_test_rows(rows: np.ndarray, test: np.ndarray, where: str) -> None:
    """Trusted rows never come from the test split (held out only where clean labels are known)."""
    inside = rows[np.isin(rows, test)]
    if inside.size:
        raise UserError(f"trusted row {inside[0]} of {where}"
                        f"{f' (and {inside.size - 1} more)' if inside.size > 1 else ''} is in the test split, held "
                        "out here because the clean labels are known; trusted rows never come from the test split: "
                        "remove them from the file (or use --trusted-fraction, which draws from train and validation)")


def draw_trusted(pool: np.ndarray, y_clean: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """``round(fraction * len(pool))`` rows of ``pool``, stratified on their clean labels ``y_clean``
    so that every class has some, drawn with a stream of ``seed`` of their own."""
    from sklearn.model_selection import train_test_split

    count = int(round(fraction * len(pool)))
    present = len(np.unique(y_clean))
    if count < present:
        raise UserError(f"--trusted-fraction {fraction:g} keeps {count} of {len(pool)} training rows trusted, fewer "
                        f"than the {present} classes: each class needs a trusted row; raise it to at least "
                        f"{present / len(pool):.3g}")
    if len(pool) - count < present:
        raise UserError(f"--trusted-fraction {fraction:g} would trust nearly all {len(pool)} training rows; lower it")
    random_state = int(np.random.SeedSequence(seed, spawn_key=(_TRUSTED_STREAM,)).generate_state(1)[0])
    try:
        _, chosen = train_test_split(pool, test_size=count, stratify=y_clean, random_state=random_state)
    except ValueError as exc:
        raise UserError(f"cannot draw a stratified --trusted-fraction {fraction:g}: {first_line(exc)}") from None
    return np.sort(chosen)


def missing_classes(labels: np.ndarray, trusted: np.ndarray | None, num_classes: int) -> tuple[int, ...]:
    """The classes ``0..num_classes-1`` that no trusted row (``trusted``, a mask over ``labels``) has.

    >>> missing_classes(np.array([0, 1, 2, 1]), np.array([True, False, False, True]), 3)
    (2,)
    """
    present = set() if trusted is None else set(np.unique(labels[trusted]).tolist())
    return tuple(c for c in range(num_classes) if c not in present)


def classes_text(names: Sequence[str], shown: int = 5) -> str:
    """``class 'b'`` or ``classes 'a', 'b'``, the first ``shown`` of them named.

    >>> classes_text(["a", "b"]), classes_text(list("abcdefg"))
    ("classes 'a', 'b'", "classes 'a', 'b', 'c', 'd', 'e' (and 2 more)")
    """
    more = f" (and {len(names) - shown} more)" if len(names) > shown else ""
    return f"class{'es' if len(names) > 1 else ''} {', '.join(repr(str(n)) for n in names[:shown])}{more}"


def trusted_key(rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The trusted set as one array for a fingerprint: ``(row, label)`` pairs, sorted by row."""
    order = np.argsort(rows, kind="stable")
    return np.stack([rows[order], labels[order]]).astype(np.int64)
