"""DataSpec: which data to load, which noise to inject, and how to split it.

A DataSpec is plain data: it round-trips through YAML (``to_dict``/``from_dict``) and is stored in
every exported pipeline, so the same spec always rebuilds the same arrays.

>>> spec = DataSpec(source="synthetic", noise="symmetric:0.2", options={"samples": 500})
>>> DataSpec.from_dict(spec.to_dict()) == spec
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from automl_noisy.data.noise import parse_noise
from automl_noisy.errors import UserError

#: The largest seed: NumPy's and scikit-learn's random states take 32 bits.
MAX_SEED = 2**32 - 1
#: The smallest share of the data left for training once test and validation are held out.
MIN_TRAIN_SHARE = 0.1


def _is_number(value: Any) -> bool:
    """A real number, not a bool and not NaN."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and not math.isnan(value)


def _check_fraction(name: str, value: Any) -> None:
    if not _is_number(value):
        raise UserError(f"data.{name} must be a number in (0, 1), got {value!r}")
    if not 0.0 < value < 1.0:
        raise UserError(f"data.{name}={value} is outside (0, 1); pass a fraction such as 0.1")


def _check_trusted(options: Mapping[str, Any]) -> None:
    """The options ``trusted`` (a file name) and ``trusted_fraction`` (in (0, 1)), never both."""
    trusted, fraction = options.get("trusted"), options.get("trusted_fraction")
    if trusted is not None and fraction is not None:
        raise UserError("--trusted names the trusted rows and --trusted-fraction draws them: pass one of the two")
    if trusted is not None and (not isinstance(trusted, str) or not trusted.strip()):
        raise UserError(f"option trusted (--trusted) must name a .csv or .npz file of row,label, got {trusted!r}")
    if fraction is None:
        return
    if not _is_number(fraction) or not 0.0 < fraction < 1.0:
        raise UserError(f"option trusted_fraction (--trusted-fraction) must be a number in (0, 1), got {fraction!r}; "
                        "pass a share of the training rows such as 0.05")


@dataclass(frozen=True)
class DataSpec:
    """Where the data comes from, the noise injected into it, and the split.

    ``source`` is ``digits``, ``synthetic``, ``csv:PATH``, ``parquet:PATH``, ``npz:PATH``,
    ``folder:PATH`` or ``torchvision:NAME:ROOT`` (see :mod:`automl_noisy.data.sources`). ``noise`` is
    a noise spec (see :func:`automl_noisy.data.noise.parse_noise`). ``test_fraction`` of the data is
    held out as the test split, then ``val_fraction`` of the rest as the (noisy) validation split.
    ``folds`` > 1 makes model selection cross-validated: the training pool (train + validation) is
    cut into that many stratified folds (see :mod:`automl_noisy.data.folds`); 1 keeps the holdout.
    ``seed`` drives synthetic generation, the splits and the noise. ``options`` are plain values:
    ``samples``, ``features`` and ``classes`` for ``synthetic``; ``columns`` (a list of feature
    columns) and ``impute`` (``median``: fill missing feature values, see
    :mod:`automl_noisy.data.tables`) for ``csv`` and ``parquet``; ``image_size`` for ``folder``; and, for every source,
    ``labels`` (``FILE[:KEY]``, a label file whose labels replace the source's, see
    :mod:`automl_noisy.data.sources.labels`), ``trusted`` (a ``.csv`` or ``.npz`` file of trusted rows
    and their verified labels) or ``trusted_fraction`` (a share of the training pool kept clean and
    trusted, where clean labels are known), one of the two at most (see :mod:`automl_noisy.data.trusted`).
    """

    source: str = "digits"
    noise: str = "none"
    label_column: str = "label"
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    folds: int = 1
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("source", "noise", "label_column"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise UserError(f"data.{name} must be a non-empty string, got {value!r}")
        _check_fraction("val_fraction", self.val_fraction)
        _check_fraction("test_fraction", self.test_fraction)
        train_share = (1.0 - self.test_fraction) * (1.0 - self.val_fraction)
        if train_share < MIN_TRAIN_SHARE:
            raise UserError(
                f"data.test_fraction={self.test_fraction} and data.val_fraction={self.val_fraction} "
                f"leave only {train_share:.0%} of the data for training; "
                f"lower them so at least {MIN_TRAIN_SHARE:.0%} is left"
            )
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 1:
            raise UserError(f"data.folds (--cv) must be a positive integer, got {self.folds!r}; "
                            "1 is one holdout validation split, K >= 2 is K-fold cross-validation")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"data.seed (--seed) must be an integer from 0 to {MAX_SEED}, got {self.seed!r}")
        if not isinstance(self.options, Mapping):
            raise UserError(f"data.options must be a mapping, got {self.options!r}")
        object.__setattr__(self, "options", {k: list(v) if isinstance(v, (list, tuple)) else v
                                             for k, v in self.options.items()})
        _check_trusted(self.options)
        parse_noise(self.noise)

    def __hash__(self) -> int:
        options = tuple(sorted((str(k), repr(v)) for k, v in self.options.items()))
        return hash((self.source, self.noise, self.label_column, self.val_fraction,
                     self.test_fraction, self.folds, self.seed, options))

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (str, int, float and nested dicts only) that ``yaml.safe_dump`` accepts."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["options"] = dict(self.options)
        out["val_fraction"] = float(self.val_fraction)
        out["test_fraction"] = float(self.test_fraction)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataSpec:
        """The inverse of :meth:`to_dict`; unknown keys are a :class:`UserError` listing valid ones."""
        if not isinstance(d, Mapping):
            raise UserError(f"data: expected a mapping of data settings, got {d!r}")
        valid = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in d if k not in valid)
        if unknown:
            raise UserError(f"unknown data key(s) {', '.join(unknown)}; valid keys are: {', '.join(valid)}")
        kwargs = dict(d)
        if kwargs.get("options") is None:
            kwargs.pop("options", None)
        return cls(**kwargs)
