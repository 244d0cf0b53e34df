"""How noisy are the user's labels? Measured on trusted rows, or estimated from out-of-sample
probabilities, before any trial.

A trusted row carries the label the data gave it and its verified label, so where there are enough
trusted rows (``MIN_MEASURED_ROWS``) the noise is measured on them (:func:`measured_profile`): the
rate is the share of trusted rows whose given label is not the verified one, with its binomial
standard error and Wilson 95 % interval, and the confused pairs are counted (given ``i``, truly
``j``). It is the noise of the labels at large only as far as the trusted rows are a random sample
of them (``--trusted-fraction`` draws them so; a user who verified the suspicious rows first gets a
higher rate than the data's).

Otherwise, the estimate:

Confident Learning (Northcutt, Jiang & Chuang, "Confident Learning: Estimating Uncertainty in
Dataset Labels", JAIR 2021): with out-of-sample probabilities ``p`` and per-class thresholds
``t_j`` = mean of ``p_j`` over the samples labelled ``j``, a sample labelled ``i`` counts for the
class ``argmax_{j: p_j >= t_j} p_j`` in the confident joint ``C[i, j]``. Calibrated so that row ``i``
sums to the number of samples labelled ``i`` and normalized to sum to one, ``Q = C~ / n`` estimates
the joint of given and true labels: the noise rate is ``1 - trace(Q)``, and the largest off-diagonal
entries are the most confused pairs (given ``i``, truly ``j``). The probabilities come from a fast
model (logistic regression on the flattened inputs, 5-fold ``cross_val_predict``); labels only,
never a clean label.

>>> probs = np.array([[.9, .1], [.8, .2], [.3, .7], [.9, .1]])
>>> joint = confident_joint(probs, np.array([0, 0, 1, 1]))
>>> joint.tolist(), round(float(1 - np.trace(calibrated_joint(joint, np.array([0, 0, 1, 1])))), 3)
([[1, 0], [1, 1]], 0.25)
>>> measured = measured_profile(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1]), ("a", "b"))
>>> measured.estimated_rate, measured.confused
(0.25, (('b', 'a', 0.25),))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: The fewest trusted rows on which the noise is measured rather than estimated by Confident
#: Learning. The measured rate is unbiased (for trusted rows drawn at random) with the binomial
#: standard error sqrt(p (1 - p) / n): from n = 50 on it is at most 0.071 (at p = 0.5), 0.057 at a
#: rate of 0.2, below the error of the estimate from a linear model's probabilities (0.12 on digits
#: with 29 % pair noise, which it reads as 41 %, see README), and the profile reports the Wilson
#: interval beside the rate. Below 50 rows the worst-case error nears that bias, and the estimate
#: (which reads every label) is kept.
MIN_MEASURED_ROWS = 50
#: the normal quantile of the profile's two-sided 95 % interval
_Z95 = 1.959963984540054
#: what each profile is, in words
ESTIMATED = "confident joint of 5-fold out-of-sample logistic-regression probabilities"
MEASURED = "given label vs verified label on the trusted rows"


def confident_joint(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The confident joint ``C`` (K x K counts: given label, confident class); rows of a class that
    no sample reaches stay zero."""
    k = probs.shape[1]
    thresholds = np.array([probs[labels == j, j].mean() if (labels == j).any() else np.inf for j in range(k)])
    confident = np.where(probs >= thresholds, probs, -np.inf)
    counted = np.isfinite(confident).any(axis=1)
    joint = np.zeros((k, k), dtype=np.int64)
    np.add.at(joint, (labels[counted], confident[counted].argmax(axis=1)), 1)
    return joint


