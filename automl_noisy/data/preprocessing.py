"""Preprocessing: how a source's rows become the network's inputs, fitted when the data is loaded
and saved with a trained model, so that new rows take exactly the same steps.

Each step is plain data (a model folder keeps it as JSON; nothing is pickled):

1. **Reading.** A table's feature columns, in order, each numeric (used as it is) or categorical
   (one 0/1 column per category, categories sorted as text; see :mod:`automl_noisy.data.tables`);
   an image folder's image size; arrays as they are.
2. **Units.** The :class:`Scale` a source divides its values by: digits' pixels (0-16) by 16,
   image folders' and torchvision roots' pixels (0-255) by 255, an ``.npz`` array of uint8 (0-255)
   by 255; tables and other arrays: none.
3. **Imputing** (tables, ``--impute median`` only). Missing numeric values become the training
   split's median of their column; missing categories a category of their own.
4. **Standardizing.** Vector features become ``(x - mean) / std`` with the training split's
   per-feature statistics (std 0 counts as 1); one-hot columns keep mean 0 and std 1.
5. **Shape.** What one sample must look like for the network.

:func:`fit_standardization` and :func:`apply_standardization` scale vectors; :meth:`Scale.apply`
divides a source's values, for training and for new arrays alike, so both get the same float32s.

>>> DIGITS_SCALE.to_dict()
{'divide_by': 16.0, 'range': [0.0, 16.0]}
>>> DIGITS_SCALE.apply(np.array([[0, 8, 16]])).tolist()
[[0.0, 0.5, 1.0]]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from automl_noisy.data.limits import MAX_SAMPLE_VALUES, check_values
from automl_noisy.data.tables import (FLOAT32_LIMIT, IMPUTE_STRATEGIES, MAX_CATEGORIES, Column, encode_table,
                                      one_hot_columns, table_columns)
from automl_noisy.errors import UserError

__all__ = ["DIGITS_SCALE", "FLOAT32_LIMIT", "MAX_CATEGORIES", "PIXEL_SCALE", "Column", "Preprocessing", "Scale",
           "apply_standardization", "encode_table", "fit_standardization", "one_hot_columns", "table_columns"]

#: How far beyond a source's range (a share of its width) new values may go before they are refused.
RANGE_TOLERANCE = 0.05


@dataclass(frozen=True)
class Scale:
    """How a source's values become network inputs: divided by ``divide_by``. They come in
    ``low..high``, the source's own units (digits 0-16, pixels 0-255), so new arrays are checked
    against that range and refused rather than silently misread: values more than
    ``RANGE_TOLERANCE`` of the range's width outside it, and, for units of whole numbers reaching
    above 1 (digits, pixels), values that all lie in [0, 1] with fractions among them (an array
    already divided).

    ``uint8_only`` is for model cards of format 1, which did not record a scale: an array source's
    uint8 arrays were divided by 255 and others taken as they were, and so are new arrays then.
    """

    divide_by: float
    low: float
    high: float
    uint8_only: bool = False

    def applies_to(self, dtype: np.dtype) -> bool:
        """Whether this scale divides an array of ``dtype`` (always, except a format-1 card's for
        anything but uint8)."""
        return not self.uint8_only or dtype == np.uint8

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``x / divide_by`` as float32 (computed in float32, as the sources always did)."""
        return np.ascontiguousarray(x, dtype=np.float32) / np.float32(self.divide_by)

    def describe(self) -> str:
        """The units in words, e.g. ``values from 0 to 255, divided by 255 as in training``."""
        return f"values from {self.low:g} to {self.high:g}, divided by {self.divide_by:g} as in training"

    def check(self, x: np.ndarray, where: str) -> None:
        """A UserError when ``x`` (finite) is not in this scale's units."""
        if not x.size:
            return
        low, high = float(x.min()), float(x.max())
        slack = RANGE_TOLERANCE * (self.high - self.low)
        if low < self.low - slack or high > self.high + slack:
            raise UserError(f"{where} holds values from {low:g} to {high:g}; the model takes {self.describe()}: "
                            f"pass the data in those units")
        if self.high > 1 + slack and 0 <= low and high <= 1 and bool(np.any((x > 0) & (x < 1))):
            raise UserError(f"{where} holds values from {low:g} to {high:g}, as if already divided; the model takes "
                            f"{self.describe()}: pass the values before dividing (e.g. x * {self.divide_by:g})")

    def to_dict(self) -> dict[str, Any]:
        return {"divide_by": float(self.divide_by), "range": [float(self.low), float(self.high)]}

    @classmethod
    def from_dict(cls, d: Any) -> Scale:
        if not isinstance(d, Mapping) or not isinstance(d.get("range"), list) or len(d["range"]) != 2:
            raise UserError(f"field preprocessing.scale must be null or {{\"divide_by\": D, \"range\": [LOW, HIGH]}}, "
                            f"got {short_repr(d)}")
        divide_by, low, high = (_number(v, "preprocessing.scale") for v in (d.get("divide_by"), *d["range"]))
        if not divide_by > 0 or not low < high:
            raise UserError(f"field preprocessing.scale needs divide_by > 0 and LOW < HIGH, got {divide_by:g} and "
                            f"[{low:g}, {high:g}]")
        return cls(divide_by, low, high)


