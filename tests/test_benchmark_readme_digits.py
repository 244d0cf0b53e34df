"""The "readme-digits" section of BENCHMARKS.md is written whole by ``benchmarks/readme_digits.py``
from its rows: the table, and the target read from the median of the pre-registered seeds only."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import readme_digits  # noqa: E402

RUN = {"machine": "a machine", "commit": "commit abc", "load": "No other load.", "minutes": 15.0,
       "portfolio": "0123456789abcdef"}


def _row(seed: int, accuracy: float) -> dict:
    return {"seed": seed, "test_accuracy": accuracy, "exported_trial": 7, "methods": 2, "combination": {},
            "plain_ce_recorded": 0.62, "best_trial_recorded": 0.9, "seconds": 300.0}


def test_the_target_is_read_from_the_median_of_every_seed():
    met = readme_digits.render({**RUN, "rows": [_row(0, 0.95), _row(1, 0.70), _row(2, 0.881)]})
    assert "**Reading**: median 0.881 against the target >= 0.88: met." in met
    assert "| median (min-max) | 0.881 (0.700-0.950)" in met and "digest 0123456789abcdef" in met
    missed = readme_digits.render({**RUN, "rows": [_row(0, 0.95), _row(1, 0.70), _row(2, 0.87)]})
    assert "median 0.870 against the target >= 0.88: **missed**." in missed


def test_a_partial_run_reads_no_target():
    text = readme_digits.render({**RUN, "rows": [_row(0, 0.95)]})
    assert "**Reading**: not all seeds ran yet." in text
