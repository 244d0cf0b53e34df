"""Synthetic label noise: parse a noise spec string and inject that noise into labels.

Pure functions on arrays. Every draw comes from the ``numpy.random.Generator`` passed in, so the
same generator state always gives the same noisy labels.

>>> import numpy as np
>>> y = np.repeat(np.arange(4), 25)
>>> noisy = inject_noise(y, parse_noise("symmetric:0.2"), 4, np.random.default_rng(0))
>>> realized_rate(noisy, y)
0.2
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from automl_noisy.errors import UserError

KINDS = ("none", "symmetric", "pair", "asymmetric", "instance")
FORMS = "none, symmetric:R, pair:R, asymmetric:R[:a>b,...] or instance:R with 0 <= R < 1"
#: Standard deviation of the per-sample flip rate in instance-dependent noise (Xia et al., 2020).
INSTANCE_RATE_STD = 0.1


@dataclass(frozen=True)
class NoiseSpec:
    """A parsed noise spec: its kind, its rate and, for ``asymmetric``, the class map ``a -> b``."""

    kind: str
    rate: float
    class_map: tuple[tuple[int, int], ...] = ()

    def __str__(self) -> str:
        if self.kind == "none":
            return "none"
        text = f"{self.kind}:{self.rate:g}"
        if self.class_map:
            text += ":" + ",".join(f"{a}>{b}" for a, b in self.class_map)
        return text


def _bad(text: str, why: str = "") -> UserError:
    return UserError(f"bad noise spec {text!r}{'; ' + why if why else ''}; use {FORMS}")


def _parse_class_map(text: str, part: str) -> tuple[tuple[int, int], ...]:
    pairs: list[tuple[int, int]] = []
    for item in part.split(","):
        a, sep, b = item.strip().partition(">")
        if not sep or not a.strip().isdigit() or not b.strip().isdigit():
            raise _bad(text, f"class map entry {item.strip()!r} is not of the form a>b with class ids")
        pair = (int(a), int(b))
        if pair[0] == pair[1]:
            raise _bad(text, f"class map entry {item.strip()!r} maps a class to itself")
        if pair[0] in dict(pairs):
            raise _bad(text, f"class {pair[0]} is mapped twice")
        pairs.append(pair)
    return tuple(pairs)


def parse_noise(text: str) -> NoiseSpec:
    """Parse ``none``, ``symmetric:R``, ``pair:R``, ``asymmetric:R[:a>b,c>d]`` or ``instance:R``.

    ``R`` is the noise rate, ``0 <= R < 1``; ``a>b`` means class ``a`` is mislabeled as ``b``.
    Anything else is a :class:`UserError` naming the valid forms.
    """
    if not isinstance(text, str):
        raise _bad(str(text))
    parts = [p.strip() for p in text.strip().split(":")]
    kind = parts[0].lower()
    if kind == "none" and len(parts) == 1:
        return NoiseSpec("none", 0.0)
    if kind not in KINDS[1:] or len(parts) < 2 or len(parts) > (3 if kind == "asymmetric" else 2):
        raise _bad(text)
    try:
        rate = float(parts[1])
    except ValueError:
        raise _bad(text, f"rate {parts[1]!r} is not a number") from None
    if not (math.isfinite(rate) and 0.0 <= rate < 1.0):
        raise _bad(text, f"rate {parts[1]} is outside [0, 1)")
    class_map = _parse_class_map(text, parts[2]) if len(parts) == 3 else ()
    return NoiseSpec(kind, rate, class_map)


def realized_rate(y_noisy: np.ndarray, y_clean: np.ndarray) -> float:
    """The fraction of labels that differ: ``mean(y_noisy != y_clean)`` (0.0 for no labels)."""
    y_noisy, y_clean = np.asarray(y_noisy), np.asarray(y_clean)
    if y_noisy.shape != y_clean.shape:
        raise ValueError(f"label arrays differ in shape: {y_noisy.shape} vs {y_clean.shape}")
    return float(np.mean(y_noisy != y_clean)) if y_noisy.size else 0.0


def symmetric_noise(y: np.ndarray, rate: float, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Exactly ``round(rate * n)`` samples, chosen uniformly without replacement, each move to a
    class drawn uniformly from the ``K - 1`` classes other than its own."""
    out = y.copy()
    flip = rng.choice(len(y), size=round(rate * len(y)), replace=False)
    out[flip] = (y[flip] + rng.integers(1, num_classes, size=len(flip))) % num_classes
    return out


