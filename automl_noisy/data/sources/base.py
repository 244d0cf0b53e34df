"""What every source shares: RawData, label encoding, path and option checks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from automl_noisy.data.preprocessing import Column
from automl_noisy.errors import UserError

#: Fewest samples a class needs so that the stratified test and validation splits can take some.
MIN_PER_CLASS = 3
#: Options any source accepts (handled by :func:`automl_noisy.data.sources.load_source`).
GENERIC_OPTIONS = ("labels",)
#: The command-line flag of each option, named in error messages.
OPTION_FLAGS = {"samples": "--samples", "features": "--dims", "classes": "--classes", "columns": "--features",
                "image_size": "--image-size", "labels": "--labels"}


@dataclass(frozen=True, eq=False)
class RawData:
    """Features and labels as a source gives them, before splitting and noise.

    ``y`` holds the source labels encoded as ``0..K-1``; ``class_names[k]`` is the original name of
    class ``k``. ``labels_trusted`` is true when the labels are known to be clean (built-in data).
    ``standardize`` asks for vector features to be standardized with the training split's
    statistics, except the columns in ``unscaled_columns`` (one-hot encoded categories).
    ``original_train`` is, for a source with its own train/test split (a torchvision root), how many
    leading rows come from its training set. ``given_labels`` are noisy labels from a label file
    (``--labels``) that replace ``y`` for training and validation; ``y`` then serves as the clean labels.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    labels_trusted: bool
    default_class_map: tuple[tuple[int, int], ...] | None = None
    standardize: bool = False
    unscaled_columns: tuple[int, ...] = ()
    original_train: int | None = None
    given_labels: np.ndarray | None = None
    columns: tuple[Column, ...] = ()
    image_size: int | None = None


def encode_labels(values: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map the sorted unique label values to ``0..K-1``; names are their string forms."""
    if values.dtype.kind == "f" and np.all(np.mod(values, 1) == 0):
        values = values.astype(np.int64)
    uniques, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), tuple(str(u) for u in uniques)


def no_path(name: str, path: str) -> None:
    """A built-in source takes no path."""
    if path:
        raise UserError(f"source {name!r} takes no path, got {name}:{path}; use --data {name}")


def existing_file(kind: str, path: str) -> str:
    """``path`` if it names an existing file, else a UserError for source ``kind``."""
    if not path:
        raise UserError(f"source {kind}: needs a file path, e.g. --data {kind}:my.{kind}")
    if not os.path.exists(path):
        raise UserError(f"data file not found: {path}")
    if not os.path.isfile(path):
        raise UserError(f"data path {path} is not a file; give a .{kind} file")
    return path


def check_finite(x: np.ndarray, where: str) -> None:
    bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
    if bad:
        raise UserError(f"{where} has {bad} NaN or infinite value(s); clean or impute them before loading")


def check_options(kind: str, options: Mapping, allowed: tuple[str, ...]) -> None:
    """Every option must be one the source ``kind`` reads, or a generic one."""
    unknown = sorted(str(k) for k in options if k not in allowed and k not in GENERIC_OPTIONS)
    if unknown:
        named = ", ".join(f"{k} ({OPTION_FLAGS[k]})" if k in OPTION_FLAGS else k for k in unknown)
        valid = ", ".join(f"{k} ({OPTION_FLAGS.get(k, '-')})" for k in (*allowed, *GENERIC_OPTIONS))
        raise UserError(f"option(s) {named} do not apply to {kind} data; its options: {valid}")


def int_option(kind: str, options: Mapping, name: str, default: int, low: int) -> int:
    """An integer option ``>= low`` (``default`` when absent)."""
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise UserError(f"{kind} option {name} ({OPTION_FLAGS.get(name, '-')}) must be an integer >= {low}, "
                        f"got {value!r}")
    return int(value)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
