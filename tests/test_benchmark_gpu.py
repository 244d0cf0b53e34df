"""``benchmarks/gpu.py`` rates a search two ways: over its whole wall time and over its trials' own
window (first start to last completion), so a fixed cost per search cannot hide how trials pack."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import optuna
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu  # noqa: E402


def _trial(start_s: float, seconds: float, state=optuna.trial.TrialState.COMPLETE):
    t0 = dt.datetime(2026, 1, 1)
    trial = optuna.trial.create_trial(state=state, value=0.5 if state == optuna.trial.TrialState.COMPLETE else None)
    trial.datetime_start = t0 + dt.timedelta(seconds=start_s)
    trial.datetime_complete = t0 + dt.timedelta(seconds=start_s + seconds)
    return trial


def test_the_trials_window_leaves_out_the_search_s_fixed_cost():
    # four trials, two at a time, 60 s each: the window is 120 s; the search took 300 s in all
    trials = [_trial(0, 60), _trial(0, 60), _trial(60, 60), _trial(60, 60)]
    rates = gpu.rates(trials, 4, 300.0)
    assert rates == {"whole": 4 * 3600 / 300, "trials": 4 * 3600 / 120, "trial_s": 60.0}


def test_a_trial_that_did_not_complete_is_refused():
    trials = [_trial(0, 60), _trial(0, 10, optuna.trial.TrialState.FAIL)]
    with pytest.raises(SystemExit, match="1 of 2 trials did not complete"):
        gpu.rates(trials, 2, 100.0)