def pair_noise(y: np.ndarray, rate: float, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Each sample of class ``c`` moves to ``(c + 1) mod K`` independently with probability ``rate``."""
    out = y.copy()
    flip = rng.random(len(y)) < rate
    out[flip] = (y[flip] + 1) % num_classes
    return out


def asymmetric_noise(y: np.ndarray, rate: float, class_map: tuple[tuple[int, int], ...],
                     num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Each sample of a mapped class ``a`` moves to its target ``b`` with probability ``rate``;
    samples of unmapped classes keep their label (class-conditional noise, Patrini et al., CVPR 2017)."""
    target = np.arange(num_classes)
    for a, b in class_map:
        target[a] = b
    flip = rng.random(len(y)) < rate
    return np.where(flip, target[y], y).astype(y.dtype)


def instance_noise(y: np.ndarray, rate: float, num_classes: int, x: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Instance-dependent noise as generated by Xia et al., "Part-dependent Label Noise", NeurIPS 2020.

    Per sample, ``q_i ~ N(rate, 0.1^2)`` truncated to ``[0, 1]`` and, shared, ``W ~ N(0, 1)`` of
    shape ``(K, d, K)``. With ``x_i`` flattened to unit L2 norm, ``s = x_i W[y_i]``, ``s[y_i] = -inf``
    and the new label is drawn from ``p = q_i * softmax(s)``, ``p[y_i] = 1 - q_i``.
    """
    from scipy.stats import truncnorm

    n = len(y)
    if x is None or len(x) != n:
        raise ValueError("instance noise needs the features x, one row per label")
    flat = np.asarray(x, dtype=np.float64).reshape(n, -1)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    flat = flat / np.where(norms > 0, norms, 1.0)
    low, high = (0.0 - rate) / INSTANCE_RATE_STD, (1.0 - rate) / INSTANCE_RATE_STD
    q = truncnorm.rvs(low, high, loc=rate, scale=INSTANCE_RATE_STD, size=n, random_state=rng)
    w = rng.standard_normal((num_classes, flat.shape[1], num_classes))
    scores = np.empty((n, num_classes))
    for c in np.unique(y):
        rows = y == c
        scores[rows] = flat[rows] @ w[c]
    rows = np.arange(n)
    scores[rows, y] = -np.inf
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs = q[:, None] * scores / scores.sum(axis=1, keepdims=True)
    probs[rows, y] = 1.0 - q
    draws = (probs.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return np.minimum(draws, num_classes - 1).astype(y.dtype)


def no_signal(spec: NoiseSpec, num_classes: int) -> str:
    """Why ``spec`` would leave the labels with no signal about the truth on ``num_classes`` classes, or
    ``""`` when it leaves some.

    Symmetric noise at rate ``r`` keeps a label with probability ``1 - r`` and gives each other class
    ``r / (K - 1)``: the true class stops being the most likely label once ``r >= (K - 1) / K`` (at
    equality the labels are independent of the truth). Pair noise gives the next class ``r``: at
    ``r >= 0.5`` it is as likely as the true one or more.
    """
    k = num_classes
    if spec.kind == "symmetric" and k >= 2 and spec.rate >= (k - 1) / k:
        return (f"noise {spec} leaves no signal on {k} classes: a label stays right with probability "
                f"{1 - spec.rate:.2f} and moves to each other class with {spec.rate / (k - 1):.2f}, so the true "
                f"class is not the most likely label; use a rate below {(k - 1) / k:.3g}")
    if spec.kind == "pair" and spec.rate >= 0.5:
        return (f"noise {spec} leaves no signal: a label moves to the next class with probability "
                f"{spec.rate:g}, as often as it stays or more; use a rate below 0.5")
    return ""


def label_information(spec: NoiseSpec | str, num_classes: int) -> float:
    """What one noisy label tells about the true class, in nats, for balanced classes: the mutual
    information ``I(Y; Y~) = H(Y~) - H(Y~ | Y)``, against ``ln K`` for a clean label.

    Symmetric noise at rate ``r`` keeps a label with probability ``1 - r`` and moves it to each of the
    ``K - 1`` others with ``r / (K - 1)``, so ``I = ln K + (1 - r) ln(1 - r) + r ln(r / (K - 1))``; pair
    noise moves it to the next class with ``r``: ``I = ln K + (1 - r) ln(1 - r) + r ln r``. Both keep
    ``H(Y~) = ln K``. ``ln K`` for no noise; the other kinds depend on the data and raise ValueError.

    >>> round(label_information("symmetric:0.8", 10), 3), round(label_information("none", 10), 3)
    (0.044, 2.303)
    """
    spec = parse_noise(spec) if isinstance(spec, str) else spec
    k, r = num_classes, spec.rate

    def plogp(p: float) -> float:
        return p * math.log(p) if p > 0 else 0.0

    if spec.kind == "none" or r == 0.0:
        return math.log(k)
    if spec.kind == "symmetric":
        return math.log(k) + plogp(1 - r) + (k - 1) * plogp(r / (k - 1))
    if spec.kind == "pair":
        return math.log(k) + plogp(1 - r) + plogp(r)
    raise ValueError(f"the information of a {spec.kind} noisy label depends on the data")


def _check_class_map(class_map: tuple[tuple[int, int], ...], num_classes: int) -> None:
    for a, b in class_map:
        for c in (a, b):
            if not 0 <= c < num_classes:
                raise UserError(
                    f"class {c} in asymmetric noise map {a}>{b} is outside 0..{num_classes - 1}; "
                    f"the data has {num_classes} classes"
                )


def inject_noise(y: np.ndarray, spec: NoiseSpec | str, num_classes: int, rng: np.random.Generator,
                 x: np.ndarray | None = None,
                 default_class_map: tuple[tuple[int, int], ...] | None = None) -> np.ndarray:
    """New labels with ``spec``'s noise injected into ``y`` (integer labels in ``0..K-1``).

    ``x`` is needed for ``instance`` noise. ``asymmetric`` without a class map uses
    ``default_class_map`` (a source's own, e.g. digits). A rate of 0 leaves the labels as they are.
    The input is never modified.
    """
    spec = parse_noise(spec) if isinstance(spec, str) else spec
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got {y.dtype} of shape {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    if num_classes < 2:
        raise ValueError(f"noise needs at least two classes, got num_classes={num_classes}")
    why = no_signal(spec, num_classes)
    if why:
        raise UserError(why)
    if spec.kind == "asymmetric":
        class_map = tuple(spec.class_map or default_class_map or ())
        if not class_map:
            raise UserError(
                f"noise {spec} needs a class map for this data; give one like asymmetric:{spec.rate:g}:3>8,7>1"
            )
        _check_class_map(class_map, num_classes)
    if spec.kind == "none" or spec.rate == 0.0 or y.size == 0:
        return y.copy()
    if spec.kind == "symmetric":
        return symmetric_noise(y, spec.rate, num_classes, rng)
    if spec.kind == "pair":
        return pair_noise(y, spec.rate, num_classes, rng)
    if spec.kind == "asymmetric":
        return asymmetric_noise(y, spec.rate, class_map, num_classes, rng)
    if spec.kind == "instance":
        return instance_noise(y, spec.rate, num_classes, x, rng)
    raise UserError(f"unknown noise kind {spec.kind!r}; use {FORMS}")
