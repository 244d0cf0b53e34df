"""Preprocessing: how a source's rows become the network's inputs, fitted when the data is loaded
and saved with a trained model, so that new rows take exactly the same steps.

Each step is plain data (a model folder keeps it as JSON; nothing is pickled):

1. **Reading.** A table's feature columns, in order, each numeric (used as it is) or categorical
   (one 0/1 column per category, categories sorted as text); an image folder's image size; arrays
   as they are.
2. **Standardizing.** Vector features become ``(x - mean) / std`` with the training split's
   per-feature statistics (std 0 counts as 1); one-hot columns keep mean 0 and std 1.
3. **Shape.** What one sample must look like for the network.

The same functions serve loading and predicting: :func:`table_columns` fits the columns of a
training table, :func:`encode_table` encodes a table with given columns, :func:`fit_standardization`
and :func:`apply_standardization` scale vectors. A category seen only in new rows gets all-zero
one-hot columns, as scikit-learn's ``OneHotEncoder(handle_unknown="ignore")`` does.

>>> import pandas as pd
>>> frame = pd.DataFrame({"age": [30, 40], "city": ["Oslo", "Rome"]})
>>> columns = table_columns(frame, ["age", "city"], "my.csv")
>>> [(c.name, c.categories) for c in columns]
[('age', None), ('city', ('Oslo', 'Rome'))]
>>> x, unseen = encode_table(pd.DataFrame({"age": [35], "city": ["Paris"]}), columns, "new.csv")
>>> x.tolist(), unseen
([[35.0, 0.0, 0.0]], {'city': ['Paris']})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from automl_noisy.errors import UserError

#: The largest magnitude a feature may have: features are stored as float32 (max 3.4e38).
FLOAT32_LIMIT = float(np.finfo(np.float32).max)
#: Most distinct values a non-numeric feature column may hold to be one-hot encoded.
MAX_CATEGORIES = 50


@dataclass(frozen=True)
class Column:
    """One feature column of a table: numeric (``categories`` None) or categorical."""

    name: str
    categories: tuple[str, ...] | None = None

    @property
    def width(self) -> int:
        """How many network inputs the column becomes."""
        return 1 if self.categories is None else len(self.categories)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "categories": None if self.categories is None else list(self.categories)}


def table_columns(frame: Any, names: Sequence[str], where: str) -> tuple[Column, ...]:
    """The columns ``names`` of a training table: a column pandas reads as numbers is numeric, any
    other is categorical with its distinct values (as text, sorted, missing values left out)."""
    import pandas as pd

    out = []
    for name in names:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            out.append(Column(name))
            continue
        categories = np.unique(column.dropna().astype(str).to_numpy())
        if len(categories) > MAX_CATEGORIES:
            raise UserError(f"feature column {name!r} in {where} has {len(categories)} categories, more than "
                            f"{MAX_CATEGORIES} to one-hot encode; leave it out with --features or encode it as numbers")
        out.append(Column(name, tuple(str(c) for c in categories)))
    return tuple(out)


def encode_table(frame: Any, columns: Sequence[Column], where: str,
                 line_numbers: bool = False) -> tuple[np.ndarray, dict[str, list[str]]]:
    """float32 features of ``frame``'s rows, one block per column in ``columns`` (numeric columns as
    they are, categorical ones one-hot), and per categorical column the values it holds that are not
    among its categories (encoded as all zeros). Missing or non-finite values, and text in a
    numeric column, are a UserError naming the columns (``line_numbers``: rows named as lines of a
    CSV file with a header)."""
    import pandas as pd

    bad, blocks, unseen = [], [], {}
    for column in columns:
        series = frame[column.name]
        if column.categories is None:
            if not pd.api.types.is_numeric_dtype(series):
                numbers = pd.to_numeric(series, errors="coerce")
                text = series[numbers.isna() & series.notna()]
                if len(text):
                    raise UserError(f"feature column {column.name!r} in {where} holds text ({str(text.iloc[0])!r}) "
                                    "where the model takes numbers; give it numbers")
                series = numbers
            values = series.to_numpy(dtype=np.float64, na_value=np.nan).reshape(-1, 1)
            missing = int((~np.isfinite(values)).sum())
            huge = np.flatnonzero(np.isfinite(values[:, 0]) & (np.abs(values[:, 0]) > FLOAT32_LIMIT))
            if huge.size:
                place = f"file line {huge[0] + 2}" if line_numbers else f"row {huge[0]}"
                raise UserError(f"feature column {column.name!r} in {where} holds {values[huge[0], 0]:g} ({place}), "
                                f"beyond what training's float32 holds (|x| <= {FLOAT32_LIMIT:.3g}); rescale the column")
        else:
            missing = int(series.isna().sum())
            values = np.zeros((len(series), column.width), dtype=np.float64)
            if not missing:
                text = series.astype(str).to_numpy()
                known = np.asarray(column.categories, dtype=str)
                at = np.searchsorted(known, text).clip(max=max(len(known) - 1, 0))
                hit = known[at] == text if len(known) else np.zeros(len(text), dtype=bool)
                values[np.flatnonzero(hit), at[hit]] = 1.0
                if not hit.all():
                    unseen[column.name] = sorted(set(text[~hit].tolist()))
        if missing:
            bad.append(f"{column.name!r} ({missing})")
        blocks.append(values)
    if bad:
        raise UserError(f"feature column(s) {', '.join(bad)} in {where} hold NaN, infinite or missing values; "
                        f"clean or impute them before loading")
    width = sum(c.width for c in columns)
    x = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(frame), width))
    return x.astype(np.float32), unseen


def one_hot_columns(columns: Sequence[Column]) -> tuple[int, ...]:
    """The positions of the one-hot (categorical) inputs among the encoded features."""
    out, at = [], 0
    for column in columns:
        if column.categories is not None:
            out += range(at, at + column.width)
        at += column.width
    return tuple(out)


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
    were decoded at; ``input_shape`` one sample's shape as the network takes it.
    """

    source: str
    input_shape: tuple[int, ...]
    columns: tuple[Column, ...] = ()
    label_column: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    image_size: int | None = None

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

    def finish(self, x: np.ndarray, where: str) -> np.ndarray:
        """Read features (encoded table rows, decoded images, an array) checked against the network's
        input shape, standardized, as contiguous float32."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise UserError(f"{where} has samples of shape {tuple(x.shape[1:])}; the model takes "
                            f"{self.describe_input()}")
        x = x.astype(np.float32, copy=False)  # finite already: every reader checks its values
        if self.mean is not None and self.std is not None:
            x = apply_standardization(x, np.asarray(self.mean, dtype=np.float64), np.asarray(self.std, dtype=np.float64))
        return np.ascontiguousarray(x, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "input_shape": list(self.input_shape),
                "columns": [c.to_dict() for c in self.columns], "label_column": self.label_column,
                "mean": None if self.mean is None else list(self.mean),
                "std": None if self.std is None else list(self.std), "image_size": self.image_size}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocessing:
        """The inverse of :meth:`to_dict`; a malformed entry is a UserError."""
        try:
            columns = tuple(Column(str(c["name"]), None if c.get("categories") is None
                                   else tuple(str(v) for v in c["categories"])) for c in d.get("columns") or ())
            out = cls(source=str(d["source"]), input_shape=tuple(int(s) for s in d["input_shape"]), columns=columns,
                      label_column=None if d.get("label_column") is None else str(d["label_column"]),
                      mean=None if d.get("mean") is None else tuple(float(v) for v in d["mean"]),
                      std=None if d.get("std") is None else tuple(float(v) for v in d["std"]),
                      image_size=None if d.get("image_size") is None else int(d["image_size"]))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UserError(f"malformed preprocessing ({type(e).__name__}: {e})") from None
        width = int(np.prod(out.input_shape)) if len(out.input_shape) == 1 else None
        for stats in (out.mean, out.std):
            if stats is not None and len(stats) != width:
                raise UserError(f"malformed preprocessing: {len(stats)} standardization statistics for "
                                f"input shape {out.input_shape}")
        if columns and sum(c.width for c in columns) != width:
            raise UserError(f"malformed preprocessing: the columns make {sum(c.width for c in columns)} inputs, "
                            f"the input shape is {out.input_shape}")
        return out
