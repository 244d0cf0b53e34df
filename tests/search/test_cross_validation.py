"""Model selection: a trial's value is the best epoch of its (cross-validated or holdout) noisy
curve, with its standard error; folds run as jobs of one trial."""

from __future__ import annotations

import math
from dataclasses import replace

import optuna
import pytest

from automl_noisy.data.folds import fold_split
from automl_noisy.errors import UserError
from automl_noisy.pipeline import Pipeline
from automl_noisy.search.controller import SearchOptions, search
from automl_noisy.train import run_trial


def _options(tmp_path, spec, **kw) -> SearchOptions:
    base = dict(data=spec, space="quick", trials=1, storage=f"sqlite:///{tmp_path}/s.db", executor="local",
                progress=False)
    return SearchOptions(**{**base, **kw})


def test_a_cross_validated_trial_reports_the_out_of_fold_curve_and_keeps_its_best_epoch(tmp_path, tiny_spec,
                                                                                         tiny_data):
    (trial,) = search(_options(tmp_path, tiny_spec, cv=3)).trials
    pipeline = Pipeline.from_dict(trial.user_attrs["pipeline"])
    assert pipeline.data.folds == 3
    data = replace(tiny_data, spec=pipeline.data)
    # the same folds, trained one by one as the executor did (same process, same thread count)
    curves = [[m.val_accuracy for m in run_trial(pipeline, data, threads=None, fold=i)] for i in range(3)]
    sizes = [len(fold_split(data, i).y_val) for i in range(3)]
    expected = {e + 1: sum(c[e] * n for c, n in zip(curves, sizes)) / sum(sizes) for e in range(pipeline.epochs)}
    assert trial.intermediate_values == pytest.approx(expected, abs=1e-9)
    best = max(expected.values())
    assert trial.value == pytest.approx(best, abs=1e-9)
    assert trial.user_attrs["best_epoch"] == min(e for e, v in expected.items() if v == pytest.approx(best, abs=1e-9))
    assert trial.user_attrs["value_stderr"] == pytest.approx(math.sqrt(best * (1 - best) / sum(sizes)))
    assert sum(sizes) == len(tiny_data.y_train) + len(tiny_data.y_val)  # every pool row scored once


def test_a_holdout_trial_keeps_its_best_epoch_too(tmp_path, tiny_spec, tiny_data):
    (trial,) = search(_options(tmp_path, tiny_spec, cv=1)).trials
    curve = trial.intermediate_values
    assert trial.value == max(curve.values()) and curve[trial.user_attrs["best_epoch"]] == trial.value
    n = len(tiny_data.y_val)
    assert trial.user_attrs["value_stderr"] == pytest.approx(math.sqrt(trial.value * (1 - trial.value) / n))


def test_a_failing_fold_fails_its_trial_with_the_reason(tmp_path, tiny_spec, monkeypatch):
    from automl_noisy.search.executors import local

    real = local.run_trial

    def run(pipeline, data, fold=None, **kwargs):  # a generator, as run_trial is
        if fold == 1:
            raise RuntimeError("fold one broke")
        yield from real(pipeline, data, fold=fold, **kwargs)

    monkeypatch.setattr(local, "run_trial", run)
    (trial,) = search(_options(tmp_path, tiny_spec, cv=3)).trials
    assert trial.state == optuna.trial.TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == "fold 1: RuntimeError: fold one broke"


def test_a_resumed_study_keeps_its_folds_and_a_changed_cv_is_refused(tmp_path, tiny_spec):
    search(_options(tmp_path, tiny_spec, cv=2))
    study = search(_options(tmp_path, tiny_spec, trials=2))  # no --cv: the study's own 2 folds
    assert {t.user_attrs["pipeline"]["data"]["folds"] for t in study.trials} == {2}
    with pytest.raises(UserError, match="different data, noise or --cv"):
        search(_options(tmp_path, tiny_spec, trials=3, cv=3))


@pytest.mark.parametrize(("cv", "message"), [(0, "must be a positive integer"), (500, "--cv 500 needs 2 to")])
def test_bad_cv_is_a_user_error_and_stores_nothing(tmp_path, tiny_spec, cv, message):
    with pytest.raises(UserError, match=message):
        search(_options(tmp_path, tiny_spec, cv=cv))
    assert not optuna.get_all_study_names(f"sqlite:///{tmp_path}/s.db")
