"""What the leave-one-task-out evaluation (``portfolio_eval.py``) lets the shipped portfolio hold.

The evaluation measures the build (``portfolio.py build``): per data kind, a 20-trial search that
starts with the portfolio against searches without one. Once every planned task-seed of a kind has
run, its rows decide two things for that kind, by rules fixed before the whole plan had run (this
file, 2026-12-05, when 26 of its 70 task-seeds had been seen, all of them vector ones):

- **Order**: ``nearest`` (``--portfolio-order nearest``) where the nearest order's paired 95 %
  interval against the fixed order lies above zero (the evaluation's pre-registered rule), else
  ``fixed``.
- **Shipping**: the kind keeps its entries only where the portfolio, in that order, makes a 20-trial
  search better than the same 20 trials of TPE alone: the paired 95 % interval of ``portfolio + TPE,
  20`` (or its nearest order) minus ``TPE alone, 20`` lies above zero. Each entry takes a trial
  the sampler would otherwise draw, so an entry that is not shown to help is a cost; a kind that
  misses ships no entries, and its searches run plain CE, then the sampler.

Intervals: the mean of the per-task-seed differences, task-seeds resampled 10,000 times (generator
seed 0), the 2.5th and 97.5th percentiles.
"""

from __future__ import annotations

import numpy as np

OURS, NEAR = "portfolio + TPE, 20", "nearest portfolio + TPE, 20"
LONG, SHORT, RANDOM = "TPE alone, 60", "TPE alone, 20", "random, 20"


def paired(rows: list[dict], a: str, b: str) -> dict | None:
    """``a`` minus ``b`` on the same task-seeds: how many, the mean, a 95 % bootstrap interval of the mean
    (task-seeds resampled 10,000 times, generator seed 0), wins / ties / losses; None without rows."""
    diffs = np.array([r["arms"][a]["test"] - r["arms"][b]["test"] for r in rows])
    if len(diffs) == 0:
        return None
    means = np.random.default_rng(0).choice(diffs, size=(10000, len(diffs))).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    ties, wins = int((np.abs(diffs) < 1e-9).sum()), int((diffs > 1e-9).sum())
    return {"n": len(diffs), "mean": float(diffs.mean()), "low": float(low), "high": float(high), "wins": wins,
            "ties": ties, "losses": len(diffs) - wins - ties}


def paired_text(p: dict, a: str, b: str) -> str:
    return (f"{a} minus {b}: mean {p['mean']:+.3f}, 95 % interval {p['low']:+.3f} to {p['high']:+.3f} "
            f"({p['wins']} wins, {p['ties']} ties, {p['losses']} losses over {p['n']} task-seeds)")


def decision(rows: list[dict], kind: str) -> dict | None:
    """For data of ``kind``: ``order`` (fixed or nearest), ``ship`` (whether its entries earn their trials)
    and ``why`` (a sentence with the numbers); None when no row is of that kind."""
    mine = [r for r in rows if r["kind"] == kind]
    if not mine:
        return None
    near = paired(mine, NEAR, OURS)
    order = "nearest" if near["low"] > 0 else "fixed"
    arm = NEAR if order == "nearest" else OURS
    against = paired(mine, arm, SHORT)
    ship = against["low"] > 0
    why = (f"{paired_text(against, arm, SHORT)}: "
           + ("the entries earn their trials" if ship else
              "not shown better than spending those trials on TPE, so the kind ships no entries"))
    return {"order": order, "ship": ship, "why": why}


def matching(record: dict | None, plan: dict, kinds: dict[str, str]) -> dict[str, list[dict]]:
    """Per data kind, the rows of an evaluation ``record`` that ran every planned task-seed of that kind
    with ``plan``'s suite, pool and size (the keys ``suite``, ``pool``, ``size`` the evaluation stores);
    a kind with task-seeds still to run is left out. ``kinds``: suite task name -> its data kind. A
    kind's verdict reads its own rows only, so it stands once they are all there."""
    theirs = (record or {}).get("plan")
    if not theirs or any(theirs.get(k) != plan[k] for k in ("suite", "pool", "size")):
        return {}
    rows = record.get("rows", [])
    names = [next((n for n in kinds if n.startswith(prefix + "-")), None) for prefix in theirs["tasks"]]
    out = {}
    for kind in sorted(set(kinds.values())):
        planned = {(name, seed) for name in names if kinds.get(name) == kind for seed in theirs["seeds"]}
        mine = [r for r in rows if r["kind"] == kind]
        if planned and planned <= {(r["task"], r["seed"]) for r in mine}:
            out[kind] = mine
    return out
