"""New rows to predict: read from any source the search accepts, labels or not, and turned into
network inputs with a trained model's :class:`~automl_noisy.data.preprocessing.Preprocessing`.

What each source gives, and what is done with what does not match the model:

- **csv, parquet**: the model's feature columns, found by name (order does not matter). Other
  columns, the label column among them, are ignored. A missing feature column is an error; a
  category the model never saw gets all-zero one-hot columns (a note says which). Missing values
  are an error, unless the model was trained with ``--impute median``: they are then filled as in
  training (a numeric column's with its training median, a categorical column's as its own
  category) and a note says how many. A file with a header and no rows is an error.
- **npz** (and arrays in Python): an array ``X`` (``y`` may be there or not) of the model's input
  shape, **in the units of the source the model learned from**, uint8 or not: digits' pixels 0-16,
  image pixels 0-255 (image folders, torchvision roots, an npz of uint8), which are divided as
  training divided them (by 16, by 255; the model card's ``scale``); a table's or a float array's
  values as they are. Then the training standardization, if any. For a source with a fixed range,
  values far outside it, or all in [0, 1] with fractions (already divided), are refused with the
  range and the division in the message. Another shape is an error.
- **folder**: every image below the folder (a folder of class sub-folders, or just images), in the
  order training reads a class tree: images at the top first, then each sub-folder in name order.
  Images are decoded at the model's image size (resized, the aspect ratio not kept), converted to
  its channels (colour to grayscale or the reverse; a note says how many) and their pixels divided
  by 255. A symbolic link, or anything named like an image that is not a regular file (a FIFO, a
  socket, a device), is an error naming it, before any image is opened.
- **digits, synthetic, torchvision**: the built-in data, all rows, with the model's own options.

Each row keeps its position in the source (``index``: the row of a table or array, the n-th image),
as ``label_issues.csv`` numbers a training file's rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from automl_noisy.data.preprocessing import PIXEL_SCALE, Preprocessing
from automl_noisy.data.sources import LOADERS, resolve_source
from automl_noisy.data.sources.arrays import numeric_samples, read_npz
from automl_noisy.data.sources.base import GENERIC_OPTIONS
from automl_noisy.data.sources.images import (IMAGE_EXTENSIONS, check_decoded_size, decode_image, image_files,
                                              refuse_link, refuse_special)
from automl_noisy.data.sources.tabular import read_csv, read_parquet
from automl_noisy.data.spec import DataSpec
from automl_noisy.data.tables import encode_table, fill_missing
from automl_noisy.errors import UserError

BUILTIN = ("digits", "synthetic", "torchvision")


@dataclass
class Inputs:
    """Network inputs ``x`` of new rows, each row's ``index`` in its source, image ``paths``
    (relative to the folder) when the source is a folder, and ``notes`` on what was adapted."""

    x: np.ndarray
    index: np.ndarray
    paths: list[str] | None = None
    notes: list[str] = field(default_factory=list)


def read_inputs(source: str, preprocessing: Preprocessing, trained_on: DataSpec | None = None) -> Inputs:
    """The rows of ``source`` (a ``--data`` string) as inputs of a model with ``preprocessing``;
    ``trained_on`` is the model's data spec (a built-in source reuses its options and seed)."""
    kind, path = resolve_source(source)
    if kind in ("csv", "parquet"):
        frame = read_csv(path) if kind == "csv" else read_parquet(path)  # as training reads them
        return frame_inputs(frame, preprocessing, path, line_numbers=kind == "csv")
    if preprocessing.table:
        raise UserError(f"the model reads {preprocessing.describe_input()}; give a CSV or parquet file "
                        f"with those columns, not {kind} data")
    if kind == "npz":
        x, _ = read_npz(path, labels=False)
        return array_inputs(x, preprocessing, f"X in {path}")
    if kind == "folder":
        return folder_inputs(path, preprocessing)
    if kind in BUILTIN:
        spec = DataSpec(source=source)
        if trained_on is not None and resolve_source(trained_on.source)[0] == kind:  # e.g. synthetic's size and seed
            spec = DataSpec(source=source, seed=trained_on.seed,
                            options={k: v for k, v in trained_on.options.items() if k not in GENERIC_OPTIONS})
        raw = LOADERS[kind](path, spec)
        return Inputs(preprocessing.finish(raw.x, source), np.arange(len(raw.x)))
    raise UserError(f"data {source!r} cannot be predicted on: it existed only in the process that trained the "
                    "model; give a file")


