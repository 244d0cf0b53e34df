"""The "trusted-replay" section of BENCHMARKS.md is written whole by ``benchmarks/trusted_replay.py``:
its rule (the share with the best mean over tasks of the median over seeds, ties to the smaller one)
and whether the code's default is the pick."""

from __future__ import annotations

import doctest
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import trusted_replay  # noqa: E402

RUN = {"machine": "a machine", "load": "No other load.", "minutes": 2.0}


def _rows(glc: dict[float, float], meta: dict[float, float]) -> list[dict]:
    rows = []
    for task in trusted_replay.TASKS:
        for seed in trusted_replay.SEEDS:
            rows += [{"task": task, "seed": seed, "arm": "plain_ce", "test_accuracy": 0.7},
                     {"task": task, "seed": seed, "arm": "trusted_alone", "test_accuracy": 0.85}]
            for method, by_share in (("glc", glc), ("meta_weight", meta)):
                rows += [{"task": task, "seed": seed, "arm": method, "replay": share, "test_accuracy": value + seed / 1e4}
                         for share, value in by_share.items()]
    return rows


def test_the_rule_takes_the_best_share_and_breaks_a_near_tie_towards_the_smaller():
    rows = _rows(glc={0.0: 0.5, 0.25: 0.80, 0.5: 0.8008, 1.0: 0.7}, meta={0.0: 0.9, 0.25: 0.8, 0.5: 0.8, 1.0: 0.95})
    assert trusted_replay.picks(rows) == {"glc": 0.25, "meta_weight": 1.0}
    assert trusted_replay.picks(rows[:-1])["meta_weight"] is None  # a seed missing: no pick


def test_the_section_says_whether_the_code_default_is_the_pick():
    text = trusted_replay.render({**RUN, "rows": _rows(glc={0.0: 0.5, 0.25: 0.8, 0.5: 0.7, 1.0: 0.7},
                                                       meta={0.0: 0.9, 0.25: 0.8, 0.5: 0.7, 1.0: 0.7})})
    assert "Partial" not in text
    assert "- **glc**: the rule picks replay 0.25; the code's default is 0.25 (the pick)." in text
    assert "- **meta_weight**: the rule picks replay 0; the code's default is 0.25 (**not the pick**)." in text
    assert "| glc           | 0.25   | 0.801 (0.801-0.801) |" in text
    partial = trusted_replay.render({**RUN, "rows": _rows(glc={0.0: 0.5}, meta={0.0: 0.9})})
    assert "**Partial**: 24 of 60 runs." in partial and "no pick yet" in partial


def test_doctests():
    assert doctest.testmod(trusted_replay).failed == 0
