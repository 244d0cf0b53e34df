"""Which methods help or hurt: each choice's effect on the objective against the baseline.

**Model.** Trial 0 of every study is the baseline (plain CE, no methods), and each family's baseline
choice is its reference level. A finished trial is one row of a design matrix with one indicator
column per non-reference ``(family, choice)`` it used (a penalty is a toggle: one column per penalty
switched on). The objective is regressed on these columns with ridge regression (scikit-learn's
``Ridge``, unpenalized intercept, ``alpha=1`` on standardized columns: the penalty weighs about one
trial per column). A choice's coefficient is its *main effect*: the change in objective from
swapping the family's baseline choice for it, averaged over the other families' choices as the
trials combined them. Interactions come from a second fit that adds, for each pair of choices from
different families tried together in >= 3 trials and apart (each without the other) in >= 3, the
product of their centered indicators (centering keeps the main effects' meaning and keeps the
columns from leaking into each other, Aiken & West 1991). A pair's coefficient is how far trying
both departs from the sum of their main effects. Main effects are then refit with only the pairs
whose interaction is clear of 0: a search of a hundred trials has dozens of weakly supported pairs,
and fitting them all would widen every main effect's interval without changing what it estimates,
while leaving out a real interaction would leave its variance in the residuals. Ridge rather than
least squares because a search samples combinations unevenly (TPE concentrates, conditionals couple
families, a preset fixes several at once): the penalty keeps the fit defined when columns are
collinear or outnumber the trials, and pulls what the data cannot separate toward 0, "no effect".

**Intervals.** A nonparametric bootstrap over trials (500 resamples, seeded) needs no assumption
about the objective's noise (bounded, with a spread that differs between methods). The intervals are
*simultaneous* 90% intervals (the bootstrap sup-t band, Montiel Olea & Plagborg-Moller, J. Appl.
Econometrics 2019; standard errors with the HC1 factor sqrt(n / (n - p - 1)), as resampling trials
understates the spread of a fit with p columns): all main effects' intervals hold together with
about 90% confidence, so a table of thirty choices that do nothing shows no spurious "helps" nine
times in ten, where per-row intervals would show three. Interactions get a band of their own. A
choice ``helps`` when its interval lies above 0, ``hurts`` when below, else it is ``unclear``, as is
any choice with fewer than 3 trials. A coefficient is left out of a resample where its column is
constant. With fewer than 10 trials beyond the number of effects the bootstrap would understate the
spread of a nearly saturated fit, so no intervals (and no verdicts) are given until more trials
finish.

**Which trials count.** COMPLETE trials enter with their objective. PRUNED trials enter with their
last reported value (what the trial reached in this search) and are counted per choice, shown beside
each effect: the pruner stopped them because they trailed the other trials at that epoch, so
dropping them would keep only the survivors and make often-pruned choices look better than they are;
the early value understates what the trial would have reached, a bias against choices the pruner
already judged poor. FAILED trials (an exception, a NaN loss) have no value; they are counted per
choice, and a choice whose trials fail often (>= 30% of its finished trials and at least 2) is
reported as ``fails often``. Trials failed because the driver stopped (``interrupted``, or a stale
heartbeat) say nothing about a method and are left out, as are running ones (see
``automl_noisy.search.study_analysis``, which also ranks the continuous parameters with Optuna's
PED-ANOVA).

>>> obs = [Observation({"loss": "ce"}, value=0.60, baseline=True)]
>>> obs += [Observation({"loss": "gce" if i % 2 else "ce"}, value=(0.65 if i % 2 else 0.60) + 0.01 * (i % 3))
...         for i in range(1, 40)]
>>> row = effects(obs).effect("loss", "gce")
>>> round(row.effect, 2), row.verdict
(0.05, 'helps')
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import combinations
from typing import Any

import numpy as np

from automl_noisy.pipeline import FAMILIES, MULTI_FAMILIES

STATES = ("complete", "pruned", "failed")


@dataclass(frozen=True)
class Observation:
    """One finished trial as plain data: family -> choice name, its state and value."""

    combination: Mapping[str, str]
    state: str = "complete"
    value: float | None = None
    number: int = -1
    baseline: bool = False


@dataclass(frozen=True)
class Effect:
    """A choice's estimated effect on the objective against the family's baseline choice."""

    family: str
    choice: str
    effect: float | None  # 0 for the reference (baseline) choice
    low: float | None
    high: float | None
    trials: int  # trials with this choice that have a value (complete + pruned)
    pruned: int
    failed: int
    verdict: str
    reference: bool = False


@dataclass(frozen=True)
class Interaction:
    """What trying two choices together adds beyond the sum of their main effects."""

    first: tuple[str, str]  # (family, choice)
    second: tuple[str, str]
    effect: float
    low: float | None
    high: float | None
    together: int
    verdict: str


@dataclass
class EffectsTable:
    baseline: dict[str, str]
    baseline_value: float | None  # the model's objective for the baseline combination
    rows: list[Effect]
    pairs: list[Interaction]
    counts: dict[str, int]  # complete / pruned / failed trials counted
    confidence: float = 0.9
    notes: list[str] = field(default_factory=list)

    def effect(self, family: str, choice: str) -> Effect:
        for row in self.rows:
            if (row.family, row.choice) == (family, choice):
                return row
        raise KeyError(f"no row for {family}={choice}; rows: {', '.join(f'{r.family}={r.choice}' for r in self.rows)}")

    def pair(self, first: tuple[str, str], second: tuple[str, str]) -> Interaction:
        for p in self.pairs:
            if {p.first, p.second} == {tuple(first), tuple(second)}:
                return p
        raise KeyError(f"no interaction estimated for {first} and {second}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EffectsTable":
        pairs = [Interaction(**{**p, "first": tuple(p["first"]), "second": tuple(p["second"])}) for p in d["pairs"]]
        return cls(baseline=dict(d["baseline"]), baseline_value=d["baseline_value"],
                   rows=[Effect(**r) for r in d["rows"]], pairs=pairs, counts=dict(d["counts"]),
                   confidence=d["confidence"], notes=list(d["notes"]))


def effects(observations: Sequence[Observation], *, baseline: Mapping[str, str] | None = None,
            confidence: float = 0.9, resamples: int = 500, seed: int = 0, alpha: float = 1.0,
            min_together: int = 3, min_apart: int = 3, min_trials: int = 3, min_residual: int = 10,
            fails_often: tuple[float, int] = (0.3, 2)) -> EffectsTable:
    """Main effects and pairwise interactions of the choices, with simultaneous intervals.

    ``baseline`` (family -> choice) defaults to the combination of the observation flagged
    ``baseline``, else of the lowest-numbered one. See the module docstring for the method.
    """
    obs = _validated(observations, confidence, resamples)
    notes: list[str] = []
    if baseline is None:
        flagged = [o for o in obs if o.baseline] or sorted(obs, key=lambda o: o.number)
        baseline = flagged[0].combination
    obs = [replace(o, combination={**baseline, **o.combination}) for o in obs]  # absent: the baseline's
    levels = _levels(obs, baseline)  # family -> [(choice, reference?)]
    valued = [o for o in obs if o.state != "failed" and o.value is not None]
    dropped = sum(o.state == "pruned" and o.value is None for o in obs)
    if dropped:
        notes.append(f"{dropped} pruned trial(s) reported no value and are left out")
    keys = [(f, c) for f, cs in levels.items() for c, ref in cs if not ref]
    used = {k: np.array([_uses(o, *k) for o in valued], dtype=float) for k in keys}
    n = len(valued)
    main = [k for k in keys if 0 < used[k].sum() < n]
    for k in keys:
        if used[k].sum() == n and n:
            notes.append(f"{k[0]}={k[1]} was used in every trial with a value: no effect can be estimated")
    pairs = _frequent_pairs(main, used, min_together, min_apart, max(0, n // 2 - len(main)), notes)
    y = np.array([o.value for o in valued], dtype=float)
    mains, products = [used[k] for k in main], [_product(used[a], used[b]) for a, b in pairs]
    pair_fit = (_fit(mains + products, y, slice(len(main), None), confidence, resamples, seed, alpha)[:3]
                if pairs else ([], [], []))
    _no_intervals(pair_fit, n, len(main) + len(pairs), min_residual, "choices and pairs", notes)
    clear = [j for j in range(len(pairs)) if _verdict(pair_fit[1][len(main) + j], pair_fit[2][len(main) + j],
                                                      True) != "unclear"]
    coef, low, high, intercept = _fit(mains + [products[j] for j in clear], y, slice(0, len(main)), confidence,
                                      resamples, seed, alpha)
    _no_intervals((coef, low, high), n, len(main) + len(clear), min_residual, "choices", notes)
    if intercept is not None and all(c is not None for c in coef):  # the fit at the baseline combination
        intercept += sum(coef[len(main) + i] * used[pairs[j][0]].mean() * used[pairs[j][1]].mean()
                         for i, j in enumerate(clear))
    rows = _choice_rows(obs, levels, baseline, main, (coef, low, high), min_trials, fails_often)
    interactions = []
    pc, pl, ph = pair_fit
    for j, (a, b) in enumerate(pairs, start=len(main)):
        together = int(used[a] @ used[b])
        interactions.append(Interaction(a, b, pc[j], pl[j], ph[j], together,
                                        _verdict(pl[j], ph[j], together >= min_trials)))
    counts = {s: sum(o.state == s for o in obs) for s in STATES}
    if n < 2:
        notes.append("fewer than 2 trials with a value: no effect can be estimated yet")
    return EffectsTable(dict(baseline), intercept, rows, interactions, counts, confidence, notes)


def _choice_rows(obs: list[Observation], levels: Mapping[str, list[tuple[str, bool]]], baseline: Mapping[str, str],
                 main: list[tuple[str, str]], fit: tuple[list, list, list], min_trials: int,
                 fails_often: tuple[float, int]) -> list[Effect]:
    """One row per family and choice, the reference first: estimate, interval, counts, verdict."""
    coef, low, high = fit
    rows = []
    for family, choices in levels.items():
        for choice, ref in choices:
            on = [o for o in obs if (_is_reference(o, family, baseline) if ref else _uses(o, family, choice))]
            trials = sum(o.state != "failed" and o.value is not None for o in on)
            pruned = sum(o.state == "pruned" for o in on)
            failed = sum(o.state == "failed" for o in on)
            i = main.index((family, choice)) if (family, choice) in main else None
            est = 0.0 if ref else (coef[i] if i is not None else None)
            lo, hi = (None, None) if ref or i is None else (low[i], high[i])
            if failed >= fails_often[1] and failed >= fails_often[0] * len(on):
                verdict = "fails often"
            else:
                verdict = "baseline" if ref else _verdict(lo, hi, trials >= min_trials)
            rows.append(Effect(family, choice, est, lo, hi, trials, pruned, failed, verdict, ref))
    return rows


def _frequent_pairs(main: list[tuple[str, str]], used: Mapping[tuple[str, str], np.ndarray], min_together: int,
                    min_apart: int, cap: int, notes: list[str]) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """Pairs of choices of different families tried together and apart often enough, best supported
    first, at most ``cap`` of them (one column per two trials in all)."""
    candidates = []
    for a, b in combinations(main, 2):
        together = float(used[a] @ used[b])
        support = min(together, used[a].sum() - together, used[b].sum() - together)
        if a[0] != b[0] and together >= min_together and support >= min_apart:
            candidates.append((-support, a, b))
    candidates.sort()
    if len(candidates) > cap:
        notes.append(f"{len(candidates) - cap} co-occurring pair(s) left out: at most one column per two trials")
    return [(a, b) for _, a, b in candidates[:cap]]


def _validated(observations: Sequence[Observation], confidence: float, resamples: int) -> list[Observation]:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if resamples < 10:
        raise ValueError(f"resamples must be at least 10, got {resamples!r}")
    out = list(observations)
    if not out:
        raise ValueError("no observations: effects need at least one finished trial")
    for o in out:
        if not isinstance(o, Observation):
            raise ValueError(f"expected Observation, got {type(o).__name__}")
        if o.state not in STATES:
            raise ValueError(f"unknown state {o.state!r} of trial {o.number}; choose one of: {', '.join(STATES)}")
        if not isinstance(o.combination, Mapping) or not all(isinstance(v, str) for v in o.combination.values()):
            raise ValueError(f"trial {o.number}: combination must map family -> choice name, got {o.combination!r}")
        if o.state == "complete" and (o.value is None or not math.isfinite(o.value)):
            raise ValueError(f"complete trial {o.number} needs a finite value, got {o.value!r}")
    return out


def _choices(o: Observation, family: str) -> set[str]:
    value = o.combination.get(family, "none")
    if family in MULTI_FAMILIES:
        return set() if value == "none" else set(value.split("+"))
    return {value}


def _uses(o: Observation, family: str, choice: str) -> bool:
    return choice in _choices(o, family)


def _is_reference(o: Observation, family: str, baseline: Mapping[str, str]) -> bool:
    if family in MULTI_FAMILIES:
        return not _choices(o, family)
    return o.combination.get(family) == baseline.get(family)


def _levels(obs: list[Observation], baseline: Mapping[str, str]) -> dict[str, list[tuple[str, bool]]]:
    """Family -> its choices seen in the trials, the reference first (multi families: 'none')."""
    order = ["preset", "start", *FAMILIES]
    families = sorted({f for o in obs for f in o.combination},
                      key=lambda f: (order.index(f) if f in order else len(order), f))
    out = {}
    for family in families:
        seen: list[str] = []
        for o in obs:
            seen += [c for c in sorted(_choices(o, family)) if c not in seen]
        if family in MULTI_FAMILIES:
            out[family] = [("none", True)] + [(c, False) for c in seen]
        else:
            ref = baseline.get(family, "none")
            out[family] = [(ref, True)] + [(c, False) for c in seen if c != ref]
        if len(out[family]) < 2:
            del out[family]  # one choice throughout: nothing to compare
    return out


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The centered product of two indicator columns."""
    return (a - a.mean()) * (b - b.mean())


