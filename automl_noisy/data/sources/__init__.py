"""Sources: load raw features and labels from a source string such as ``digits`` or ``csv:my.csv``.

Each source kind is one loader function in ``LOADERS`` (one module per kind in this package), with
the options it reads in ``OPTIONS``; adding a source means writing its loader and adding one entry
to each. Loaders return :class:`RawData` with labels encoded as ``0..K-1``; what every source
shares (options checked, a label file applied, two classes at least, enough samples per class)
runs once in :func:`load_source`. Loaders import their heavy libraries (pandas, PIL, torch,
torchvision) when called, so importing this package stays light.

| source | what |
|---|---|
| ``digits``, ``synthetic`` | built-in (:mod:`.builtin`) |
| ``csv:PATH``, ``parquet:PATH`` | a table; numeric and one-hot categorical features (:mod:`.tabular`) |
| ``npz:PATH`` | arrays ``X`` and ``y`` (:mod:`.arrays`) |
| ``folder:PATH`` | one sub-folder of images per class (:mod:`.images`) |
| ``torchvision:NAME:ROOT`` | CIFAR10, CIFAR100, MNIST, FashionMNIST already under ROOT (:mod:`.vision_roots`) |
| ``memory:KEY`` | arrays or a DataFrame held by this process (:mod:`.memory`, for the Python API) |
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import numpy as np

from automl_noisy.data.sources.arrays import load_npz_source
from automl_noisy.data.sources.base import MIN_PER_CLASS, RawData, check_options, encode_labels
from automl_noisy.data.sources.builtin import (DIGITS_CLASS_MAP, SYNTHETIC_DEFAULTS, load_digits_source,
                                               load_synthetic_source)
from automl_noisy.data.sources.images import load_folder_source
from automl_noisy.data.sources.labels import apply_label_file
from automl_noisy.data.sources.memory import load_memory_source
from automl_noisy.data.sources.tabular import load_csv_source, load_parquet_source
from automl_noisy.data.sources.vision_roots import DATASETS, load_torchvision_source
from automl_noisy.data.spec import DataSpec
from automl_noisy.errors import UserError

Loader = Callable[[str, DataSpec], RawData]
#: Source prefix -> loader. The part after ``prefix:`` is the loader's path argument.
LOADERS: dict[str, Loader] = {
    "digits": load_digits_source,
    "synthetic": load_synthetic_source,
    "csv": load_csv_source,
    "parquet": load_parquet_source,
    "npz": load_npz_source,
    "folder": load_folder_source,
    "torchvision": load_torchvision_source,
    "memory": load_memory_source,
}
#: Source prefix -> the options its loader reads (``labels`` applies to every source).
OPTIONS: dict[str, tuple[str, ...]] = {
    "digits": (), "synthetic": tuple(SYNTHETIC_DEFAULTS), "csv": ("columns", "impute"), "parquet": ("columns", "impute"),
    "npz": (), "folder": ("image_size",), "torchvision": (), "memory": (),
}
#: File suffix -> source prefix, so ``--data my.csv`` means ``csv:my.csv``.
SUFFIXES = {".csv": "csv", ".npz": "npz", ".parquet": "parquet", ".pq": "parquet"}
SOURCE_FORMS = "digits, synthetic, csv:PATH, npz:PATH, parquet:PATH, folder:PATH, torchvision:NAME:ROOT"

__all__ = ["DIGITS_CLASS_MAP", "LOADERS", "MIN_PER_CLASS", "OPTIONS", "RawData", "SOURCE_FORMS", "SUFFIXES",
           "encode_labels", "load_source", "resolve_source"]


def resolve_source(source: str) -> tuple[str, str]:
    """Split a source string into its prefix and path; a bare ``*.csv``/``*.parquet``/``*.npz`` path
    or an existing folder is inferred."""
    prefix, colon, path = source.strip().partition(":")
    if prefix.lower() in LOADERS:
        return prefix.lower(), path.strip()
    if colon and re.fullmatch(r"[A-Za-z][A-Za-z0-9_+-]+", prefix) and not os.path.exists(source.strip()):
        raise UserError(f"unknown data source kind {prefix!r} in {source!r}; use one of: {SOURCE_FORMS}")
    suffix = os.path.splitext(source.strip())[1].lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix], source.strip()
    if os.path.isdir(source.strip()):
        return "folder", source.strip()
    known = {d.lower(): d for d in DATASETS}.get(prefix.strip().lower())
    hint = f" (for {known}, torchvision:{known}:ROOT with its files under ROOT)" if known else ""
    raise UserError(f"unknown data source {source!r}; use one of: {SOURCE_FORMS}{hint}")


def load_source(spec: DataSpec) -> RawData:
    """Load ``spec.source``, apply a label file (option ``labels``), and check that there are two
    classes at least, each with enough samples."""
    prefix, path = resolve_source(spec.source)
    check_options(prefix, spec.options, OPTIONS[prefix])
    raw = LOADERS[prefix](path, spec)
    if len(raw.y) == 0:
        raise UserError(f"data {spec.source} has no samples")
    if len(raw.class_names) < 2:
        raise UserError(f"data {spec.source} has a single class {raw.class_names[0]!r}; "
                        f"a classifier needs at least two")
    if spec.options.get("labels") is not None:
        raw = apply_label_file(raw, spec.options["labels"], spec.source)
    counts = np.bincount(raw.y, minlength=len(raw.class_names))
    rare = [f"{raw.class_names[k]!r} ({counts[k]})" for k in np.flatnonzero(counts < MIN_PER_CLASS)]
    if rare:
        raise UserError(f"class(es) {', '.join(rare)} in {spec.source} have fewer than {MIN_PER_CLASS} "
                        f"samples, too few to split; add samples or drop those classes")
    return raw
