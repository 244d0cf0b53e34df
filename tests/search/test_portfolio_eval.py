"""The leave-one-task-out section of ``benchmarks/portfolio_eval.py`` is written from its rows: trials
needed, the paired difference of two arms per data kind, the pre-registered target's verdict, and a
partial run called partial."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import portfolio_eval  # noqa: E402
from portfolio import tasks  # noqa: E402
from portfolio_eval import LONG, NEAR, OURS, RANDOM, RUNS, SHORT, needed, paired, render, suite_task  # noqa: E402


def row(task: str, kind: str, seed: int, tests: dict[str, float], reach: dict[str, int] | None = None) -> dict:
    """One task-seed: each arm's export ``tests[arm]``; its curve reaches that value at trial
    ``reach[arm]`` (1 unless given)."""
    reach = reach or {}
    return {"task": task, "kind": kind, "seed": seed,
            "arms": {arm: {"test": v, "exported": "plain CE", "curve": [0.0] * (reach.get(arm, 1) - 1) + [v]}
                     for arm, v in tests.items()}}


def test_trials_needed_count_from_the_best_any_arm_reached():
    arms = {"a": {"curve": [None, 0.70, 0.795, 0.80]}, "b": {"curve": [0.60, 0.65, 0.70, 0.70]}}
    assert needed(arms) == {"a": 3, "b": None}  # 0.795 is within 0.01 of the best point, 0.80; b never


def test_paired_counts_wins_ties_and_losses_and_is_seeded():
    rows = [row("t", "vectors", s, {"a": a, "b": b}) for s, (a, b) in enumerate([(0.9, 0.8), (0.7, 0.7), (0.5, 0.6),
                                                                               (0.8, 0.7)])]
    p = paired(rows, "a", "b")
    assert (p["n"], p["wins"], p["ties"], p["losses"]) == (4, 2, 1, 1) and p["mean"] == pytest.approx(0.025)
    assert -0.1 - 1e-9 <= p["low"] <= 0.025 <= p["high"] <= 0.1 + 1e-9  # bounded by the smallest and largest difference
    assert paired(rows, "a", "b") == p and paired([], "a", "b") is None


def test_every_planned_task_is_in_the_suite_and_the_kinds_are_both_there():
    suite = tasks()
    kinds = [suite_task(t, suite)["kind"] for t in portfolio_eval.TASKS]
    assert kinds.count("vectors") == 8 and kinds.count("images") == 6
    assert len(portfolio_eval.SEEDS) >= 5


def whole(ours_vectors: float, ours_images: float) -> dict:
    suite, rows = tasks(), []
    for prefix in portfolio_eval.TASKS:
        task = suite_task(prefix, suite)
        for seed in portfolio_eval.SEEDS:
            ours = (ours_vectors if task["kind"] == "vectors" else ours_images) + 0.01 * (seed % 2)
            near = ours + (0.02 if task["kind"] == "images" else 0.0)
            rows.append(row(task["name"], task["kind"], seed, {OURS: ours, NEAR: near, LONG: 0.80, SHORT: 0.78,
                                                              RANDOM: 0.70}, {OURS: 2, LONG: 9}))
    return {"machine": "2026-12-03; commit abc; 2 CPU cores", "load": "", "minutes": 200.0, "rows": rows}


def test_a_whole_run_reads_the_target_per_kind():
    text = render(whole(ours_vectors=0.85, ours_images=0.79))
    assert "Partial" not in text
    vectors = next(line for line in text.splitlines() if line.startswith("- **vectors**"))
    images = next(line for line in text.splitlines() if line.startswith("- **images**"))
    assert "portfolio + TPE, 20 minus TPE alone, 60: mean +0.054" in vectors and "Target (the interval above zero): met" in vectors
    assert "(40 wins, 0 ties, 0 losses over 40 task-seeds)" in vectors
    assert "mean -0.006" in images and "**missed**" in images
    assert "portfolio + TPE, 20 minus random, 20" in images
    assert "nearest portfolio + TPE, 20 minus portfolio + TPE, 20: mean +0.000" in vectors and "not kept" in vectors
    assert "nearest portfolio + TPE, 20 minus portfolio + TPE, 20: mean +0.020" in images
    assert "kept: better than the fixed order" in images
    assert "What the shipped portfolio holds for vectors" in vectors and "the entries earn their trials" in vectors
    assert "nearest portfolio + TPE, 20 minus TPE alone, 20: mean +0.034" in images  # the order kept is the one weighed
    assert "ships no entries" in render(whole(ours_vectors=0.77, ours_images=0.79))
    assert "| vectors" not in text and "**images** (30 task-seeds" in text
    assert text.count("| plain CE (trial 0, its own record)") == 2


def test_a_partial_run_says_so_and_reads_only_the_kinds_it_has():
    record = whole(0.85, 0.79)
    record["rows"] = [r for r in record["rows"] if r["kind"] == "vectors"][:7]
    text = render(record)
    assert "**Partial**: 7 of 70 planned task-seeds" in text
    assert "- **vectors**" in text and "- **images**" not in text


def test_the_arms_are_the_issue_s():
    assert RUNS[OURS] == ("fixed", "tpe", 20) and RUNS[NEAR] == ("nearest", "tpe", 20)
    assert RUNS[LONG] == ("none", "tpe", 60)
    assert RUNS[SHORT] == ("none", "tpe", 20) and RUNS[RANDOM] == ("none", "random", 20)