def frame_inputs(frame: Any, preprocessing: Preprocessing, where: str, line_numbers: bool = False) -> Inputs:
    """A DataFrame's rows (feature columns found by name; others ignored) as inputs."""
    if not preprocessing.table:
        raise UserError(f"the model reads {preprocessing.describe_input()}, not the columns of a table "
                        f"({where})")
    frame = frame.rename(columns=str)
    missing = [c.name for c in preprocessing.columns if c.name not in frame.columns]
    if missing:
        raise UserError(f"{where} lacks the feature column(s) {', '.join(map(repr, missing))} the model was "
                        f"trained on; its columns are: {', '.join(map(str, frame.columns))}")
    if len(frame) == 0:
        raise UserError(f"{where} has a header but no rows: there is nothing to predict; give rows")
    x, unseen = encode_table(frame, preprocessing.columns, where, line_numbers, impute=preprocessing.impute,
                             missing_fix="the model was trained without --impute median, so fill them in (or train "
                                         "it again with --impute median)")
    x, filled = fill_missing(x, preprocessing.columns)
    notes = [f"column {name!r} holds {len(values)} categor{'y' if len(values) == 1 else 'ies'} the model never saw "
             f"({', '.join(map(repr, values[:5]))}{', ...' if len(values) > 5 else ''}): encoded as none of its "
             "categories (all-zero one-hot columns)" for name, values in unseen.items()]
    if filled:
        notes.append(f"{sum(filled.values())} missing value(s) filled with the training split's median of their "
                     f"column, as in training: {', '.join(f'{name!r} ({n})' for name, n in filled.items())}")
    return Inputs(preprocessing.finish(x, where), np.arange(len(frame)), notes=notes)


def array_inputs(x: Any, preprocessing: Preprocessing, where: str) -> Inputs:
    """An array of samples, in the units of the model's training source (see the module docstring),
    as inputs; a table model takes a 2-D array of its columns in training order."""
    x = np.asarray(x)
    if preprocessing.table:
        import pandas as pd

        names = [c.name for c in preprocessing.columns]
        if x.ndim != 2 or x.shape[1] != len(names):
            raise UserError(f"{where} has shape {x.shape}; the model reads {len(names)} columns "
                            f"({', '.join(names)}): pass an array (n, {len(names)}) or a DataFrame")
        return frame_inputs(pd.DataFrame(x, columns=names), preprocessing, where)
    if x.ndim == len(preprocessing.input_shape):  # one sample
        raise UserError(f"{where} has shape {x.shape}: one sample; pass a batch of shape "
                        f"(n, {', '.join(map(str, preprocessing.input_shape))}), e.g. x[None]")
    if x.ndim >= 2 and len(x) == 0:
        raise UserError(f"{where} holds no samples (shape {x.shape}): there is nothing to predict")
    samples = preprocessing.from_source_units(numeric_samples(x, where), where, x.dtype)
    return Inputs(preprocessing.finish(samples, where), np.arange(len(samples)))


def image_paths(root: str) -> list[str]:
    """The images below ``root`` in the order training reads a class tree: files at the top first,
    then each (not hidden) sub-folder in name order. A symbolic link, or an entry named like an
    image that is not a regular file, is an error."""
    entries = sorted(os.scandir(root), key=lambda e: e.name)
    for entry in entries:
        refuse_link(entry.path)
    top = [e.path for e in entries if e.name.lower().endswith(IMAGE_EXTENSIONS) and not e.is_dir()]
    for path in top:
        refuse_special(path)
    paths = list(top)
    for entry in entries:
        if entry.is_dir() and not entry.name.startswith("."):
            paths += image_files(entry.path)
    return paths


def folder_inputs(root: str, preprocessing: Preprocessing) -> Inputs:
    """Every image below ``root`` decoded at the model's size and channels, pixels divided by 255."""
    if not os.path.isdir(root):
        raise UserError(f"image folder not found: {root}")
    if not preprocessing.images:
        raise UserError(f"the model reads {preprocessing.describe_input()}; an image folder cannot feed it")
    channels, size = preprocessing.input_shape[0], preprocessing.input_shape[1]
    paths = image_paths(root)
    if not paths:
        raise UserError(f"image folder {root} has no images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)})")
    check_decoded_size(len(paths), size, root)
    decoded = [decode_image(p, size, channels) for p in paths]
    x = np.stack([pixels for pixels, _ in decoded])
    x = x[:, None] if channels == 1 else x.transpose(0, 3, 1, 2)
    converted = sum(1 for _, gray in decoded if gray != (channels == 1))
    notes = [f"{converted} {'colour' if channels == 1 else 'grayscale'} image(s) converted to "
             f"{'grayscale' if channels == 1 else 'colour'}: the model takes {channels} channel(s)"] if converted else []
    relative = [os.path.relpath(p, root) for p in paths]
    return Inputs(preprocessing.finish(PIXEL_SCALE.apply(x), root), np.arange(len(paths)), relative, notes)
