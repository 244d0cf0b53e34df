"""How noisy are the user's labels? An estimate from out-of-sample probabilities, before any trial.

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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


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
    """The estimated noise of a set of labels: its rate and most confused pairs."""

    estimated_rate: float
    confused: tuple[tuple[str, str, float], ...]  # (given, probably truly, share of all labels)
    rows: int
    method: str = "confident joint of 5-fold out-of-sample logistic-regression probabilities"

    def to_dict(self) -> dict:
        return {**asdict(self), "confused": [{"given": g, "likely": t, "share": s} for g, t, s in self.confused]}


def describe_profile(profile: dict) -> str:
    """A stored profile (``NoiseProfile.to_dict``) in words."""
    pairs = ", ".join(f"{p['given']} -> {p['likely']} ({p['share']:.1%})" for p in profile.get("confused", []))
    return (f"estimated noise {profile['estimated_rate']:.1%} of {profile.get('rows', '?')} rows "
            f"({profile.get('method', 'confident learning')}); most confused, given -> probably: {pairs or 'none'}")


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
    off = q - np.diag(np.diag(q))
    order = np.argsort(-off, axis=None)[:top]
    confused = tuple((class_names[i], class_names[j], float(off[i, j]))
                     for i, j in zip(*np.unravel_index(order, off.shape)) if off[i, j] > 0)
    return NoiseProfile(float(1 - np.trace(q)), confused, len(labels))
