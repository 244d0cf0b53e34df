"""A clean objective: with enough trusted rows validating, they rank the trials (out of fold under
K-fold, with their standard error), the noisy accuracy is kept beside it, and the summary, export,
report and model folder say which ranked."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from automl_noisy.data import DataSpec, load_data
from automl_noisy.data.dataset import MIN_TRUSTED_TO_RANK
from automl_noisy.data.folds import fold_split, scored_rows
from automl_noisy.pipeline import Pipeline
from automl_noisy.search.controller import SearchOptions, search
from automl_noisy.search.curve import TrialCurve
from automl_noisy.search.export import best_pipeline
from automl_noisy.search.selection import correct_rows
from automl_noisy.train import EpochMetrics, run_trial
from automl_noisy.train.trainer import pack_rows, unpack_rows

# 300 rows, a pool of 240: a fifth trusted is 48 pool rows, about 10 of them in a holdout's validation split
TRUSTED = DataSpec(source="synthetic", noise="symmetric:0.5",
                   options={"samples": 300, "features": 8, "classes": 3, "trusted_fraction": 0.2})


def _options(tmp_path, spec, **kw) -> SearchOptions:
    base = dict(data=spec, space="quick", trials=1, storage=f"sqlite:///{tmp_path}/s.db", executor="local",
                progress=False)
    return SearchOptions(**{**base, **kw})


def test_enough_trusted_rows_validating_make_the_objective_clean():
    folds3 = load_data(replace(TRUSTED, folds=3))
    assert folds3.trusted_count >= MIN_TRUSTED_TO_RANK and folds3.trusted_objective
    assert all(fold_split(folds3, i).trusted_objective for i in range(3))  # every fold agrees with its pool
    holdout = load_data(TRUSTED)
    assert int(holdout.trusted_val.sum()) < MIN_TRUSTED_TO_RANK and not holdout.trusted_objective
    assert not load_data(replace(TRUSTED, options={"samples": 300, "features": 8, "classes": 3})).trusted_objective


def test_a_fold_scores_its_trusted_rows_and_records_every_row_as_noisy(tiny_spec):
    data = load_data(replace(TRUSTED, folds=3))
    pipeline = Pipeline.from_dict({"model": "mlp", "epochs": 2, "data": data.spec.to_dict()})
    fold = fold_split(data, 1)
    for m in run_trial(pipeline, data, fold=1):
        correct = unpack_rows(m.val_correct)
        assert len(correct) == int(fold.trusted_val.sum())  # the rows that score: the trusted ones
        assert m.val_accuracy == pytest.approx(correct.mean())
        assert m.noisy_val_accuracy is not None and 0 <= m.noisy_val_accuracy <= 1
    plain = load_data(replace(TRUSTED, folds=3, options={"samples": 300, "features": 8, "classes": 3}))
    for m in run_trial(pipeline, plain, fold=1):
        assert m.noisy_val_accuracy is None and len(unpack_rows(m.val_correct)) == len(fold_split(plain, 1).y_val)


def test_folds_combine_weighted_by_the_rows_they_score_a_fold_without_any_counting_for_nothing():
    curve = TrialCurve([0, 4], [np.array([], dtype=int), np.arange(4)], all_sizes=[10, 30])
    curve.add(0, EpochMetrics(1, 1.0, float("nan"), None, 1.0, val_correct=pack_rows(np.zeros(0, bool)),
                              noisy_val_accuracy=0.2))
    epoch = curve.add(1, EpochMetrics(1, 1.0, 0.75, None, 1.0, val_correct=pack_rows(np.array([1, 1, 0, 1], bool)),
                                      noisy_val_accuracy=0.6))
    assert epoch.val_accuracy == 0.75 and epoch.noisy_val_accuracy == pytest.approx((0.2 * 10 + 0.6 * 30) / 40)
    assert unpack_rows(epoch.val_correct).tolist() == [True, True, False, True]
    assert curve.stderr() == pytest.approx(math.sqrt(0.75 * 0.25 / 4))


def test_a_search_ranks_by_the_trusted_rows_out_of_fold_and_says_so(tmp_path):
    spec = replace(TRUSTED, folds=3)
    study = search(_options(tmp_path, spec, cv=3, trials=2))
    data = load_data(spec)
    sizes, _ = scored_rows(data, True)
    assert study.user_attrs["objective"] == {"ranked_by": "trusted", "rows": data.trusted_count}
    assert sum(sizes) == data.trusted_count
    for trial in study.trials:
        correct = correct_rows(trial)
        assert len(correct) == data.trusted_count and trial.value == pytest.approx(correct.mean())
        assert trial.user_attrs["value_stderr"] == pytest.approx(math.sqrt(trial.value * (1 - trial.value)
                                                                           / data.trusted_count))
        assert 0 <= trial.user_attrs["noisy_val_accuracy"] <= 1
    _, provenance = best_pipeline(study)
    assert provenance["ranked_by"] == f"accuracy on the {data.trusted_count} trusted rows (a clean objective)"
    assert f"out-of-fold accuracy on the {data.trusted_count} trusted rows" in provenance["validation"]
    assert "noisy_val_accuracy" in provenance


def test_too_few_trusted_rows_validating_leave_the_noisy_objective_and_say_why(tmp_path):
    study = search(_options(tmp_path, TRUSTED, cv=1))
    objective = study.user_attrs["objective"]
    assert objective["ranked_by"] == "noisy" and 0 < objective["trusted_validating"] < MIN_TRUSTED_TO_RANK
    (trial,) = study.trials
    assert "noisy_val_accuracy" not in trial.user_attrs
    _, provenance = best_pipeline(study)
    assert provenance["ranked_by"].startswith(f"noisy accuracy: only {objective['trusted_validating']} trusted rows")
    assert provenance["validation"] == "holdout (noisy accuracy)"


def test_the_summary_export_report_and_model_folder_say_which_ranked(tmp_path):
    import json
    import re
    import subprocess
    import sys

    storage = f"sqlite:///{tmp_path}/cli.db"
    data = ["--data", "synthetic", "--noise", "symmetric:0.5", "--samples", "300", "--dims", "8", "--classes", "3",
            "--trusted-fraction", "0.2"]
    run = lambda *a: subprocess.run([sys.executable, "-m", "automl_noisy.cli", *a], capture_output=True,  # noqa: E731
                                    text=True, check=True, cwd=tmp_path)
    out = run("search", *data, "--space", "quick", "--trials", "1", "--cv", "3", "--executor", "local",
              "--storage", storage, "--no-progress").stdout
    rows = re.search(r"out-of-fold accuracy on the (\d+) trusted rows", out).group(1)
    assert int(rows) >= MIN_TRUSTED_TO_RANK and "noisy_val_accuracy" in out
    out = run("export", "--storage", storage, "-o", str(tmp_path / "best.yaml")).stdout
    assert f"ranked by accuracy on the {rows} trusted rows" in out
    run("report", "--storage", storage, "-o", str(tmp_path / "r.html"))
    assert f"trials ranked by accuracy on the {rows} trusted rows" in (tmp_path / "r.html").read_text()
    run("train", str(tmp_path / "best.yaml"), "-o", str(tmp_path / "model"))
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["validation"] == "3-fold out-of-fold on the trusted rows" and "noisy_val_accuracy" in metrics
