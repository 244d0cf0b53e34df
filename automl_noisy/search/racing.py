"""Racing the folds: a trial that is clearly behind after its first fold stops without paying for the rest.

With K-fold cross-validation a trial costs K trainings. Racing (Maron & Moore, "Hoeffding races",
NIPS 1993; irace, López-Ibáñez et al. 2016; the intensification of SMAC and Auto-sklearn) spends
them one stage at a time: a trial trains its first ``folds`` fold(s); only if it is not clearly
behind the incumbent on those rows do the other folds start.

**The rule.** The incumbent is the best complete trial the search may see when the trial was asked
(with the ordered search of :mod:`automl_noisy.search.order`, the trials numbered below it minus the
lag, so the decision does not depend on timing). Both have their correctness on the first folds'
rows: the candidate's at the best epoch of its first folds, the incumbent's at its own best epoch
(the rows are the same, so they are compared paired, as :mod:`automl_noisy.search.selection` does).
With ``d`` the per-row difference over those ``n`` rows, the candidate is *clearly behind* when

    mean(d) + z * sd(d) / sqrt(n) < 0,

a one-sided paired test at ``z`` standard errors. For two fixed pipelines of equal accuracy, ``z =
2`` stops about 2 % of such trials; here two biases pull against each other and the net rate is not
known without measuring it (``benchmarks/efficiency.py``): the incumbent is the best of many trials,
scored at its own best epoch on rows that helped choose it (which makes stops likelier), and the
candidate's side is its best epoch on the first folds, an optimistic figure (which makes them rarer,
and keeps a trial that learns late from being stopped for a slow start). A raced-out trial's value,
that optimistic best on fewer rows, enters the analysis as a pruned trial's.

**A fair hearing.** The pipelines the search queues itself (plain CE, the portfolio, an earlier
study's best) are never raced: all their folds start at once, as without racing. A raced-out trial
is PRUNED, with its first folds' best accuracy reported as its value at that epoch (the analysis
counts it as a pruned trial) and the reason in the user attribute ``raced_out``.

>>> stopped, mean, stderr = behind(np.array([1, 0, 0, 1] * 50, bool), np.ones(200, bool), z=2.0)
>>> stopped, mean, round(stderr, 3)
(True, -0.5, 0.035)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from automl_noisy.errors import UserError


@dataclass(frozen=True)
class Racing:
    """How a search races the folds of its trials: ``folds`` run first, then the rest unless the
    trial is ``z`` paired standard errors behind the incumbent on those rows."""

    folds: int = 1
    z: float = 2.0

    def to_dict(self) -> dict[str, Any]:
        return {"folds": self.folds, "z": self.z}


def parse_racing(doc: Any, where: str) -> Racing | None:
    """A space file's ``racing`` key: ``true`` (the defaults), ``false`` or absent (no racing), or a
    mapping with ``folds`` and ``z``."""
    if doc is None or doc is False:
        return None
    if doc is True:
        return Racing()
    if not isinstance(doc, Mapping) or set(doc) - {"folds", "z"}:
        raise UserError(f"{where}: racing must be true, false, or a mapping with keys folds and z, "
                        "e.g. racing: {folds: 1, z: 2.0}")
    folds, z = doc.get("folds", 1), doc.get("z", 2.0)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise UserError(f"{where}: racing.folds must be an integer of at least 1, got {folds!r}")
    if isinstance(z, bool) or not isinstance(z, (int, float)) or not math.isfinite(z) or z <= 0:
        raise UserError(f"{where}: racing.z must be a positive number of standard errors, got {z!r}")
    return Racing(folds, float(z))


def behind(candidate: np.ndarray, incumbent: np.ndarray, z: float) -> tuple[bool, float, float]:
    """Whether ``candidate`` is clearly behind ``incumbent`` (per-row correctness on the same rows):
    ``(behind, mean difference, its paired standard error)``."""
    from automl_noisy.search.selection import paired_difference

    if len(candidate) != len(incumbent) or len(candidate) < 2:
        raise ValueError(f"racing compares the same rows: {len(candidate)} and {len(incumbent)}")
    mean, stderr = paired_difference(candidate, incumbent)
    return mean + z * stderr < 0, mean, stderr
