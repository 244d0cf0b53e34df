"""NumPy ``.npz`` archives: arrays ``X`` (any shape) and ``y``."""

from __future__ import annotations

import numpy as np

from automl_noisy.data.sources.base import RawData, check_finite, encode_labels, existing_file, first_line
from automl_noisy.data.spec import DataSpec
from automl_noisy.errors import UserError


def load_npz_source(path: str, spec: DataSpec) -> RawData:
    """A NumPy ``.npz`` archive with arrays ``X`` (n, ...) and ``y`` (n,); uint8 ``X`` is scaled by
    1/255. Pickled objects are never loaded."""
    import zipfile

    existing_file("npz", path)
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise UserError(f"{path} is not an .npz archive; save it with numpy.savez(path, X=..., y=...)")
        with archive:
            keys = sorted(archive.files)
            if "X" not in keys or "y" not in keys:
                raise UserError(f"npz file {path} needs arrays 'X' and 'y'; it holds: "
                                f"{', '.join(keys) or 'nothing'}. Save it with numpy.savez(path, X=..., y=...)")
            x, y = archive["X"], archive["y"]
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"cannot read npz file {path}: {first_line(exc)}") from None
    if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
        raise UserError(f"npz file {path}: X must have shape (n, ...) and y shape (n,); "
                        f"got X {x.shape} and y {y.shape}")
    if x.dtype.kind not in "biuf":
        raise UserError(f"npz file {path}: X must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    check_finite(x, f"X in {path}")
    if y.dtype.kind not in "biufUS":
        raise UserError(f"npz file {path}: y must hold numbers or strings, got dtype {y.dtype}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise UserError(f"y in {path} has {int((~np.isfinite(y)).sum())} NaN or infinite label(s); "
                        f"drop those samples")
    codes, names = encode_labels(y.astype(str) if y.dtype.kind == "S" else y)
    return RawData(np.ascontiguousarray(x), codes, names, False, standardize=x.ndim == 2)
