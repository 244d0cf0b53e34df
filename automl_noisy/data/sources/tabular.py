"""Tabular files, CSV and parquet: a label column and feature columns.

Numeric feature columns are used as they are (``load_data`` standardizes them with the training
split's statistics). Non-numeric columns are categories, one-hot encoded: one 0/1 column per
distinct value (sorted), left unscaled; a column with more than ``MAX_CATEGORIES`` values is an
error, as one-hot encoding it would mostly make noise. ``--features a,b`` (option ``columns``)
chooses the feature columns; by default every column but the label is one. A file with more than
``MAX_COLUMNS`` columns is refused from its header (a CSV's first line, a parquet file's schema),
before the file is parsed. Missing feature values are refused, unless ``--impute median`` (option
``impute``) asks for them to be filled (see :mod:`automl_noisy.data.tables`).
"""

from __future__ import annotations

import csv
from collections import Counter
from typing import Any

import numpy as np

from automl_noisy.data.limits import MAX_COLUMNS
from automl_noisy.data.sources.base import RawData, encode_labels, existing_file, first_line
from automl_noisy.data.spec import DataSpec
from automl_noisy.data.tables import check_impute, encode_table, one_hot_columns, table_columns
from automl_noisy.errors import UserError

#: How much of a CSV file is read at a time while its header is looked for.
HEADER_CHUNK = 2**20


def _refuse_wide(path: str, count: int, what: str, at_least: bool = False) -> None:
    if count > MAX_COLUMNS:
        raise UserError(f"{what} file {path} has {'at least ' if at_least else ''}{count:,} columns, more than the "
                        f"limit of {MAX_COLUMNS:,}; keep fewer columns in the file, or reduce them (e.g. with PCA) first")


def _refuse_twice(path: str, header: list[str], what: str) -> None:
    twice = sorted(name for name, n in Counter(header).items() if n > 1)
    if twice:  # pandas would rename the second 'a' to 'a.1' and use it as one more feature
        raise UserError(f"{what} file {path} names column(s) {', '.join(map(repr, twice[:10]))}"
                        f"{' and more' if len(twice) > 10 else ''} more than once; give every column its own name")


def csv_header(path: str) -> list[str]:
    """The column names of a CSV file, read from its first line before anything else is: a file
    with more than ``MAX_COLUMNS`` columns is refused after reading at most that many separators
    (the header is read a chunk at a time), a column named twice is refused."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        separators = 0
        while True:
            chunk = f.read(HEADER_CHUNK)
            end = min((i for i in (chunk.find("\n"), chunk.find("\r")) if i >= 0), default=-1)
            separators += chunk.count(",", 0, None if end < 0 else end)
            _refuse_wide(path, separators + 1, "CSV", at_least=end < 0)
            if end >= 0 or not chunk:
                break
        f.seek(0)
        header = next(csv.reader(f), [])  # the exact names: quoted commas and line breaks included
    _refuse_wide(path, len(header), "CSV")
    _refuse_twice(path, header, "CSV")
    return header


def read_csv(path: str) -> Any:
    """A CSV file with a header as a DataFrame; an unreadable file, one wider than ``MAX_COLUMNS``
    or a column named twice is a UserError (the header is checked before pandas reads the file)."""
    import pandas as pd

    existing_file("csv", path)
    try:
        csv_header(path)
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, csv.Error) as exc:
        raise UserError(f"cannot read CSV file {path}: {first_line(exc)}") from None


def read_parquet(path: str) -> Any:
    """A parquet file as a DataFrame (pandas and pyarrow); an unreadable file, one wider than
    ``MAX_COLUMNS`` (read from its schema first) or a column named twice is a UserError."""
    import pandas as pd
    import pyarrow

    import pyarrow.parquet

    existing_file("parquet", path)
    try:
        names = pyarrow.parquet.read_schema(path).names  # the footer only
        _refuse_wide(path, len(names), "parquet")
        _refuse_twice(path, [str(n) for n in names], "parquet")
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
    impute = check_impute(spec.options.get("impute"))
    encoding = table_columns(frame, names, path, impute)
    x, _ = encode_table(frame, encoding, path, line_numbers=what == "CSV", impute=impute)
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
                   columns=encoding, impute=impute)
