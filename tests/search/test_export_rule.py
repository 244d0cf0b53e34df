"""The export rule: trials compared row by row on the same rows, the one-standard-error rule."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from automl_noisy.data import load_data
from automl_noisy.search.controller import SearchOptions, search
from automl_noisy.search.selection import choose, correct_rows, methods, paired, versus_baseline
from automl_noisy.train.trainer import pack_rows


def _trial(correct: np.ndarray, combination: dict, baseline: bool = False, record: bool = True):
    attrs = {"combination": combination, "baseline": baseline}
    if record:
        attrs["val_correct"] = pack_rows(correct)
    return optuna.trial.create_trial(value=float(correct.mean()), user_attrs=attrs)


def _study(*trials) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for t in trials:
        study.add_trial(t)
    return study


def test_paired_difference_and_its_standard_error():
    rng = np.random.default_rng(0)
    a = rng.random(500) < 0.8
    b = a.copy()
    flip = rng.choice(500, 40, replace=False)
    b[flip] = ~b[flip]
    study = _study(_trial(a, {"loss": "ce"}, baseline=True), _trial(b, {"loss": "gce"}))
    p = paired(study.trials[1], study.trials[0])
    d = b.astype(float) - a.astype(float)
    assert math.isclose(p.difference, d.mean()) and math.isclose(p.stderr, d.std(ddof=1) / math.sqrt(500))
    # far smaller than two independent binomial errors: the trials agree on 460 of 500 rows
    independent = math.sqrt(a.mean() * (1 - a.mean()) / 500 + b.mean() * (1 - b.mean()) / 500)
    assert p.stderr < 0.6 * independent


def test_the_one_se_rule_takes_the_simplest_trial_the_best_cannot_be_told_from():
    rng = np.random.default_rng(1)
    ce = rng.random(1000) < 0.70
    close, far = ce.copy(), ce.copy()
    close[np.flatnonzero(~ce)[:30]] = True  # 30 rows better, 26 worse than CE: +0.004 ± 0.0075
    close[np.flatnonzero(ce)[:26]] = False
    far[np.flatnonzero(~ce)[:60]] = True  # +0.060: clear of it
    busy = {"loss": "gce", "mixing": "mixup", "penalty": "weight_decay+l1"}
    noisy = _study(_trial(ce, {"loss": "ce", "model": "mlp"}, baseline=True), _trial(close, busy))
    choice = choose(noisy)
    assert choice.trial.number == 0 and choice.best.number == 1
    assert choice.reason.startswith("rule one-se: trial 0 (") and "fewer methods (0 against 4)" in choice.reason
    assert choose(noisy, "best").trial.number == 1
    clear = _study(_trial(ce, {"loss": "ce"}, baseline=True), _trial(far, busy))
    assert choose(clear).trial.number == 1
    assert versus_baseline(clear, clear.trials[1]).endswith("paired over the same 1000 rows; ahead by more than one standard error)")
    # among several near the best: the fewest methods, then the higher value
    one_method = close.copy()
    one_method[np.flatnonzero(~close)[:2]] = True
    three = _study(_trial(ce, {"loss": "ce"}, baseline=True), _trial(close, busy), _trial(one_method, {"loss": "gce"}))
    assert methods(three.trials[2].user_attrs["combination"]) == 1
    assert choose(three).trial.number == 0


def test_the_ce_guard_keeps_the_best_unless_plain_ce_cannot_be_told_from_it():
    rng = np.random.default_rng(1)
    ce = rng.random(1000) < 0.70
    far = ce.copy()
    far[np.flatnonzero(~ce)[:60]] = True  # +0.060 over plain CE: clear of it
    simpler = far.copy()
    simpler[np.flatnonzero(far)[:23]] = False  # 23 rows worse, 20 better: -0.003 ± 0.0066, within
    simpler[np.flatnonzero(~far)[:20]] = True
    busy = {"loss": "gce", "mixing": "mixup", "penalty": "weight_decay+l1"}
    study = _study(_trial(ce, {"loss": "ce"}, baseline=True), _trial(far, busy), _trial(simpler, {"loss": "gce"}))
    assert choose(study, "one-se").trial.number == 2  # the simpler trial the best cannot be told from
    guard = choose(study, "ce-guard")
    assert guard.trial.number == 1 and guard.best.number == 1
    assert guard.reason.startswith("rule ce-guard: trial 1, the best (0.") and "ahead of plain CE, trial 0" in guard.reason
    close = ce.copy()
    close[np.flatnonzero(~ce)[:30]] = True  # +0.004 ± 0.0075 over plain CE
    close[np.flatnonzero(ce)[:26]] = False
    noisy = _study(_trial(ce, {"loss": "ce"}, baseline=True), _trial(close, busy))
    guard = choose(noisy, "ce-guard")
    assert guard.trial.number == 0 and guard.best.number == 1
    assert guard.reason.startswith("rule ce-guard: plain CE, trial 0 (0.") and "within one paired standard error" in guard.reason
    alone = _study(_trial(far, {"loss": "ce"}, baseline=True), _trial(ce, busy))  # plain CE is the best
    assert choose(alone, "ce-guard").reason.endswith("is plain CE")


def test_trials_without_row_records_keep_the_best():
    ce, better = np.zeros(10, bool), np.ones(10, bool)
    study = _study(_trial(ce, {"loss": "ce"}, baseline=True, record=False), _trial(better, {"loss": "gce"}, record=False))
    choice = choose(study)
    assert choice.trial.number == 1 and "recorded no per-row results" in choice.reason
    assert versus_baseline(study, study.trials[1]) is None


@pytest.mark.parametrize("cv", [3, 1], ids=["3 folds", "holdout"])
def test_a_search_records_the_rows_each_trial_got_right(tmp_path, tiny_spec, cv):
    """Each complete trial's record covers the rows its value was measured on (the whole pool in pool
    order with folds, the validation rows with a holdout) and agrees with its value."""
    study = search(SearchOptions(tiny_spec, space="quick", trials=3, storage=f"sqlite:///{tmp_path}/s.db",
                                 executor="local", progress=False, portfolio=None, cv=cv))
    data = load_data(tiny_spec)
    rows = len(data.y_train) + len(data.y_val) if cv > 1 else len(data.y_val)
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        correct = correct_rows(t)
        assert correct is not None and len(correct) == rows
        assert math.isclose(correct.mean(), t.value, abs_tol=1e-6)


def test_a_trials_row_record_is_what_train_predicts_out_of_fold(tmp_path, tiny_spec):
    """The record's row order is the pool's: trained again by ``train`` (the same seed, one thread,
    so the same fold models), the exported trial's out-of-fold predictions in label_issues.csv are
    right on exactly the rows its record marks right."""
    import pandas as pd

    from automl_noisy.search.export import export_best
    from automl_noisy.train import train_pipeline

    storage = f"sqlite:///{tmp_path}/s.db"
    study = search(SearchOptions(tiny_spec, space="quick", trials=2, storage=storage, executor="local",
                                 progress=False, portfolio=None, cv=3))
    pipeline, provenance = export_best(storage, None, tmp_path / "best.yaml", "best")
    metrics = train_pipeline(pipeline, tmp_path / "out", data=pipeline.data)
    record = correct_rows(study.trials[provenance["trial"]])
    data = load_data(pipeline.data)
    issues = pd.read_csv(tmp_path / "out" / "label_issues.csv", dtype=str).set_index("index")
    pool = np.concatenate([data.train_index, data.val_index])  # the pool's order: train rows, then validation
    right = (issues.loc[pool.astype(str), "given_label"] == issues.loc[pool.astype(str), "predicted_label"]).to_numpy()
    assert metrics["val_accuracy"] == pytest.approx(record.mean()) and right.tolist() == record.tolist()


def test_the_export_writes_every_default_the_trial_left_implicit():
    """A trial records what the search sampled; its export writes every hyperparameter, so a default
    changed in a later version does not change what an exported pipeline trains."""
    from automl_noisy.components import build
    from automl_noisy.data import DataSpec
    from automl_noisy.pipeline import ComponentSpec, Pipeline
    from automl_noisy.search.export import best_pipeline

    sampled = Pipeline(model=ComponentSpec("mlp", {"width": 32}), loss=ComponentSpec("gce"),
                       adjustment=ComponentSpec("glc"), data=DataSpec("digits", "symmetric:0.4"))
    trial = _trial(np.ones(10, bool), sampled.combination(), record=False)
    trial.set_user_attr("pipeline", sampled.to_dict())
    trial.set_user_attr("best_epoch", 3)
    pipeline, _ = best_pipeline(_study(trial))
    assert pipeline.model.params == {"width": 32, "depth": build("model", ComponentSpec("mlp")).params()["depth"]}
    assert pipeline.loss.params == build("loss", ComponentSpec("gce")).params() != {}
    assert pipeline.adjustment.params["retrain"] is False and pipeline.best_epoch == 3
    assert Pipeline.from_dict(pipeline.to_dict()) == pipeline
