"""Tabular files, CSV and parquet: a label column and feature columns.

Numeric feature columns are used as they are (``load_data`` standardizes them with the training
split's statistics). Non-numeric columns are categories, one-hot encoded: one 0/1 column per
distinct value (sorted), left unscaled; a column with more than ``MAX_CATEGORIES`` values is an
error, as one-hot encoding it would mostly make noise. ``--features a,b`` (option ``columns``)
chooses the feature columns; by default every column but the label is one.
"""

from __future__ import annotations

import csv
from typing import Any

import numpy as np

from automl_noisy.data.preprocessing import encode_table, one_hot_columns, table_columns
from automl_noisy.data.sources.base import RawData, encode_labels, existing_file, first_line
from automl_noisy.data.spec import DataSpec
from automl_noisy.errors import UserError



def read_csv(path: str) -> Any:
    """A CSV file with a header as a DataFrame; an unreadable file or a column named twice is a
    UserError."""
    import pandas as pd

    existing_file("csv", path)
    try:
        frame = pd.read_csv(path)
        header = next(csv.reader(open(path, newline="", encoding="utf-8")), [])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, csv.Error) as exc:
        raise UserError(f"cannot read CSV file {path}: {first_line(exc)}") from None
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:  # pandas would rename the second 'a' to 'a.1' and use it as one more feature
        raise UserError(f"CSV file {path} names column(s) {', '.join(map(repr, twice))} more than once; "
                        "give every column its own name")
    return frame


def read_parquet(path: str) -> Any:
    """A parquet file as a DataFrame (pandas and pyarrow); an unreadable file is a UserError."""
    import pandas as pd
    import pyarrow

    existing_file("parquet", path)
    try:
        return pd.read_parquet(path, engine="pyarrow")
    except (pyarrow.lib.ArrowException, OSError, ValueError) as exc:
        raise UserError(f"cannot read parquet file {path}: {first_line(exc)}") from None


def load_csv_source(path: str, spec: DataSpec) -> RawData:
    """A CSV file with a header: ``spec.label_column`` holds the labels; the feature columns are
    numeric or categorical (one-hot encoded)."""
    return frame_to_raw(read_csv(path), path, spec, "CSV")


def load_parquet_source(path: str, spec: DataSpec) -> RawData:
    """A parquet file (read with pandas and pyarrow), with the same columns rules as a CSV file."""
    return frame_to_raw(read_parquet(path), path, spec, "parquet")


def _feature_columns(columns: list[str], spec: DataSpec, path: str) -> list[str]:
    chosen: Any = spec.options.get("columns")
    if chosen is None:
        return [c for c in columns if c != spec.label_column]
    if isinstance(chosen, str):
        chosen = [c.strip() for c in chosen.split(",")]
    if not isinstance(chosen, (list, tuple)) or not all(isinstance(c, str) and c for c in chosen) or not chosen:
        raise UserError(f"option columns (--features) must list column names, e.g. --features age,city; "
                        f"got {chosen!r}")
    unknown = [c for c in chosen if c not in columns]
    if unknown:
        raise UserError(f"feature column(s) {', '.join(map(repr, unknown))} not in {path}; columns are: "
                        f"{', '.join(columns)}. Fix --features")
    if spec.label_column in chosen:
        raise UserError(f"the label column {spec.label_column!r} cannot also be a feature; "
                        f"leave it out of --features")
    return list(dict.fromkeys(chosen))


def frame_to_raw(frame: Any, path: str, spec: DataSpec, what: str) -> RawData:
    """Labels and encoded features from a DataFrame read from ``path`` (a ``what`` file); the
    encoding is the one :mod:`automl_noisy.data.preprocessing` records for predicting."""
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if spec.label_column not in columns:
        raise UserError(f"label column {spec.label_column!r} not in {path}; columns are: "
                        f"{', '.join(columns)}. Pass --label-column NAME")
    if len(frame) == 0:
        raise UserError(f"{what} file {path} has a header but no rows")
    names = _feature_columns(columns, spec, path)
    if not names:
        raise UserError(f"{what} file {path} has no feature columns besides the label column {spec.label_column!r}")
    encoding = table_columns(frame, names, path)
    x, _ = encode_table(frame, encoding, path, line_numbers=what == "CSV")
    labels = frame[spec.label_column]
    missing_rows = np.flatnonzero(labels.isna().to_numpy())
    if missing_rows.size:
        lines = ", ".join(str(i + 2) for i in missing_rows[:5])
        where = f" (file line(s) {lines})" if what == "CSV" else f" (row(s) {', '.join(map(str, missing_rows[:5]))})"
        raise UserError(f"label column {spec.label_column!r} in {path} is empty on {missing_rows.size} row(s)"
                        f"{where}; drop those rows or fill in their labels")
    values = labels.to_numpy()
    values = values if pd.api.types.is_numeric_dtype(labels) else values.astype(str)
    y, class_names = encode_labels(values)
    return RawData(x, y, class_names, False, standardize=True, unscaled_columns=one_hot_columns(encoding),
                   columns=encoding)
