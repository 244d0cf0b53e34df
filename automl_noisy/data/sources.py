"""Sources: load raw features and labels from a source string such as ``digits`` or ``csv:my.csv``.

Each source is one loader function in ``LOADERS``; adding a source (an image folder, parquet) means
writing its loader and adding one entry there. Loaders return :class:`RawData` with labels encoded
as ``0..K-1``; the checks every source shares (two classes at least, enough samples per class)
run once in :func:`load_source`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from automl_noisy.data.spec import DataSpec
from automl_noisy.errors import UserError

#: Fewest samples a class needs so that the stratified test and validation splits can take some.
MIN_PER_CLASS = 3
#: Asymmetric noise for digits, the class map of Patrini et al., CVPR 2017 (2->7, 3->8, 5<->6, 7->1).
DIGITS_CLASS_MAP = ((2, 7), (3, 8), (5, 6), (6, 5), (7, 1))
SYNTHETIC_DEFAULTS = {"samples": 2000, "features": 20, "classes": 4}


@dataclass(frozen=True, eq=False)
class RawData:
    """Features and labels as a source gives them, before splitting and noise.

    ``y`` holds the source labels encoded as ``0..K-1``; ``class_names[k]`` is the original name of
    class ``k``. ``labels_trusted`` is true when the labels are known to be clean (built-in data).
    ``standardize`` asks for vector features to be standardized with the training split's statistics.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    labels_trusted: bool
    default_class_map: tuple[tuple[int, int], ...] | None = None
    standardize: bool = False


