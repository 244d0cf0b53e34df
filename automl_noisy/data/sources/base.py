"""What every source shares: RawData, label encoding, path and option checks."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from automl_noisy.data.preprocessing import Column, Scale
from automl_noisy.errors import UserError

#: Fewest samples a class needs so that the stratified test and validation splits can take some.
MIN_PER_CLASS = 3
#: Options any source accepts (handled by :func:`automl_noisy.data.sources.load_source`).
GENERIC_OPTIONS = ("labels", "trusted", "trusted_fraction")
#: The command-line flag of each option, named in error messages.
OPTION_FLAGS = {"samples": "--samples", "features": "--dims", "classes": "--classes", "columns": "--features",
                "image_size": "--image-size", "labels": "--labels", "impute": "--impute",
                "trusted": "--trusted", "trusted_fraction": "--trusted-fraction"}
#: What a path that is not a regular file is, in words.
SPECIAL_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                 (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


@dataclass(frozen=True, eq=False)
class RawData:
    """Features and labels as a source gives them, before splitting and noise.

    ``y`` holds the source labels encoded as ``0..K-1``; ``class_names[k]`` is the original name of
    class ``k``. ``labels_trusted`` is true when the labels are known to be clean (built-in data).
    ``standardize`` asks for vector features to be standardized with the training split's
    statistics, except the columns in ``unscaled_columns`` (one-hot encoded categories).
    ``scale`` is what the loader divided the source's values by (digits' 0-16 by 16, pixels' 0-255 by
    255; None: values as the source gives them), recorded so that new arrays in the source's units
    are divided the same way. ``impute`` is ``"median"`` when missing numeric table values are left
    as NaN for :func:`automl_noisy.data.load_data` to fill with the training split's medians.
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
    scale: Scale | None = None
    impute: str | None = None


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


def special_kind(path: str, follow_links: bool = True) -> str | None:
    """None when ``path`` is a regular file (a link to one, with ``follow_links``), else what it is in
    words (``"a folder"``, ``"a FIFO (named pipe)"``, ...). A missing path raises FileNotFoundError."""
    mode = (os.stat if follow_links else os.lstat)(path).st_mode
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in SPECIAL_KINDS if test(mode)), "not a regular file")


def regular_file(path: str, what: str, fix: str) -> str:
    """``path`` if it is a regular file (links followed), else a UserError naming ``what`` it should
    be and ``fix``. A FIFO, a socket or a device is refused before it is opened: reading one may wait
    forever (a FIFO nobody writes) or never end (``/dev/zero``)."""
    try:
        kind = special_kind(path)
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {first_line(exc)}") from None
    if kind is not None:
        raise UserError(f"{what} {path} is {kind}, not a file; {fix}")
    return path


def existing_file(kind: str, path: str) -> str:
    """``path`` if it names an existing regular file, else a UserError for source ``kind``."""
    if not path:
        raise UserError(f"source {kind}: needs a file path, e.g. --data {kind}:my.{kind}")
    return regular_file(path, "data file", f"give a .{kind} file")


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