#: scikit-learn's digits: pixels 0-16.
DIGITS_SCALE = Scale(16.0, 0.0, 16.0)
#: 8-bit pixels (image folders, torchvision roots, uint8 arrays): 0-255.
PIXEL_SCALE = Scale(255.0, 0.0, 255.0)
#: The scale a source kind applied before model cards recorded it (format 1); arrays: uint8 only.
FORMAT_1_SCALES = {"digits": DIGITS_SCALE, "folder": PIXEL_SCALE, "torchvision": PIXEL_SCALE,
                   **dict.fromkeys(("npz", "memory"), Scale(255.0, 0.0, 255.0, uint8_only=True))}


def fit_standardization(x_train: np.ndarray, unscaled: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation of the training rows (float64; std 0 -> 1); the
    ``unscaled`` features (one-hot columns) get mean 0 and std 1."""
    mean = x_train.mean(axis=0, dtype=np.float64)
    std = x_train.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    mean[list(unscaled)], std[list(unscaled)] = 0.0, 1.0
    return mean, std


def apply_standardization(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` as float32."""
    return ((x - mean) / std).astype(np.float32)


@dataclass(frozen=True)
class Preprocessing:
    """What turns a source's rows into the network's inputs (see the module docstring).

    ``source`` is the kind of source the model learned from (``csv``, ``npz``, ``folder``,
    ``digits``...); ``columns`` and ``label_column`` describe a table; ``mean`` and ``std`` the
    standardization of vector features (None: none); ``image_size`` the size images of a folder
    were decoded at; ``input_shape`` one sample's shape as the network takes it; ``scale`` what the
    source's values were divided by (None: nothing); ``impute`` the strategy that filled a table's
    missing values (None: they are refused).
    """

    source: str
    input_shape: tuple[int, ...]
    columns: tuple[Column, ...] = ()
    label_column: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    image_size: int | None = None
    scale: Scale | None = None
    impute: str | None = None

    @property
    def table(self) -> bool:
        """Whether the model reads the columns of a table."""
        return bool(self.columns)

    @property
    def images(self) -> bool:
        """Whether one sample is an image of 1 or 3 channels, square."""
        shape = self.input_shape
        return len(shape) == 3 and shape[0] in (1, 3) and shape[1] == shape[2]

    def describe_input(self) -> str:
        """What one sample must be, in words."""
        if self.table:
            return f"a table with the column(s) {', '.join(c.name for c in self.columns)}"
        if self.images:
            return f"images ({self.input_shape[0]} channel(s), {self.input_shape[1]}x{self.input_shape[2]} pixels)"
        return f"arrays of shape (n, {', '.join(map(str, self.input_shape))})"

    def check_shape(self, x: np.ndarray, where: str) -> None:
        """A UserError when ``x``'s samples are not of the network's input shape."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise UserError(f"{where} has samples of shape {tuple(x.shape[1:])}; the model takes "
                            f"{self.describe_input()}")

    def from_source_units(self, x: np.ndarray, where: str, dtype: np.dtype | None = None) -> np.ndarray:
        """Finite features in the units of the training source (digits 0-16, pixels 0-255), checked
        and divided by the source's scale as training did (see :class:`Scale`); ``dtype`` is the
        array's own, before it became float32 (a format-1 card divides uint8 arrays only)."""
        self.check_shape(x, where)
        if self.scale is None or not self.scale.applies_to(np.dtype(dtype or x.dtype)):
            return x
        self.scale.check(x, where)
        return self.scale.apply(x)

    def finish(self, x: np.ndarray, where: str) -> np.ndarray:
        """Read features in network units (encoded table rows, decoded images, divided arrays) checked
        against the network's input shape, standardized, as contiguous float32."""
        self.check_shape(x, where)
        x = x.astype(np.float32, copy=False)  # finite already: every reader checks its values
        if self.mean is not None and self.std is not None:
            mean, std = np.asarray(self.mean, dtype=np.float64), np.asarray(self.std, dtype=np.float64)
            x = apply_standardization(x, mean, std)
        return np.ascontiguousarray(x, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "input_shape": list(self.input_shape),
                "columns": [c.to_dict() for c in self.columns], "label_column": self.label_column,
                "mean": None if self.mean is None else list(self.mean),
                "std": None if self.std is None else list(self.std), "image_size": self.image_size,
                "scale": None if self.scale is None else self.scale.to_dict(), "impute": self.impute}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocessing:
        """The inverse of :meth:`to_dict`, every field checked: a malformed, impossible or
        self-contradicting entry is a UserError naming the field. Without a ``scale`` entry (a model
        card of format 1) the scale is the one the source kind applied then (``FORMAT_1_SCALES``)."""
        try:
            return _preprocessing_from_dict(d)
        except UserError as e:
            raise UserError(f"malformed preprocessing: {e}") from None
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            raise UserError(f"malformed preprocessing ({type(e).__name__}: {e})") from None


def short_repr(value: Any) -> str:
    """A value as it may appear in a one-line message: its repr, at most 60 characters."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"a deeply nested {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any, field: str) -> float:
    """A finite number of a card's field, else a UserError naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"field {field} holds {short_repr(value)} where a finite number belongs")
    return float(value)


def _shape(value: Any, field: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and not isinstance(v, bool)
                                                           and v >= 1 for v in value):
        raise UserError(f"field {field} must be a list of positive whole numbers, got {short_repr(value)}")
    check_values(math.prod(value), MAX_SAMPLE_VALUES, f"one sample of the shape in field {field}",
                 "no network takes that")
    return tuple(value)


def _statistics(value: Any, field: str, width: int, positive: bool) -> tuple[float, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise UserError(f"field {field} must be a list of numbers, got {short_repr(value)}")
    if len(value) != width:
        raise UserError(f"field {field} holds {len(value)} statistics; the input shape needs {width}")
    numbers = tuple(_number(v, field) for v in value)
    if positive and min(numbers, default=1.0) <= 0:
        raise UserError(f"field {field} holds {min(numbers):g}; a standard deviation must be above 0")
    return numbers


def _column(d: Any) -> Column:
    if not isinstance(d, Mapping) or not isinstance(d.get("name"), str):
        raise UserError(f"field preprocessing.columns holds {short_repr(d)}, not a column with a name")
    categories = d.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories) \
                or len(set(categories)) != len(categories) or list(categories) != sorted(categories):
            raise UserError(f"field preprocessing.columns: column {d['name']!r} needs its categories as a sorted "
                            "list of distinct strings")
        categories = tuple(categories)
    fill = d.get("fill")
    missing = d.get("missing_category", False)
    numeric = categories is None
    if not isinstance(missing, bool) or (missing and numeric) or (fill is not None and not numeric):
        raise UserError(f"field preprocessing.columns: column {d['name']!r} mixes a numeric column's fill and a "
                        "categorical column's missing_category")
    return Column(d["name"], categories, None if fill is None else _number(fill, "preprocessing.columns.fill"),
                  missing)


def _preprocessing_from_dict(d: Mapping[str, Any]) -> Preprocessing:
    if not isinstance(d, Mapping):
        raise UserError("field preprocessing must be an object")
    source = d["source"]
    if not isinstance(source, str):
        raise UserError(f"field preprocessing.source must be a string, got {source!r}")
    shape = _shape(d["input_shape"], "preprocessing.input_shape")
    columns = tuple(_column(c) for c in d.get("columns") or ())
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        twice = sorted(name for name, n in Counter(names).items() if n > 1)
        raise UserError(f"field preprocessing.columns names the column(s) {', '.join(map(repr, twice[:5]))} twice")
    width = shape[0] if len(shape) == 1 else None
    if columns and sum(c.width for c in columns) != width:
        raise UserError(f"the columns make {sum(c.width for c in columns)} inputs, the input shape is {shape}")
    stats = {}
    for name in ("mean", "std"):
        if d.get(name) is not None and width is None:
            raise UserError(f"field preprocessing.{name}: standardization is for vectors, the input shape is {shape}")
        stats[name] = _statistics(d.get(name), f"preprocessing.{name}", width or 0, name == "std")
    if (stats["mean"] is None) != (stats["std"] is None):
        raise UserError("fields preprocessing.mean and preprocessing.std must both be given or both be null")
    image_size = d.get("image_size")
    if image_size is not None:
        if isinstance(image_size, bool) or not isinstance(image_size, int) or len(shape) != 3 \
                or shape[0] not in (1, 3) or shape[1:] != (image_size, image_size):
            raise UserError(f"field preprocessing.image_size {image_size!r} disagrees with the input shape {shape}; "
                            f"images of size N have the shape (1 or 3, N, N)")
    if "scale" in d:
        scale = None if d["scale"] is None else Scale.from_dict(d["scale"])
    else:  # format 1
        scale = FORMAT_1_SCALES.get(source)
    impute = d.get("impute")
    if impute is not None and impute not in IMPUTE_STRATEGIES:
        raise UserError(f"field preprocessing.impute must be null or one of {', '.join(IMPUTE_STRATEGIES)}, "
                        f"got {impute!r}")
    if impute and any(c.categories is None and c.fill is None for c in columns):
        raise UserError("field preprocessing.impute is set but a numeric column has no fill value")
    label = d.get("label_column")
    if label is not None and not isinstance(label, str):
        raise UserError(f"field preprocessing.label_column must be null or a string, got {short_repr(label)}")
    return Preprocessing(source=source, input_shape=shape, columns=columns,
                         label_column=label, mean=stats["mean"], std=stats["std"],
                         image_size=image_size, scale=scale, impute=impute)