def encode_labels(values: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map the sorted unique label values to ``0..K-1``; names are their string forms."""
    if values.dtype.kind == "f" and np.all(np.mod(values, 1) == 0):
        values = values.astype(np.int64)
    uniques, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), tuple(str(u) for u in uniques)


def _no_path(name: str, path: str) -> None:
    if path:
        raise UserError(f"source {name!r} takes no path, got {name}:{path}; use --data {name}")


def _existing_file(kind: str, path: str) -> str:
    if not path:
        raise UserError(f"source {kind}: needs a file path, e.g. --data {kind}:my.{kind}")
    if not os.path.exists(path):
        raise UserError(f"data file not found: {path}")
    if not os.path.isfile(path):
        raise UserError(f"data path {path} is not a file; give a .{kind} file")
    return path


def load_digits_source(path: str, spec: DataSpec) -> RawData:
    """scikit-learn's 8x8 handwritten digits (1797 images, 10 classes), pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    _no_path("digits", path)
    digits = load_digits()
    x = (digits.data.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    names = tuple(str(c) for c in digits.target_names)
    return RawData(x, digits.target.astype(np.int64), names, True, DIGITS_CLASS_MAP)


def _int_option(options: dict, name: str, low: int) -> int:
    value = options.get(name, SYNTHETIC_DEFAULTS[name])
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise UserError(f"synthetic option {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def load_synthetic_source(path: str, spec: DataSpec) -> RawData:
    """scikit-learn's ``make_classification`` with clean labels; options samples, features, classes."""
    from sklearn.datasets import make_classification

    _no_path("synthetic", path)
    unknown = sorted(str(k) for k in spec.options if k not in SYNTHETIC_DEFAULTS)
    if unknown:
        raise UserError(f"unknown synthetic option(s) {', '.join(unknown)}; valid: {', '.join(SYNTHETIC_DEFAULTS)}")
    classes = _int_option(spec.options, "classes", 2)
    features = _int_option(spec.options, "features", 1)
    samples = _int_option(spec.options, "samples", 10 * classes)
    informative = min(features, max(2, features // 2, (classes - 1).bit_length()))
    if classes > 2**informative:
        raise UserError(f"synthetic data with {classes} classes needs features >= "
                        f"{(classes - 1).bit_length()}, got features={features}")
    x, y = make_classification(
        n_samples=samples, n_features=features, n_informative=informative, n_redundant=0,
        n_repeated=0, n_classes=classes, n_clusters_per_class=1, class_sep=1.0, flip_y=0.0,
        random_state=spec.seed,
    )
    return RawData(x.astype(np.float32), y.astype(np.int64), tuple(str(c) for c in range(classes)), True)


def _check_finite(x: np.ndarray, where: str) -> None:
    bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
    if bad:
        raise UserError(f"{where} has {bad} NaN or infinite value(s); clean or impute them before loading")


def load_csv_source(path: str, spec: DataSpec) -> RawData:
    """A CSV file with a header: ``spec.label_column`` holds the labels, every other column is a
    numeric feature."""
    import pandas as pd

    _existing_file("csv", path)
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise UserError(f"cannot read CSV file {path}: {str(exc).strip().splitlines()[0]}") from None
    columns = [str(c) for c in frame.columns]
    if spec.label_column not in columns:
        raise UserError(f"label column {spec.label_column!r} not in {path}; columns are: "
                        f"{', '.join(columns)}. Pass --label-column NAME")
    frame.columns = columns
    if len(frame) == 0:
        raise UserError(f"CSV file {path} has a header but no rows")
    features = frame.drop(columns=[spec.label_column])
    if features.shape[1] == 0:
        raise UserError(f"CSV file {path} has no feature columns besides the label column {spec.label_column!r}")
    text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if text:
        raise UserError(f"feature column(s) {', '.join(map(repr, text))} in {path} are not numeric; "
                        f"encode them as numbers or drop them")
    x = features.to_numpy(dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.all():
        counts = (~finite).sum(axis=0)
        bad = ", ".join(f"{c!r} ({n})" for c, n in zip(features.columns, counts) if n)
        raise UserError(f"feature column(s) {bad} in {path} hold NaN or infinite values; "
                        f"clean or impute them before loading")
    labels = frame[spec.label_column]
    missing = np.flatnonzero(labels.isna().to_numpy())
    if missing.size:
        lines = ", ".join(str(i + 2) for i in missing[:5])
        raise UserError(f"label column {spec.label_column!r} in {path} is empty on {missing.size} row(s) "
                        f"(file line(s) {lines}); drop those rows or fill in their labels")
    values = labels.to_numpy()
    values = values if pd.api.types.is_numeric_dtype(labels) else values.astype(str)
    y, names = encode_labels(values)
    return RawData(x.astype(np.float32), y, names, False, standardize=True)


def load_npz_source(path: str, spec: DataSpec) -> RawData:
    """A NumPy ``.npz`` archive with arrays ``X`` (n, ...) and ``y`` (n,); uint8 ``X`` is scaled by
    1/255. Pickled objects are never loaded."""
    import zipfile

    _existing_file("npz", path)
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
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read npz file {path}: {reason}") from None
    if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
        raise UserError(f"npz file {path}: X must have shape (n, ...) and y shape (n,); "
                        f"got X {x.shape} and y {y.shape}")
    if x.dtype.kind not in "biuf":
        raise UserError(f"npz file {path}: X must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    _check_finite(x, f"X in {path}")
    if y.dtype.kind not in "biufUS":
        raise UserError(f"npz file {path}: y must hold numbers or strings, got dtype {y.dtype}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise UserError(f"y in {path} has {int((~np.isfinite(y)).sum())} NaN or infinite label(s); "
                        f"drop those samples")
    codes, names = encode_labels(y.astype(str) if y.dtype.kind == "S" else y)
    return RawData(np.ascontiguousarray(x), codes, names, False, standardize=x.ndim == 2)


Loader = Callable[[str, DataSpec], RawData]
#: Source prefix -> loader. The part after ``prefix:`` is the loader's path argument.
LOADERS: dict[str, Loader] = {
    "digits": load_digits_source,
    "synthetic": load_synthetic_source,
    "csv": load_csv_source,
    "npz": load_npz_source,
}
#: File suffix -> source prefix, so ``--data my.csv`` means ``csv:my.csv``.
SUFFIXES = {".csv": "csv", ".npz": "npz"}
SOURCE_FORMS = "digits, synthetic, csv:PATH, npz:PATH"


def resolve_source(source: str) -> tuple[str, str]:
    """Split a source string into its prefix and path; a bare ``*.csv``/``*.npz`` path is inferred."""
    prefix, _, path = source.strip().partition(":")
    if prefix.lower() in LOADERS:
        return prefix.lower(), path.strip()
    suffix = os.path.splitext(source.strip())[1].lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix], source.strip()
    raise UserError(f"unknown data source {source!r}; use one of: {SOURCE_FORMS}")


def load_source(spec: DataSpec) -> RawData:
    """Load ``spec.source`` and check that it has two classes at least, each with enough samples."""
    prefix, path = resolve_source(spec.source)
    raw = LOADERS[prefix](path, spec)
    if len(raw.y) == 0:
        raise UserError(f"data {spec.source} has no samples")
    counts = np.bincount(raw.y, minlength=len(raw.class_names))
    if len(raw.class_names) < 2:
        raise UserError(f"data {spec.source} has a single class {raw.class_names[0]!r}; "
                        f"a classifier needs at least two")
    rare = [f"{raw.class_names[k]!r} ({counts[k]})" for k in np.flatnonzero(counts < MIN_PER_CLASS)]
    if rare:
        raise UserError(f"class(es) {', '.join(rare)} in {spec.source} have fewer than {MIN_PER_CLASS} "
                        f"samples, too few to split; add samples or drop those classes")
    return raw
