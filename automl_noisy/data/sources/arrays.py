"""NumPy ``.npz`` archives: arrays ``X`` (any shape) and ``y``; and arrays held in memory.

An array of uint8 is taken as 8-bit pixels: divided by 255 (``PIXEL_SCALE``, recorded with a
trained model so that new arrays of 0-255 values, uint8 or not, are divided alike). Other arrays
are taken as they are (2-D ones are then standardized by ``load_data``).
"""

from __future__ import annotations

import numpy as np

from automl_noisy.data.preprocessing import PIXEL_SCALE, Scale
from automl_noisy.data.sources.base import RawData, check_finite, encode_labels, existing_file, first_line
from automl_noisy.data.spec import DataSpec
from automl_noisy.errors import UserError


def read_npz(path: str, labels: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Arrays ``X`` and ``y`` of an ``.npz`` archive (``y`` None when absent and ``labels`` is
    false: new rows to predict). Pickled objects are never loaded."""
    import zipfile

    existing_file("npz", path)
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise UserError(f"{path} is not an .npz archive; save it with numpy.savez(path, X=..., y=...)")
        with archive:
            keys = sorted(archive.files)
            if "X" not in keys or ("y" not in keys and labels):
                need = "arrays 'X' and 'y'" if labels else "an array 'X'"
                raise UserError(f"npz file {path} needs {need}; it holds: "
                                f"{', '.join(keys) or 'nothing'}. Save it with numpy.savez(path, X=..., y=...)")
            return _plain_array(archive, "X", path), _plain_array(archive, "y", path) if "y" in keys else None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"cannot read npz file {path}: {first_line(exc)}") from None


def _plain_array(archive: np.lib.npyio.NpzFile, key: str, path: str) -> np.ndarray:
    """Array ``key`` of an open archive; an array of Python objects (labels mixing numbers and
    strings, say) is stored pickled, and a pickle is never loaded."""
    try:
        return archive[key]
    except ValueError as exc:
        if "allow_pickle" not in str(exc):  # numpy's refusal to unpickle names the flag
            raise
    fix = "as numbers, e.g. X=numpy.asarray(X, dtype=float)" if key == "X" else \
        "as numbers or as strings, e.g. y=numpy.asarray(y, dtype=str)"
    raise UserError(f"array {key!r} in npz file {path} holds Python objects (e.g. numbers mixed with strings), "
                    f"which are stored pickled and never loaded; save it {fix} in numpy.savez")


def numeric_samples(x: np.ndarray, where: str) -> np.ndarray:
    """Samples ``(n, ...)`` of numbers as float32, every value finite (in float32), else a UserError."""
    if x.ndim < 2:
        raise UserError(f"{where} must have shape (n, ...) with one sample per row; got {x.shape}")
    if x.dtype.kind not in "biuf":
        raise UserError(f"{where} must be numeric, got dtype {x.dtype}")
    samples = np.ascontiguousarray(x, dtype=np.float32)
    check_finite(samples, where)
    return samples


def array_features(x: np.ndarray, where: str) -> tuple[np.ndarray, Scale | None]:
    """Training features ``(n, ...)`` as float32 and the scale they were divided by: uint8 by 255
    (``PIXEL_SCALE``), other numbers not at all (None)."""
    samples = numeric_samples(x, where)
    if x.dtype == np.uint8:
        return PIXEL_SCALE.apply(samples), PIXEL_SCALE
    return samples, None


def arrays_to_raw(x: np.ndarray, y: np.ndarray, where: str) -> RawData:
    """Features ``x`` (n, ...) and labels ``y`` (n,) of numbers or strings; 2-D features are
    standardized by ``load_data``."""
    if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
        raise UserError(f"{where}: X must have shape (n, ...) and y shape (n,); got X {x.shape} and y {y.shape}")
    x, scale = array_features(x, f"X in {where}")
    if y.dtype.kind not in "biufUS":
        raise UserError(f"{where}: y must hold numbers or strings, got dtype {y.dtype}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise UserError(f"y in {where} has {int((~np.isfinite(y)).sum())} NaN or infinite label(s); "
                        f"drop those samples")
    codes, names = encode_labels(y.astype(str) if y.dtype.kind == "S" else y)
    return RawData(x, codes, names, False, standardize=x.ndim == 2, scale=scale)


def load_npz_source(path: str, spec: DataSpec) -> RawData:
    """A NumPy ``.npz`` archive with arrays ``X`` (n, ...) and ``y`` (n,); uint8 ``X`` is divided by
    255. Pickled objects are never loaded."""
    x, y = read_npz(path)
    assert y is not None
    return arrays_to_raw(x, y, f"npz file {path}")