def _verdict(low: float | None, high: float | None, enough: bool) -> str:
    if low is None or high is None or not enough:
        return "unclear"
    return "helps" if low > 0 else "hurts" if high < 0 else "unclear"


def _no_intervals(fit: tuple[list, list, list], n: int, p: int, min_residual: int, what: str,
                  notes: list[str]) -> None:
    """Drop the intervals of a fit with fewer than ``min_residual`` trials beyond its ``p`` columns."""
    coef, low, high = fit
    if coef and n - p < min_residual:
        low[:], high[:] = [None] * len(low), [None] * len(high)
        notes.append(f"{n} trials with a value for {p} {what}: intervals and verdicts need at least "
                     f"{p + min_residual}; run more trials")


def _fit(columns: list[np.ndarray], y: np.ndarray, band: slice, confidence: float, resamples: int, seed: int,
         alpha: float) -> tuple[list, list, list, float | None]:
    """Ridge point estimates, then a sup-t band over ``columns[band]`` from a bootstrap of the same fit."""
    from sklearn.linear_model import Ridge

    p = len(columns)
    if len(y) < 2:
        return [None] * p, [None] * p, [None] * p, float(y.mean()) if len(y) else None
    if p == 0:
        return [], [], [], float(y.mean())
    x = np.stack(columns, axis=1)
    scale = x.std(axis=0)  # the penalty acts on standardized columns: one trial's worth per column
    xs = x / scale
    model = Ridge(alpha=alpha).fit(xs, y)
    coef = model.coef_ / scale
    rng = np.random.default_rng(seed)
    n = len(y)
    w = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(float)  # (R, n) bootstrap counts
    boot = _ridge_resamples(xs, y, w, alpha) / scale
    spread = w @ xs**2 / n - (w @ xs / n) ** 2
    boot[spread <= 1e-12] = np.nan  # the column is constant in this resample
    low, high = [None] * p, [None] * p
    b = boot[:, band]
    valid = np.isfinite(b).sum(axis=0) >= 10
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: left without interval
        se = np.nanstd(b, axis=0, ddof=1) * math.sqrt(n / max(n - p - 1, 1))  # resampling trials misses n-p-1 of n
        t = np.abs(b - coef[band]) / np.where(se > 0, se, np.nan)
        worst = np.nanmax(np.where(valid, t, np.nan), axis=1)
    worst = worst[np.isfinite(worst)]
    if len(worst):
        crit = float(np.quantile(worst, confidence))  # the sup-t critical value
        for i in np.flatnonzero(valid & np.isfinite(se)):
            j = range(p)[band][i]
            low[j], high[j] = float(coef[j] - crit * se[i]), float(coef[j] + crit * se[i])
    return [float(v) for v in coef], low, high, float(model.intercept_)


def _ridge_resamples(x: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float) -> np.ndarray:
    """``Ridge(alpha).fit(x, y, sample_weight=w[r]).coef_`` for every row ``r`` of ``w`` at once, from
    the weighted normal equations (500 separate scikit-learn fits would take seconds)."""
    total = w.sum(axis=1, keepdims=True)
    mx, my = w @ x / total, (w @ y)[:, None] / total
    gram = np.einsum("rn,ni,nj->rij", w, x, x, optimize=True) - total[:, :, None] * np.einsum("ri,rj->rij", mx, mx)
    rhs = w @ (x * y[:, None]) - total * mx * my
    return np.linalg.solve(gram + alpha * np.eye(x.shape[1]), rhs[..., None])[..., 0]
