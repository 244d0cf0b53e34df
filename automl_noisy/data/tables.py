"""Table columns as network inputs: numeric columns as they are, categorical ones one-hot, and, on
request (``--impute median``), missing values filled.

:func:`table_columns` fits the columns of a training table, :func:`encode_table` encodes a table
with given columns, :func:`fit_medians` and :func:`fill_missing` impute. A category seen only in new
rows gets all-zero one-hot columns, as scikit-learn's ``OneHotEncoder(handle_unknown="ignore")``
does. With imputation, a numeric column's missing values become the median of that column on the
training split (as scikit-learn's ``SimpleImputer(strategy="median")`` fitted there), and a
categorical column's missing values become a category of their own (one more 0/1 column, last), as
``OneHotEncoder`` treats a missing value it was fitted with.

>>> import pandas as pd
>>> frame = pd.DataFrame({"age": [30, 40], "city": ["Oslo", "Rome"]})
>>> columns = table_columns(frame, ["age", "city"], "my.csv")
>>> [(c.name, c.categories) for c in columns]
[('age', None), ('city', ('Oslo', 'Rome'))]
>>> x, unseen = encode_table(pd.DataFrame({"age": [35], "city": ["Paris"]}), columns, "new.csv")
>>> x.tolist(), unseen
([[35.0, 0.0, 0.0]], {'city': ['Paris']})
>>> gaps = pd.DataFrame({"age": [30, None, 50], "city": ["Oslo", None, "Rome"]})
>>> columns = table_columns(gaps, ["age", "city"], "gaps.csv", impute="median")
>>> x, _ = encode_table(gaps, columns, "gaps.csv", impute="median")
>>> columns = fit_medians(x, columns, "gaps.csv")
>>> x, filled = fill_missing(x, columns)
>>> x.tolist(), filled
([[30.0, 1.0, 0.0, 0.0], [40.0, 0.0, 0.0, 1.0], [50.0, 0.0, 1.0, 0.0]], {'age': 1})
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from automl_noisy.errors import UserError

#: The largest magnitude a feature may have: features are stored as float32 (max 3.4e38).
FLOAT32_LIMIT = float(np.finfo(np.float32).max)
#: Most distinct values a non-numeric feature column may hold to be one-hot encoded.
MAX_CATEGORIES = 50
#: The imputation strategies ``--impute`` offers.
IMPUTE_STRATEGIES = ("median",)
#: What a missing value of a categorical column is called where it is named (a note).
MISSING = "(missing)"
#: What to do about missing values when training did not impute them.
IMPUTE_FIX = ("replace them, or pass --impute median to fill each numeric column's missing values with its median "
              "on the training split (a categorical column's become a category of their own)")


@dataclass(frozen=True)
class Column:
    """One feature column of a table: numeric (``categories`` None) or categorical.

    With imputation, ``fill`` is a numeric column's value for a missing one (the training split's
    median), and ``missing_category`` says that a categorical column's missing values are a category
    of their own, its last one-hot column.
    """

    name: str
    categories: tuple[str, ...] | None = None
    fill: float | None = None
    missing_category: bool = False

    @property
    def width(self) -> int:
        """How many network inputs the column becomes."""
        return 1 if self.categories is None else len(self.categories) + self.missing_category

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "categories": None if self.categories is None else list(self.categories),
                "fill": self.fill, "missing_category": self.missing_category}


def check_impute(value: Any) -> str | None:
    """The imputation option (``impute``, ``--impute``) checked: None or a known strategy."""
    if value is None or value in IMPUTE_STRATEGIES:
        return value
    raise UserError(f"option impute (--impute) must be one of: {', '.join(IMPUTE_STRATEGIES)}; got {value!r}")


def table_columns(frame: Any, names: Sequence[str], where: str, impute: str | None = None) -> tuple[Column, ...]:
    """The columns ``names`` of a training table: a column pandas reads as numbers is numeric, any
    other is categorical with its distinct values (as text, sorted, missing values left out; with
    ``impute``, a column with missing values gets a missing-value category)."""
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
        out.append(Column(name, tuple(str(c) for c in categories),
                          missing_category=bool(impute) and bool(column.isna().any())))
    return tuple(out)


def _numbers(series: Any, column: Column, where: str, line_numbers: bool) -> np.ndarray:
    """A numeric column's values as float64 ``(n, 1)`` (NaN where missing); finite values beyond
    float32 are a UserError."""
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(series):
        numbers = pd.to_numeric(series, errors="coerce")
        text = series[numbers.isna() & series.notna()]
        if len(text):
            raise UserError(f"feature column {column.name!r} in {where} holds text ({str(text.iloc[0])!r}) "
                            "where the model takes numbers; give it numbers")
        series = numbers
    values = series.to_numpy(dtype=np.float64, na_value=np.nan).reshape(-1, 1)
    huge = np.flatnonzero(np.isfinite(values[:, 0]) & (np.abs(values[:, 0]) > FLOAT32_LIMIT))
    if huge.size:
        place = f"file line {huge[0] + 2}" if line_numbers else f"row {huge[0]}"
        raise UserError(f"feature column {column.name!r} in {where} holds {values[huge[0], 0]:g} ({place}), "
                        f"beyond what training's float32 holds (|x| <= {FLOAT32_LIMIT:.3g}); rescale the column")
    return values


def encode_table(frame: Any, columns: Sequence[Column], where: str, line_numbers: bool = False,
                 impute: str | None = None, missing_fix: str = IMPUTE_FIX) -> tuple[np.ndarray, dict[str, list[str]]]:
    """float32 features of ``frame``'s rows, one block per column in ``columns`` (numeric columns as
    they are, categorical ones one-hot), and per categorical column the values it holds that are not
    among its categories (encoded as all zeros). Values beyond float32 and text in a numeric column
    are a UserError naming the column (``line_numbers``: rows named as lines of a CSV file with a
    header). Missing (and infinite) values are a UserError ending in ``missing_fix``, unless
    ``impute``: a numeric column's missing values are then left NaN (for :func:`fill_missing`;
    infinite ones are still an error), a categorical column's are its missing-value category, or,
    where it has none, all zeros (named ``MISSING`` among the unseen values)."""
    bad, blocks, unseen = [], [], {}
    for column in columns:
        series = frame[column.name]
        if column.categories is None:
            values = _numbers(series, column, where, line_numbers)
            absent = ~np.isfinite(values[:, 0])
            infinite = np.flatnonzero(np.isinf(values[:, 0]))
            if impute and infinite.size:
                place = f"file line {infinite[0] + 2}" if line_numbers else f"row {infinite[0]}"
                raise UserError(f"feature column {column.name!r} in {where} holds an infinite value ({place}); "
                                "--impute fills missing values, not infinite ones: replace it with a number")
        else:
            absent = series.isna().to_numpy()
            values = np.zeros((len(series), column.width), dtype=np.float64)
            text = series.astype(str).to_numpy(dtype=object)
            text[absent] = ""
            text = text.astype(str)
            known = np.asarray(column.categories, dtype=str)
            at = np.searchsorted(known, text).clip(max=max(len(known) - 1, 0))
            hit = (known[at] == text if len(known) else np.zeros(len(text), dtype=bool)) & ~absent
            values[np.flatnonzero(hit), at[hit]] = 1.0
            if column.missing_category:
                values[absent, -1] = 1.0
            strange = sorted(set(text[~hit & ~absent].tolist()))
            if impute and absent.any() and not column.missing_category:
                strange.append(MISSING)
            if strange:
                unseen[column.name] = strange
        if absent.any() and not impute:
            bad.append(f"{column.name!r} ({int(absent.sum())})")
        blocks.append(values)
    if bad:
        raise UserError(f"feature column(s) {', '.join(bad)} in {where} hold NaN, infinite or missing values; "
                        f"{missing_fix}")
    width = sum(c.width for c in columns)
    x = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(frame), width))
    return x.astype(np.float32), unseen


def _numeric_positions(columns: Sequence[Column]) -> list[tuple[int, Column]]:
    out, at = [], 0
    for column in columns:
        if column.categories is None:
            out.append((at, column))
        at += column.width
    return out


def fit_medians(x_train: np.ndarray, columns: Sequence[Column], where: str) -> tuple[Column, ...]:
    """``columns`` with each numeric column's ``fill`` set to its median over ``x_train`` (encoded
    features, NaN where missing); a column with no value there is a UserError."""
    fills = {}
    for at, column in _numeric_positions(columns):
        present = x_train[:, at][~np.isnan(x_train[:, at])]
        if not present.size:
            raise UserError(f"feature column {column.name!r} in {where} has no value in the training split to take "
                            "a median of; leave it out with --features")
        fills[column.name] = float(np.median(present.astype(np.float64)))
    return tuple(replace(c, fill=fills[c.name]) if c.name in fills else c for c in columns)


def fill_missing(x: np.ndarray, columns: Sequence[Column]) -> tuple[np.ndarray, dict[str, int]]:
    """Encoded features with each numeric column's NaN replaced by its ``fill``, and how many were
    filled per column (only columns with some)."""
    filled = {}
    for at, column in _numeric_positions(columns):
        gaps = np.isnan(x[:, at])
        if gaps.any():
            if column.fill is None:
                raise UserError(f"feature column {column.name!r} holds missing values and the model records no "
                                f"value to fill them with; {IMPUTE_FIX}")
            x = x.copy() if not filled else x
            x[gaps, at] = column.fill
            filled[column.name] = int(gaps.sum())
    return x, filled


def one_hot_columns(columns: Sequence[Column]) -> tuple[int, ...]:
    """The positions of the one-hot (categorical) inputs among the encoded features."""
    out, at = [], 0
    for column in columns:
        if column.categories is not None:
            out += range(at, at + column.width)
        at += column.width
    return tuple(out)
