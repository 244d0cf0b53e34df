"""NoisyDataset: the train/validation/test arrays a trial trains and is scored on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from automl_noisy.data.noise import realized_rate
from automl_noisy.data.preprocessing import Preprocessing
from automl_noisy.data.spec import DataSpec

#: Trusted rows rank the trials (a clean objective) when at least this many of them validate: the
#: pool's under K-fold cross-validation (each scored out of fold), the validation split's otherwise.
#: An accuracy on n rows has a standard error of up to 0.5 / sqrt(n): 0.11 at 20 rows. Noisy
#: accuracy is a sound but shrunken proxy (Chen et al., AAAI 2021): under symmetric noise at rate R
#: with K classes its differences between pipelines are scaled by 1 - R K / (K - 1), so at 80 % noise
#: on 10 classes 20 clean rows carry as much as about 1,600 noisy ones.
MIN_TRUSTED_TO_RANK = 20


@dataclass(frozen=True, eq=False, repr=False)
class NoisyDataset:
    """Split arrays with (possibly injected) label noise; built by :func:`automl_noisy.data.load_data`.

    Features are float32 of shape ``(n, *input_shape)``, labels int64 in ``0..num_classes-1``.
    ``y_train`` and ``y_val`` are the noisy labels training and model selection see; ``y_test``
    holds the labels as the source gives them and is never noised. ``y_train_clean`` and
    ``y_val_clean`` are the labels before noise, or None where they are unknown (a user's file with
    no injected noise). With a label file (option ``labels``) ``y_train`` and ``y_val`` are its labels
    and the clean ones are the source's. ``train_index`` and ``val_index`` are each training and
    validation sample's row in the source.
    ``preprocessing`` is what turned the source's rows into these features (fitted on the
    training split), so that new rows can be turned into features the same way.
    ``trusted_train`` and ``trusted_val`` mark, per training and validation sample, the trusted rows
    (option ``trusted`` or ``trusted_fraction``, see :mod:`automl_noisy.data.trusted`), whose labels in
    ``y_train`` and ``y_val`` are their verified ones; both are None when no rows are trusted.
    ``y_train_given`` and ``y_val_given`` are ``y_train`` and ``y_val`` before the verified labels
    replaced those of the trusted rows: the labels the data gave (a label file's, any injected noise
    included), so that on the trusted rows the noise is measured, not estimated; None when no rows
    are trusted.
    ``fingerprint`` identifies the source data (features and labels, a label file's labels that
    replace them, and the trusted rows with their labels), whatever the noise, split and seed (except
    that rows drawn by ``trusted_fraction`` follow the seed).
    """

    spec: DataSpec
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: tuple[str, ...]
    train_index: np.ndarray
    val_index: np.ndarray
    y_train_clean: np.ndarray | None
    y_val_clean: np.ndarray | None
    fingerprint: str
    preprocessing: Preprocessing
    trusted_train: np.ndarray | None = None
    trusted_val: np.ndarray | None = None
    y_train_given: np.ndarray | None = None
    y_val_given: np.ndarray | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample, e.g. ``(1, 8, 8)`` for digits or ``(20,)`` for vectors."""
        return tuple(self.x_train.shape[1:])

    @property
    def clean_labels_known(self) -> bool:
        """Whether the labels before noise are known (built-in data, or noise injected by the spec)."""
        return self.y_train_clean is not None

    @property
    def noise_mask(self) -> np.ndarray | None:
        """``y_train != y_train_clean`` per training sample, or None when clean labels are unknown."""
        return None if self.y_train_clean is None else self.y_train != self.y_train_clean

    @property
    def noise_rate(self) -> float | None:
        """The realized noise rate on the training split, or None when clean labels are unknown."""
        return None if self.y_train_clean is None else realized_rate(self.y_train, self.y_train_clean)

    @property
    def trusted_count(self) -> int:
        """How many training and validation samples are trusted (0 when none are)."""
        return sum(int(m.sum()) for m in (self.trusted_train, self.trusted_val) if m is not None)

    @property
    def trusted_objective(self) -> bool:
        """Whether trials are ranked by accuracy on the trusted rows instead of the noisy labels: when at
        least :data:`MIN_TRUSTED_TO_RANK` trusted rows validate (the pool's under K-fold, the same for
        every fold of it; the validation split's for one holdout split)."""
        if self.trusted_train is None or self.trusted_val is None:
            return False
        validating = self.trusted_count if self.spec.folds > 1 else int(self.trusted_val.sum())
        return validating >= MIN_TRUSTED_TO_RANK

    def trusted_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """The given and the verified labels of the trusted rows, training rows first, then validation
        rows (both empty when no rows are trusted)."""
        if self.trusted_train is None or self.trusted_val is None \
                or self.y_train_given is None or self.y_val_given is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        given = np.concatenate([self.y_train_given[self.trusted_train], self.y_val_given[self.trusted_val]])
        verified = np.concatenate([self.y_train[self.trusted_train], self.y_val[self.trusted_val]])
        return given, verified

    def _trusted_text(self) -> str:
        if self.trusted_train is None:
            return ""
        options = self.spec.options
        given = (f"from {options['trusted']}" if options.get("trusted") is not None
                 else f"--trusted-fraction {options.get('trusted_fraction')}")
        return (f", {self.trusted_count} trusted rows ({int(self.trusted_train.sum())} train, "
                f"{int(self.trusted_val.sum())} val; {given})")

    def summary(self) -> str:
        """One line: source, split sizes, classes, input shape, noise spec, realized rate, trusted rows."""
        rate = self.noise_rate
        realized = "clean labels unknown" if rate is None else f"realized {rate:.3f} on train"
        labels = self.spec.options.get("labels")
        noise = f"labels {labels}" + (f" + noise {self.spec.noise}" if self.spec.noise != "none" else "") \
            if labels else f"noise {self.spec.noise}"
        return (f"{self.spec.source}: {len(self.y_train)} train / {len(self.y_val)} val / "
                f"{len(self.y_test)} test, {self.num_classes} classes, input {self.input_shape}, "
                f"{noise} ({realized}){self._trusted_text()}")

    def __repr__(self) -> str:
        return f"NoisyDataset({self.summary()}, fingerprint={self.fingerprint})"
