"""load_data: source -> stratified splits -> standardized features -> injected noise.

A test split is held out only when clean labels are known (built-in data, injected noise, a label
file): a user's own labels are all possibly wrong, so a test split of them could not score anything
honestly, and its rows train and validate instead (``test_fraction`` is then unused).

The splits are stratified on the source's labels. When a label file replaces them (option
``labels``), its labels are the training and validation labels (noise from ``spec.noise`` is
injected on top of them, if any), the source's labels are the clean ones, and the test labels are
the source's.

With ``--impute median`` (option ``impute`` of a table), the missing values a table source left as
NaN are filled with each column's median on the training split, before standardization; the
fingerprint is the source's, NaN included, so it differs from that of any data without gaps.

Trusted rows (option ``trusted``, a file, or ``trusted_fraction``, drawn stratified on the clean
labels from the training pool after the noise is injected) get their verified labels in ``y_train``
and ``y_val``, in place of the noisy ones (which ``y_train_given`` and ``y_val_given`` keep); they
are marked by ``trusted_train`` and ``trusted_val`` and are part of the fingerprint. A trusted row in
the test split is refused, and ``trusted_fraction`` needs the clean labels (see
:mod:`automl_noisy.data.trusted`).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from automl_noisy.data.dataset import NoisyDataset
from automl_noisy.data.noise import inject_noise, parse_noise
from automl_noisy.data.limits import MAX_SAMPLE_VALUES, check_values
from automl_noisy.data.preprocessing import Preprocessing, apply_standardization, fit_standardization
from automl_noisy.data.sources import RawData, load_source, resolve_source
from automl_noisy.data.spec import DataSpec
from automl_noisy.data.tables import fill_missing, fit_medians
from automl_noisy.data.trusted import NONE, draw_trusted, read_trusted, refuse_test_rows, trusted_key
from automl_noisy.errors import UserError


def fingerprint(x: np.ndarray, y: np.ndarray, given: np.ndarray | None = None,
                trusted: np.ndarray | None = None) -> str:
    """The first 16 hex digits of the sha256 of the source features and labels (shape included),
    of the labels of a label file that replace them, and of the trusted rows with their labels (see
    :func:`automl_noisy.data.trusted.trusted_key`), when there are some."""
    digest = hashlib.sha256()
    arrays = [np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y, dtype=np.int64)]
    if given is not None:
        arrays.append(np.ascontiguousarray(given, dtype=np.int64))
    if trusted is not None:
        digest.update(b"trusted")
        arrays.append(np.ascontiguousarray(trusted, dtype=np.int64))
    for array in arrays:
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def _stratified_split(index: np.ndarray, y: np.ndarray, fraction: float, seed: int,
                      what: str, flag: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    num_classes = len(np.unique(y))
    held_out = math.ceil(fraction * len(index))
    if held_out < num_classes or len(index) - held_out < num_classes:
        raise UserError(f"{len(index)} samples are too few for a stratified {what} split of "
                        f"{fraction:g} over {num_classes} classes; use more data or change {flag}")
    try:
        keep, out = train_test_split(index, test_size=fraction, stratify=y, random_state=seed)
    except ValueError as exc:
        raise UserError(f"cannot make a stratified {what} split: {exc}; use more data or change {flag}") from None
    return np.sort(keep), np.sort(out)


def split_indices(y: np.ndarray, spec: DataSpec, seq: np.random.SeedSequence,
                  with_test: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train, validation and test row indices (each sorted): ``test_fraction`` of all
    rows go to test, then ``val_fraction`` of the rest to validation. Without a test split
    (``with_test=False``) every row is train or validation."""
    test_seed, val_seed = (int(s) for s in seq.generate_state(2))
    if with_test:
        rest, test = _stratified_split(np.arange(len(y)), y, spec.test_fraction, test_seed, "test",
                                       "--test-fraction")
    else:
        rest, test = np.arange(len(y)), np.arange(0)
    train, val = _stratified_split(rest, y[rest], spec.val_fraction, val_seed, "validation", "--val-fraction")
    return train, val, test


