"""Built-in sources: scikit-learn's digits and ``make_classification``."""

from __future__ import annotations

import numpy as np

from automl_noisy.data.limits import MAX_SYNTHETIC_SIZE, check_values
from automl_noisy.data.preprocessing import DIGITS_SCALE
from automl_noisy.data.sources.base import RawData, int_option, no_path
from automl_noisy.data.spec import DataSpec
from automl_noisy.errors import UserError

#: Asymmetric noise for digits, the class map of Patrini et al., CVPR 2017 (2->7, 3->8, 5<->6, 7->1).
DIGITS_CLASS_MAP = ((2, 7), (3, 8), (5, 6), (6, 5), (7, 1))
SYNTHETIC_DEFAULTS = {"samples": 2000, "features": 20, "classes": 4}


def load_digits_source(path: str, spec: DataSpec) -> RawData:
    """scikit-learn's 8x8 handwritten digits (1797 images, 10 classes), pixels (0-16) divided by 16
    (``DIGITS_SCALE``, recorded, so new arrays of 0-16 pixels are divided alike)."""
    from sklearn.datasets import load_digits

    no_path("digits", path)
    digits = load_digits()
    x = DIGITS_SCALE.apply(digits.data.reshape(-1, 1, 8, 8))
    names = tuple(str(c) for c in digits.target_names)
    return RawData(x, digits.target.astype(np.int64), names, True, DIGITS_CLASS_MAP, scale=DIGITS_SCALE)


def load_synthetic_source(path: str, spec: DataSpec) -> RawData:
    """scikit-learn's ``make_classification`` with clean labels; options samples, features
    (``--dims``), classes, whose product may not exceed ``MAX_SYNTHETIC_SIZE`` (checked before
    anything is made)."""
    from sklearn.datasets import make_classification

    no_path("synthetic", path)
    options = spec.options
    classes = int_option("synthetic", options, "classes", SYNTHETIC_DEFAULTS["classes"], 2)
    features = int_option("synthetic", options, "features", SYNTHETIC_DEFAULTS["features"], 1)
    samples = int_option("synthetic", options, "samples", SYNTHETIC_DEFAULTS["samples"], 10 * classes)
    check_values(samples * features * classes, MAX_SYNTHETIC_SIZE,
                 f"synthetic data of {samples} samples x {features} features (--dims) x {classes} classes",
                 "pass smaller --samples, --dims or --classes")
    informative = min(features, max(2, features // 2, (classes - 1).bit_length()))
    if classes > 2**informative:
        raise UserError(f"synthetic data with {classes} classes needs features (--dims) >= "
                        f"{(classes - 1).bit_length()}, got features={features}")
    x, y = make_classification(
        n_samples=samples, n_features=features, n_informative=informative, n_redundant=0,
        n_repeated=0, n_classes=classes, n_clusters_per_class=1, class_sep=1.0, flip_y=0.0,
        random_state=spec.seed,
    )
    return RawData(x.astype(np.float32), y.astype(np.int64), tuple(str(c) for c in range(classes)), True)
