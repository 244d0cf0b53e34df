"""The "trusted" section of BENCHMARKS.md is written whole by ``benchmarks/trusted.py`` from its rows:
its tables, its targets (met, missed, or not run yet) and how many of the planned runs it holds."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import trusted  # noqa: E402

RUN = {"machine": "a machine", "commit": "commit abc", "load": "No other load.", "minutes": 5.0}


def _rows(search_sym: float, glc: float) -> list[dict]:
    rows = []
    for kind, task, seed, fraction in trusted.plan():
        base = {"task": task, "seed": seed, "fraction": fraction}
        if kind == "search":
            value = search_sym if task == "symmetric:0.8" else 0.98
            rows.append({**base, "arm": "search", "test_accuracy": value + seed / 1000, "ranked_by": "trusted"})
            continue
        values = {"plain_ce": 0.70, "trusted_alone": 0.85, "glc": glc, "meta_weight": 0.90, "trusted_semi": 0.88}
        for arm in trusted.METHOD_ARMS:
            if arm == "plain_ce" or fraction > 0:
                rows.append({**base, "arm": arm, "test_accuracy": values[arm] + seed / 1000})
    return rows


def test_a_complete_run_reads_its_targets_from_the_rows():
    text = trusted.render({**RUN, "rows": _rows(search_sym=0.95, glc=0.20)})
    assert "Incomplete" not in text
    assert "**Search at 5% trusted, symmetric:0.8**: median 0.951 (target >= 0.93: met)." in text
    assert "**Search at 5% trusted, pair:0.4**: median 0.981 (target >= 0.97: met)." in text
    assert ("**glc at 5% trusted, symmetric:0.8**: median 0.201 against plain CE 0.701 and trusted alone 0.851 "
            "(target: above both: **missed**).") in text
    assert "**meta_weight at 5% trusted, symmetric:0.8**: median 0.901" in text and "above both: met" in text
    assert "**trusted+semi at 5% trusted, symmetric:0.8**: median 0.881 against plain CE 0.701" in text
    assert "| 0%      | 0.701 (0.700-0.702) | n/a" in text  # a method needing trusted rows is not run at 0 %


def test_a_partial_run_says_how_much_it_holds_and_leaves_the_rest_unread():
    rows = [r for r in _rows(search_sym=0.90, glc=0.80) if r["arm"] != "search" or r["seed"] == 0]
    text = trusted.render({**RUN, "rows": rows})
    searches = len(trusted.TASKS) * len(trusted.FRACTIONS)
    done = len(trusted.plan()) - searches * (len(trusted.SEEDS) - 1)
    assert f"**Incomplete: {done} of the {len(trusted.plan())} planned runs are done**" in text
    assert "**Search at 5% trusted, symmetric:0.8**: not run yet." in text  # one seed is no median of three
    assert "0.900 (0.900-0.900) [1 seeds]" in text


def test_the_reading_bounds_what_the_noisy_labels_can_teach_from_the_trusted_count():
    rows = [{**r, "trusted_rows": 72} if r["arm"] != "search" and r["fraction"] == 0.05 else r
            for r in _rows(search_sym=0.95, glc=0.20)]
    text = trusted.render({**RUN, "rows": rows})
    # 1,368 untrusted rows at 0.044 nats (symmetric 0.8, 10 classes) against ln 10 = 2.303 per verified label
    assert "**What the noisy labels can teach, symmetric:0.8**: one noisy label tells 0.044 nats" in text
    assert "about 1,368 untrusted rows' labels together carry as much as about 26 verified labels" in text
    assert "**What the noisy labels can teach, pair:0.4**: one noisy label tells 1.630 nats" in text
    assert "What the noisy labels can teach" not in trusted.render({**RUN, "rows": _rows(0.95, 0.2)})  # no counts