def calibrated_joint(joint: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``C`` with each row scaled to the count of its given label, then normalized to sum to one."""
    k = joint.shape[0]
    counts = np.bincount(labels, minlength=k).astype(float)
    rows = joint.sum(axis=1, keepdims=True).astype(float)
    scaled = np.where(rows > 0, joint / np.maximum(rows, 1) * counts[:, None], np.diag(counts))
    return scaled / scaled.sum()


@dataclass(frozen=True)
class NoiseProfile:
    """The noise of a set of labels: its rate and most confused pairs, estimated (Confident Learning
    on ``rows`` labels) or ``measured`` (on ``rows`` trusted rows, with the rate's binomial ``stderr``
    and Wilson 95 % ``interval``); ``method`` says which, in words."""

    estimated_rate: float  # the rate, estimated or measured (the name stored profiles have)
    confused: tuple[tuple[str, str, float], ...]  # (given, (probably) truly, share of the rows)
    rows: int
    method: str = ESTIMATED
    measured: bool = False
    stderr: float | None = None
    interval: tuple[float, float] | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "confused": [{"given": g, "likely": t, "share": s} for g, t, s in self.confused]}


def describe_profile(profile: dict) -> str:
    """A stored profile (``NoiseProfile.to_dict``, of this version or an earlier one) in words."""
    pairs = ", ".join(f"{p['given']} -> {p['likely']} ({p['share']:.1%})" for p in profile.get("confused", []))
    if profile.get("measured") and profile.get("interval"):
        low, high = profile["interval"]
        return (f"measured noise {profile['estimated_rate']:.1%} (95 % interval {100 * low:.0f}-{100 * high:.0f} %) "
                f"on {profile.get('rows', '?')} trusted rows (given label vs verified); most confused, given -> "
                f"truly: {pairs or 'none'}")
    return (f"estimated noise {profile['estimated_rate']:.1%} of {profile.get('rows', '?')} rows "
            f"({profile.get('method', 'confident learning')}); most confused, given -> probably: {pairs or 'none'}")


def wilson_interval(wrong: int, n: int, z: float = _Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial share ``wrong / n`` (``n`` > 0).

    >>> [round(v, 3) for v in wilson_interval(2, 10)]
    [0.057, 0.51]
    """
    p, z2 = wrong / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * float(np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)))
    return max(0.0, centre - half), min(1.0, centre + half)


def _top_pairs(joint: np.ndarray, class_names: tuple[str, ...], top: int) -> tuple[tuple[str, str, float], ...]:
    """The ``top`` largest off-diagonal entries of ``joint`` (shares: given ``i``, truly ``j``), largest
    first (ties in row order)."""
    off = joint - np.diag(np.diag(joint))
    order = np.argsort(-off, axis=None, kind="stable")[:top]
    return tuple((class_names[i], class_names[j], float(off[i, j]))
                 for i, j in zip(*np.unravel_index(order, off.shape)) if off[i, j] > 0)


def measured_profile(given: np.ndarray, verified: np.ndarray, class_names: tuple[str, ...],
                     top: int = 3) -> NoiseProfile:
    """The noise measured on trusted rows: ``given`` labels (what the data gave them) against their
    ``verified`` ones; the rate is the share that differ, the pairs are counted."""
    n = len(given)
    if n == 0 or len(verified) != n:
        raise ValueError(f"measured_profile needs as many given as verified labels, at least one: {n}, {len(verified)}")
    k = len(class_names)
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (given, verified), 1)
    wrong = int(n - np.trace(counts))
    rate = wrong / n
    return NoiseProfile(rate, _top_pairs(counts / n, class_names, top), n, MEASURED, measured=True,
                        stderr=float(np.sqrt(rate * (1 - rate) / n)), interval=wilson_interval(wrong, n))


def noise_profile(x: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...], seed: int = 0,
                  top: int = 3) -> NoiseProfile:
    """Estimate the noise of ``labels`` (rows of ``x``) from out-of-sample probabilities."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    k = len(class_names)
    flat = x.reshape(len(x), -1)
    smallest = int(np.bincount(labels, minlength=k)[np.bincount(labels, minlength=k) > 0].min())
    folds = max(2, min(5, smallest))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    probs = np.zeros((len(labels), k))
    seen = np.unique(labels)
    probs[:, seen] = cross_val_predict(model, flat, labels, cv=cv, method="predict_proba")
    q = calibrated_joint(confident_joint(probs, labels), labels)
    return NoiseProfile(float(1 - np.trace(q)), _top_pairs(q, class_names, top), len(labels))