def load_data(spec: DataSpec) -> NoisyDataset:
    """Build the split, noised arrays that ``spec`` describes; the same spec gives identical arrays.

    >>> data = load_data(DataSpec(source="digits", noise="symmetric:0.4"))
    >>> data.num_classes, data.input_shape, round(data.noise_rate, 2)
    (10, (1, 8, 8), 0.4)
    """
    noise = parse_noise(spec.noise)
    raw: RawData = load_source(spec)
    check_values(int(np.prod(raw.x.shape[1:])), MAX_SAMPLE_VALUES, f"one sample of {spec.source} (shape "
                 f"{tuple(raw.x.shape[1:])})", "no network here takes that; make the samples smaller")
    clean_known = raw.labels_trusted or noise.kind != "none" or raw.given_labels is not None
    split_seq, train_seq, val_seq = np.random.SeedSequence(spec.seed).spawn(3)
    # Test labels as noisy as the rest could score nothing honestly: without clean labels every row
    # trains or validates.
    train, val, test = split_indices(raw.y, spec, split_seq, with_test=clean_known)
    features, columns = raw.x, raw.columns
    if raw.impute:
        columns = fit_medians(features[train], columns, spec.source)
        features, _ = fill_missing(features, columns)
    x_train, x_val, x_test = features[train], features[val], features[test]
    mean = std = None
    if raw.standardize and raw.x.ndim == 2:
        mean, std = fit_standardization(x_train, raw.unscaled_columns)
        x_train, x_val, x_test = (apply_standardization(x, mean, std) for x in (x_train, x_val, x_test))
    preprocessing = Preprocessing(
        source=resolve_source(spec.source)[0], input_shape=tuple(raw.x.shape[1:]), columns=columns,
        label_column=spec.label_column if raw.columns else None,
        mean=None if mean is None else tuple(float(v) for v in mean),
        std=None if std is None else tuple(float(v) for v in std), image_size=raw.image_size, scale=raw.scale,
        impute=raw.impute)
    num_classes = len(raw.class_names)
    given = raw.y if raw.given_labels is None else raw.given_labels  # a label file's labels replace y

    def noised(rows: np.ndarray, x: np.ndarray, seq: np.random.SeedSequence) -> np.ndarray:
        rng = np.random.default_rng(seq)
        return inject_noise(given[rows], noise, num_classes, rng, x=x, default_class_map=raw.default_class_map)

    def contiguous(a: np.ndarray, dtype: type) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=dtype)

    y_train, y_val = noised(train, x_train, train_seq), noised(val, x_val, val_seq)
    verified = _trusted_labels(spec, raw, train, val, test, clean_known)
    masks: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    trusted = None
    given_labels: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    if verified is not None:
        given_labels = (contiguous(y_train, np.int64), contiguous(y_val, np.int64))  # before the replacement
        masks = (verified[train] != NONE, verified[val] != NONE)
        y_train, y_val = (np.where(m, verified[rows], y) for m, rows, y in zip(masks, (train, val), (y_train, y_val)))
        rows = np.flatnonzero(verified != NONE)
        trusted = trusted_key(rows, verified[rows])

    return NoisyDataset(
        spec=spec,
        x_train=contiguous(x_train, np.float32),
        y_train=contiguous(y_train, np.int64),
        x_val=contiguous(x_val, np.float32),
        y_val=contiguous(y_val, np.int64),
        x_test=contiguous(x_test, np.float32),
        y_test=contiguous(raw.y[test], np.int64),
        num_classes=num_classes,
        class_names=raw.class_names,
        train_index=contiguous(train, np.int64),
        val_index=contiguous(val, np.int64),
        y_train_clean=contiguous(raw.y[train], np.int64) if clean_known else None,
        y_val_clean=contiguous(raw.y[val], np.int64) if clean_known else None,
        fingerprint=fingerprint(raw.x, raw.y, raw.given_labels, trusted),
        preprocessing=preprocessing,
        trusted_train=masks[0],
        trusted_val=masks[1],
        y_train_given=given_labels[0],
        y_val_given=given_labels[1],
    )


def _trusted_labels(spec: DataSpec, raw: RawData, train: np.ndarray, val: np.ndarray, test: np.ndarray,
                    clean_known: bool) -> np.ndarray | None:
    """Per source row, its trusted label (``NONE`` where it has none), or None when no row is trusted."""
    text, fraction = spec.options.get("trusted"), spec.options.get("trusted_fraction")
    if text is None and fraction is None:
        return None
    verified = np.full(len(raw.y), NONE, dtype=np.int64)
    if text is not None:
        rows, labels = read_trusted(str(text).strip(), raw.class_names, len(raw.y))
        refuse_test_rows(rows, test, str(text).strip())
    else:
        if not clean_known:
            raise UserError(f"--trusted-fraction keeps the clean labels of some rows, but the clean labels of "
                            f"{spec.source} are unknown (no injected noise, no label file); pass --trusted FILE "
                            "with the rows you verified, or inject noise with --noise")
        pool = np.concatenate([train, val])
        rows = draw_trusted(pool, raw.y[pool], float(fraction), spec.seed)
        labels = raw.y[rows]
    verified[rows] = labels
    return verified
