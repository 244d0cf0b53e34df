"""How many trusted rows glc and meta_weight should replay in every batch: their ``replay`` defaults.

    .venv/bin/python benchmarks/trusted_replay.py           # every run -> BENCHMARKS.md "trusted-replay" + trusted-replay.json
    .venv/bin/python benchmarks/trusted_replay.py --report  # the section again from trusted-replay.json

With 5 % of digits' rows trusted a batch of 64 holds about three of them, and glc and meta_weight
train on each trusted row about 20 times in a run where "trusted alone" (``benchmarks/trusted.py``)
trains on each about 400 times. ``replay`` (``Component.trusted_replay``) appends that share of the
batch size in trusted rows to every batch. This script picks its default for each method.

Pre-registered here, before any run: digits with symmetric:0.8 and pair:0.4 noise, 5 % of the
training pool trusted (``--trusted-fraction 0.05``), seeds 10, 11, 12 (development seeds: the
benchmark of ``benchmarks/trusted.py`` uses 0, 1, 2, which choose nothing here). Arms: the default
space's baseline pipeline with ``adjustment: glc`` or ``selection: meta_weight`` at their other
defaults and ``replay`` 0, 0.25, 0.5 or 1; beside them, for reading only, plain CE and trusted alone
as ``benchmarks/trusted.py`` trains them. Each is trained on the pool, its last epoch scored on the
clean test split. Rule: per method, the share with the highest mean over the two tasks of the median
over seeds; a tie (within 0.001) goes to the smaller share. These are benchmark tasks, not a user's
data: the clean test labels choose a shipped default here, as ``benchmarks/efficiency.py``'s do.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from _common import package_since, spread, table, task_seeds_main

HERE = Path(__file__).resolve().parent
RECORD = HERE / "trusted-replay.json"
PARTIAL = HERE / ".trusted-replay.partial.json"
SECTION = "trusted-replay"

TASKS = ("symmetric:0.8", "pair:0.4")
SEEDS = (10, 11, 12)
FRACTION = 0.05
METHODS = {"glc": "adjustment", "meta_weight": "selection"}
SHARES = (0.0, 0.25, 0.5, 1.0)
TIE = 0.001


def with_replay(pipeline, family: str, share: float):
    """``pipeline`` with its ``family`` component's ``replay`` set to ``share``."""
    spec = getattr(pipeline, family)
    return replace(pipeline, **{family: replace(spec, params={**spec.params, "replay": share})})


def runs_of(task: str, seed: int) -> list[dict]:
    """Every arm of one task and seed."""
    from trusted import last_test_accuracy, method_runs, prepared

    pool, made = prepared(task, seed, FRACTION)
    rows = method_runs(task, seed, FRACTION, arms=("plain_ce", "trusted_alone"), ready=(pool, made))
    for method, family in METHODS.items():
        for share in SHARES:
            start = time.perf_counter()
            accuracy = last_test_accuracy(with_replay(made[method], family, share), pool)
            rows.append({"task": task, "seed": seed, "arm": method, "replay": share, "test_accuracy": accuracy,
                         "seconds": time.perf_counter() - start})
            print(f"{task} seed {seed} {method} replay {share}: {accuracy:.4f}", flush=True)
    return rows


def _scores(rows: list[dict], task: str, arm: str, share: float | None = None) -> list[float]:
    return [r["test_accuracy"] for r in rows
            if r["task"] == task and r["arm"] == arm and (share is None or r.get("replay") == share)]


def picks(rows: list[dict]) -> dict[str, float | None]:
    """The rule: per method, the share with the highest mean over tasks of the median over seeds
    (ties within TIE to the smaller share); None while a task lacks a seed.

    >>> rows = [{"task": t, "seed": s, "arm": "glc", "replay": r, "test_accuracy": a}
    ...         for t in TASKS for s in SEEDS for r, a in ((0.0, 0.5), (0.25, 0.8), (0.5, 0.8005), (1.0, 0.7))]
    >>> picks(rows)["glc"], picks(rows)["meta_weight"]
    (0.25, None)
    """
    out: dict[str, float | None] = {}
    for method in METHODS:
        per_share = {share: [_scores(rows, t, method, share) for t in TASKS] for share in SHARES}
        if any(len(seeds) < len(SEEDS) for tasks in per_share.values() for seeds in tasks):
            out[method] = None
            continue
        means = {share: statistics.mean(statistics.median(seeds) for seeds in tasks) for share, tasks in per_share.items()}
        best = max(means.values())
        out[method] = min(share for share, m in means.items() if m >= best - TIE)
    return out


def render(runs: dict) -> str:
    from automl_noisy.components import FAMILIES

    rows = runs["rows"]
    planned = len(TASKS) * len(SEEDS) * (2 + len(METHODS) * len(SHARES))
    lines = ["## Replaying the trusted rows in every batch (`benchmarks/trusted_replay.py`)", "",
             f"{runs['machine']}. {runs['load']} {runs['minutes']:.1f} minutes."
             + (" " + package_since(runs["commit"]) if runs.get("commit") else ""), "",
             __doc__.split("\n\n", 2)[2].strip(), ""]
    if len(rows) < planned:
        lines += [f"**Partial**: {len(rows)} of {planned} runs.", ""]
    for task in TASKS:
        body = [[name, "", spread(_scores(rows, task, arm))] for arm, name in
                (("plain_ce", "plain CE"), ("trusted_alone", "trusted alone"))]
        body += [[method, f"{share:g}", spread(_scores(rows, task, method, share))]
                 for method in METHODS for share in SHARES]
        lines += [f"**digits {task}, 5 % trusted** (clean test accuracy, median over seeds {', '.join(map(str, SEEDS))} "
                  "(min-max))", "", table(["arm", "replay", "test accuracy"], body), ""]
    for method, share in picks(rows).items():
        family = FAMILIES[METHODS[method]].registry.get(method)
        default = family.hyperparameters()["replay"].default
        if share is None:
            lines.append(f"- **{method}**: not every run is in; no pick yet (the code's default: {default:g}).")
        else:
            lines.append(f"- **{method}**: the rule picks replay {share:g}; the code's default is {default:g}"
                         + (" (the pick)." if abs(default - share) < 1e-9 else " (**not the pick**)."))
    return "\n".join(lines) + "\n"


def main() -> None:
    sys.path.insert(0, str(HERE))
    task_seeds_main(__doc__.split("\n")[0], TASKS, SEEDS, runs_of, render, RECORD, PARTIAL, SECTION)


if __name__ == "__main__":
    main()
