"""Data held in memory: arrays or a DataFrame handed to :class:`automl_noisy.NoisyLabelSearch`.

``hold(X, y)`` keeps them under a key made from their content and returns the source string
``memory:KEY``; a search, an export and a training run in this process then load them like any file
(a DataFrame as a table, arrays as an ``.npz`` archive's). ``release`` drops them. The key names the
data in a study, so a study made in memory can be opened later, but its data cannot: it existed only
in the process that held it. ``hold_trusted(rows, labels)`` keeps trusted rows (row ids and class
ids) the same way, for the option ``trusted`` (see :mod:`automl_noisy.data.trusted`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from automl_noisy.data.sources.arrays import arrays_to_raw
from automl_noisy.data.sources.base import RawData
from automl_noisy.data.spec import DataSpec
from automl_noisy.errors import UserError

_HELD: dict[str, tuple[Any, np.ndarray]] = {}
_TRUSTED: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _digest(x: Any, y: np.ndarray) -> str:
    import pandas as pd

    digest = hashlib.sha256()
    if isinstance(x, pd.DataFrame):
        digest.update(repr([(str(c), str(t)) for c, t in x.dtypes.items()]).encode())
        digest.update(pd.util.hash_pandas_object(x, index=False).to_numpy().tobytes())
    else:
        digest.update(repr((x.shape, str(x.dtype))).encode())
        digest.update(np.ascontiguousarray(x).tobytes())
    digest.update(repr((y.shape, str(y.dtype))).encode())
    digest.update(np.ascontiguousarray(y).astype(str).tobytes() if y.dtype.kind == "O" else np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()[:16]


def hold(x: Any, y: np.ndarray) -> str:
    """Keep features ``x`` (an array, or a DataFrame of feature columns) and labels ``y`` in this
    process; returns the source string that loads them."""
    key = _digest(x, y)
    _HELD[key] = (x, y)
    return f"memory:{key}"


def release(source: str) -> None:
    """Drop what ``hold`` or ``hold_trusted`` kept under ``source`` (nothing if it holds nothing)."""
    _HELD.pop(source.partition(":")[2], None)
    _TRUSTED.pop(source.partition(":")[2], None)


def hold_trusted(rows: np.ndarray, labels: np.ndarray) -> str:
    """Keep trusted row ids and their class ids (``0..K-1``) in this process; returns the value of the
    option ``trusted`` that reads them (``memory:KEY``, KEY made from their content)."""
    rows, labels = np.asarray(rows, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    key = _digest(rows, labels)
    _TRUSTED[key] = (rows, labels)
    return f"memory:{key}"


def held_trusted(text: str) -> tuple[np.ndarray, np.ndarray]:
    """The row ids and class ids ``hold_trusted`` kept under ``text`` (``memory:KEY``)."""
    key = text.partition(":")[2]
    if key not in _TRUSTED:
        raise UserError(f"trusted rows {text} existed only in the Python process that fit them; pass them again")
    return _TRUSTED[key]


def load_memory_source(path: str, spec: DataSpec) -> RawData:
    """The arrays or DataFrame held under key ``path``; a DataFrame's labels go into the column
    ``spec.label_column``."""
    import pandas as pd

    from automl_noisy.data.sources.tabular import frame_to_raw

    if path not in _HELD:
        raise UserError(f"data memory:{path} existed only in the Python process that fit it; "
                        "pass the data again (e.g. --data with a file)")
    x, y = _HELD[path]
    if isinstance(x, pd.DataFrame):
        frame = x.copy()
        frame[spec.label_column] = np.asarray(y)
        return frame_to_raw(frame, "the DataFrame", spec, "DataFrame")
    return arrays_to_raw(np.asarray(x), np.asarray(y), "the arrays")
