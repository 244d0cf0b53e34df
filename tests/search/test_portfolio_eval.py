"""The leave-one-task-out summary of ``benchmarks/portfolio_eval.py``: trials needed, and the paired
difference of two arms on the same task-seeds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from portfolio import tasks  # noqa: E402
from portfolio_eval import REFERENCES, add_results, paired_difference, reading, reference_points, run_header  # noqa: E402

TASKS = [t["name"] for t in tasks() if t["kind"] == "vectors"][:2]  # 400 and 800 rows: tests of 80, 160


def test_trials_needed_count_from_the_best_any_arm_reached():
    results: dict = {}
    add_results(results, TASKS[0], 0, {"a": {"test": 0.8, "curve": [None, 0.70, 0.795, 0.80]},
                                       "b": {"test": 0.7, "curve": [0.60, 0.65, 0.70, 0.70]}})
    assert results["a"][0]["needed"] == 3  # 0.795 is within 0.01 of the best curve point, 0.80
    assert results["b"][0]["needed"] is None  # never within a point
    assert results["a"][0]["task"] == TASKS[0] and results["b"][0]["seed"] == 0


def test_paired_difference_counts_wins_ties_and_losses_on_shared_task_seeds():
    results: dict = {}
    for task, seed, a, b in [(TASKS[0], 0, 0.9, 0.8), (TASKS[0], 1, 0.7, 0.7), (TASKS[1], 0, 0.5, 0.6),
                             (TASKS[1], 1, 0.8, 0.7)]:
        add_results(results, task, seed, {"a": {"test": a, "curve": [a]}, "b": {"test": b, "curve": [b]}})
    results["b"].append({"task": TASKS[1], "seed": 2, "test": 0.0})  # no pair in "a": left out
    text = paired_difference(results, "a", "b", TASKS)
    assert "same 4 task-seeds" in text and "mean +0.025" in text
    assert "2 wins, 1 ties, 1 losses" in text
    low, high = (float(v) for v in text.split("interval ")[1].split(";")[0].split(" to "))
    assert low <= 0.025 <= high and low >= -0.1 and high <= 0.1  # bounded by the smallest and largest difference
    assert "test splits of 80 to 160 rows" in text
    assert paired_difference(results, "a", "b", TASKS) == text  # the bootstrap is seeded
    assert paired_difference({"a": [], "b": []}, "a", "b", TASKS) == ""


@pytest.mark.parametrize("n", [1, 3])
def test_one_pair_gives_a_degenerate_interval(n):
    results: dict = {}
    for seed in range(n):
        add_results(results, TASKS[0], seed, {"a": {"test": 0.5, "curve": [0.5]}, "b": {"test": 0.4, "curve": [0.4]}})
    assert "interval +0.100 to +0.100" in paired_difference(results, "a", "b", TASKS)


def test_reference_points_are_trial_0_and_the_best_point_of_any_curve():
    results: dict = {}
    add_results(results, TASKS[0], 0, {"a": {"test": 0.8, "curve": [0.50, 0.70, 0.70]},
                                       "b": {"test": 0.7, "curve": [0.50, 0.50, 0.75]}})
    add_results(results, TASKS[0], 1, {"a": {"test": 0.6, "curve": [None, 0.60]},
                                       "b": {"test": 0.6, "curve": [None, None]}})
    points = reference_points(results)
    assert set(points) == set(REFERENCES)
    plain, best = points["plain CE"], points["best leader"]
    assert plain == {(TASKS[0], 0): 0.50, (TASKS[0], 1): None}  # trial 0 failed on seed 1
    assert best == {(TASKS[0], 0): 0.75, (TASKS[0], 1): 0.60}


def _arms(values: dict[str, list[float]], needed: dict[str, int]) -> dict:
    """Results of the four arms on TASKS x seeds 0, 1: ``values[arm]`` in that order; each arm's curve
    reaches its value at trial ``needed[arm]``."""
    results: dict = {}
    for i, (task, seed) in enumerate((t, s) for t in TASKS for s in (0, 1)):
        out = {arm: {"test": v[i], "curve": [0.0] * (needed[arm] - 1) + [v[i]]} for arm, v in values.items()}
        add_results(results, task, seed, out)
    return results


def test_the_reading_is_written_from_the_numbers():
    needed = {"portfolio + TPE, 20": 2, "TPE alone, 20": 5, "TPE alone, 60": 5, "random, 20": 5}
    tie = _arms({"portfolio + TPE, 20": [0.80, 0.70, 0.60, 0.50], "TPE alone, 20": [0.80, 0.70, 0.60, 0.50],
                 "TPE alone, 60": [0.70, 0.80, 0.50, 0.60], "random, 20": [0.10, 0.10, 0.10, 0.10]}, needed)
    text = reading(tie, {"portfolio + TPE, 20": 0.65, "TPE alone, 20": 0.65, "TPE alone, 60": 0.65}, 2, "met")
    assert "gives 0.650 against TPE alone at 60 0.650: met" in text
    assert "the two are a tie (mean difference +0.000" in text and "2 wins and 2 losses" in text
    assert "ranges from 0.600 to 0.700 for TPE alone at 60 (from 0.600 to 0.700 for portfolio + TPE)" in text
    assert "speed" in text and "after 2 trials" in text and "needs 5" in text  # every arm got within a point
    assert "are not better than twenty" in text
    ahead = _arms({"portfolio + TPE, 20": [0.9, 0.9, 0.9, 0.9], "TPE alone, 20": [0.5] * 4, "TPE alone, 60": [0.6] * 4,
                   "random, 20": [0.1] * 4}, {**needed, "portfolio + TPE, 20": 5})
    text = reading(ahead, {"portfolio + TPE, 20": 0.9, "TPE alone, 20": 0.5, "TPE alone, 60": 0.6}, 2, "met")
    assert "the difference favours portfolio + TPE" in text and "4 wins and 0 losses" in text
    assert "are better than twenty" in text and "faster" not in text and "speed" not in text  # TPE never got there
    slow = _arms({arm: [0.7] * 4 for arm in needed}, {**needed, "portfolio + TPE, 20": 5, "TPE alone, 60": 2})
    text = reading(slow, {"portfolio + TPE, 20": 0.7, "TPE alone, 20": 0.7, "TPE alone, 60": 0.7}, 2, "met")
    assert "does not make the search faster" in text and "after 5 trials" in text and "after 2." in text


def test_a_report_from_the_record_names_how_its_runs_went():
    run = {"commit": "commit abc1234", "machine": "2026-12-01; commit abc1234; 2 CPU cores", "busy": 0.01,
           "planned": 8, "seeds": 5, "tasks": 8, "minutes": 110.94, "reused": 0}
    assert run_header(run) == ("2026-12-01; commit abc1234; 2 CPU cores. Other load when the run started: 0.01 cores "
                               "busy. 8 of 8 planned tasks x 5 seeds took\n110.9 min.")
    assert "`--reuse`" in run_header({**run, "reused": 3})
