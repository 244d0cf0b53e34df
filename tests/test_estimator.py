"""NoisyLabelSearch: scikit-learn's estimator conventions over search, export and train."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import automl_noisy
import automl_noisy.final_model
from automl_noisy import NoisyLabelSearch
from automl_noisy.errors import UserError

TINY = {"trials": 2, "space": "quick", "executor": "local", "portfolio": False, "verbose": 0}


@pytest.fixture(scope="module")
def noisy_arrays():
    x, y = make_classification(n_samples=240, n_features=6, n_informative=4, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, random_state=0)
    names = np.array(["ant", "bee", "cat"])[y]
    rng = np.random.default_rng(0)
    flip = rng.random(len(y)) < 0.2
    noisy = np.where(flip, np.array(["ant", "bee", "cat"])[(y + 1) % 3], names)
    return x * 10 + 3, noisy  # far from standardized: the search standardizes as for an npz file


@pytest.fixture(scope="module")
def fitted(noisy_arrays):
    x, y = noisy_arrays
    return NoisyLabelSearch(**TINY).fit(x, y)


def test_fit_exposes_the_search_and_the_model(fitted, noisy_arrays):
    x, y = noisy_arrays
    assert fitted.classes_.tolist() == ["ant", "bee", "cat"] and fitted.n_features_in_ == 6
    assert isinstance(fitted.study_, optuna.Study) and len(fitted.study_.trials) == 2
    from automl_noisy.search.selection import choose

    picked = choose(fitted.study_, fitted.rule).trial  # the trial the export rule picks, not always the best
    assert fitted.best_pipeline_.combination().items() <= picked.user_attrs["combination"].items()
    proba = fitted.predict_proba(x)
    assert proba.shape == (240, 3) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    predicted = fitted.predict(x)
    assert set(predicted) <= {"ant", "bee", "cat"} and (predicted == fitted.classes_[proba.argmax(axis=1)]).all()
    assert 0.0 <= fitted.score(x, y) <= 1.0
    issues = fitted.label_issues_
    assert list(issues.columns) == ["index", "given_label", "predicted_label", "suspicion"]
    assert sorted(issues["index"]) == list(range(240))  # 3-fold by default on small data: every row scored
    assert (issues.set_index("index").sort_index()["given_label"].to_numpy() == y).all()
    assert issues["suspicion"].is_monotonic_decreasing
    assert {"family", "choice", "effect", "low", "high", "verdict"} <= set(fitted.effects_.columns)
    assert fitted.metrics_["validation"] == "3-fold out-of-fold"
    # the default ships the three fold models the search validated, as one model
    assert fitted.final_model == automl_noisy.final_model.DEFAULT_FINAL_MODEL == "ensemble"
    assert fitted.metrics_["model"] == "ensemble of 3 fold models" and len(fitted.model_.ensemble.members) == 3


def test_final_model_refit_trains_one_model_on_every_row(noisy_arrays, tmp_path):
    """final_model="refit" ships one model trained on all rows; the labels are scored out of fold
    as with the ensemble, by the same fold models."""
    x, y = noisy_arrays
    both = {name: NoisyLabelSearch(**TINY, final_model=name, model_dir=str(tmp_path / name)).fit(x, y)
            for name in ("refit", "ensemble")}
    refit, ensemble = both["refit"], both["ensemble"]
    assert refit.metrics_["model"] == "refit on all 240 rows" and len(refit.model_.ensemble.members) == 1
    assert len(ensemble.model_.ensemble.members) == 3
    assert refit.metrics_["val_accuracy"] == ensemble.metrics_["val_accuracy"]
    pd.testing.assert_frame_equal(refit.label_issues_, ensemble.label_issues_)
    for name, model in both.items():  # the folder kept is the model fit predicts with
        np.testing.assert_array_equal(automl_noisy.load(tmp_path / name).predict_proba(x), model.predict_proba(x))
    assert not np.allclose(refit.predict_proba(x), ensemble.predict_proba(x), atol=1e-3)
    with pytest.raises(ValueError, match=r"^final_model must be one of 'ensemble', 'refit', got 'bagging'$"):
        NoisyLabelSearch(**TINY, final_model="bagging").fit(x, y)


def test_params_follow_scikit_learn(fitted):
    params = fitted.get_params()
    assert params["trials"] == 2 and params["space"] == "quick"
    copy = clone(fitted)
    assert copy.get_params() == params and not hasattr(copy, "model_")
    assert copy.set_params(trials=5).trials == 5
    with pytest.raises(NotFittedError):
        copy.predict(np.zeros((1, 6)))


def test_cross_val_score_and_a_pipeline_with_a_scaler(noisy_arrays):
    x, y = noisy_arrays
    scores = cross_val_score(NoisyLabelSearch(**TINY, cv=1), x, y, cv=2)
    assert scores.shape == (2,) and ((0.0 <= scores) & (scores <= 1.0)).all()
    pipeline = make_pipeline(StandardScaler(), NoisyLabelSearch(**TINY, cv=1)).fit(x, y)
    assert pipeline.predict(x[:5]).shape == (5,) and 0.0 <= pipeline.score(x, y) <= 1.0


def test_a_dataframe_with_a_category_and_a_kept_model_folder(tmp_path):
    rng = np.random.default_rng(1)
    n = 150
    frame = pd.DataFrame({"size": rng.normal(size=n), "shape": rng.choice(["round", "flat"], n),
                          "label": rng.normal(size=n)}, index=rng.permutation(n) + 1000)  # a feature named label
    y = np.where(frame["size"] + (frame["shape"] == "round") > 0.5, 1, 0)
    model = NoisyLabelSearch(**TINY, cv=1, model_dir=str(tmp_path / "model")).fit(frame, y)
    assert model.feature_names_in_.tolist() == ["size", "shape", "label"] and model.classes_.tolist() == [0, 1]
    assert set(model.predict(frame)) <= {0, 1}
    assert model.label_issues_["given_label"].isin([0, 1]).all()
    loaded = automl_noisy.load(tmp_path / "model")  # the folder stands alone
    np.testing.assert_array_equal(loaded.predict_proba(frame[["label", "shape", "size"]]), model.predict_proba(frame))
    # the folder names the classes "0" and "1": its score matches numbers by value, and their text
    assert loaded.score(frame, y) == loaded.score(frame, y.astype(float)) == loaded.score(frame, y.astype(str))
    assert loaded.score(frame, y) == pytest.approx(model.score(frame, y))


def test_a_stored_study_is_resumed_by_the_same_fit(noisy_arrays, tmp_path):
    x, y = noisy_arrays
    storage = f"sqlite:///{tmp_path / 'fit.db'}"
    first = NoisyLabelSearch(**TINY, cv=1, storage=storage).fit(x, y)
    again = NoisyLabelSearch(**{**TINY, "trials": 3}, cv=1, storage=storage).fit(x, y)
    assert again.study_.study_name == first.study_.study_name
    assert [t.number for t in again.study_.trials] == [0, 1, 2]  # resumed to 3 trials, not started over
    assert optuna.load_study(study_name=first.study_.study_name, storage=storage).user_attrs["analysis"]


def test_on_ray_and_quiet_unless_verbose(noisy_arrays, ray_session, capfd):
    x, y = noisy_arrays
    NoisyLabelSearch(**{**TINY, "executor": "ray", "workers": 2}, cv=1).fit(x, y)
    assert "NoisyLabelSearch" not in capfd.readouterr().err
    NoisyLabelSearch(**{**TINY, "verbose": 1}, cv=1).fit(x, y)
    err = capfd.readouterr().err
    assert "NoisyLabelSearch: of 2 trials, rule one-se: trial" in err


def test_bad_input(noisy_arrays):
    x, y = noisy_arrays
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        NoisyLabelSearch(**TINY).fit(x, y[:-1])
    with pytest.raises(ValueError, match=r"y holds only one class \(0.0\)"):
        NoisyLabelSearch(**TINY).fit(x, np.zeros(len(x)))
    with pytest.raises(ValueError, match="Unknown label type"):
        NoisyLabelSearch(**TINY).fit(x, np.linspace(0, 1, len(x)))
    # a mistake the search itself finds is the ValueError scikit-learn expects, and the project's UserError
    with pytest.raises(ValueError, match="unknown executor 'slurm'; choose one of: local, ray") as caught:
        NoisyLabelSearch(**{**TINY, "executor": "slurm"}).fit(x, y)
    assert isinstance(caught.value, UserError)


@pytest.mark.parametrize("param, value", [("trials", 0), ("trials", 2.5), ("random_state", None), ("threads", 0),
                                          ("cv", 0), ("workers", -1), ("verbose", "loud"), ("portfolio", "yes")])
def test_bad_parameters_name_the_parameter(noisy_arrays, param, value):
    x, y = noisy_arrays
    with pytest.raises(ValueError, match=f"^{param} must be (an integer of at least|True or False).*got {value!r}$"):
        NoisyLabelSearch(**{**TINY, param: value}).fit(x, y)


@pytest.mark.parametrize("first", ["a number", "a string"])
def test_labels_mixing_numbers_and_strings_are_refused(noisy_arrays, first):
    """An object array of numbers and strings has no order: a ValueError as in scikit-learn (which
    raises a TypeError of its own when the first label is a string), not an internal error."""
    x, _ = noisy_arrays
    labels = [1, "a", 2] if first == "a number" else ["a", 1, 2]
    with pytest.raises(ValueError, match=r"y mixes numbers and strings as labels \(e.g. 1 and 'a'\); pass labels "
                                         r"of one kind, e.g. numpy.asarray\(y, dtype=str\)") as caught:
        NoisyLabelSearch(**TINY).fit(x, np.array(labels * 80, dtype=object))
    assert isinstance(caught.value, UserError)



@pytest.mark.parametrize("missing", [None, np.nan, pd.NA], ids=["None", "NaN", "pandas.NA"])
def test_missing_labels_in_an_object_array_are_refused(noisy_arrays, missing):
    x, _ = noisy_arrays
    with pytest.raises(ValueError, match=r"^y has 80 missing label\(s\) \(None or NaN\); drop those rows"):
        NoisyLabelSearch(**TINY).fit(x, np.array(["ant", "bee", missing] * 80, dtype=object))

def test_small_data_fits_and_a_list_of_mixed_labels_is_text(noisy_arrays):
    """Twelve rows of three classes: too few for a 10 % validation split, so it holds out one row of
    each class. A plain list mixing numbers and strings becomes strings, as numpy.asarray (and so
    scikit-learn's own classifiers) make it. NumPy integers are parameters like Python's."""
    x, _ = noisy_arrays
    model = NoisyLabelSearch(**{**TINY, "trials": np.int64(1), "cv": np.int64(2)}).fit(x[:12], [1, "a", 2] * 4)
    assert model.classes_.tolist() == ["1", "2", "a"] and set(model.predict(x[:12])) <= {"1", "2", "a"}
    assert model.best_pipeline_.data.val_fraction > 0.1
    with pytest.raises(ValueError, match="class 'b' has only one row in y"):
        NoisyLabelSearch(**TINY).fit(x[:13], [*([1, "a", 2] * 4), "b"])


def test_new_rows_are_checked_as_scikit_learn_checks_them(fitted, noisy_arrays):
    x, _ = noisy_arrays
    with pytest.raises(ValueError, match="X has 5 features, but NoisyLabelSearch is expecting 6 features"):
        fitted.predict(x[:, :5])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fitted.predict(np.where(np.eye(6, dtype=bool), np.nan, x[:6]))
    with pytest.raises(ValueError, match="Expected 2D array"):
        fitted.predict(x[0])
    np.testing.assert_array_equal(fitted.predict(pd.DataFrame(x)), fitted.predict(x))  # a DataFrame of the columns


def test_trusted_rows_replace_their_labels_and_belong_to_the_study(noisy_arrays, tmp_path):
    x, y = noisy_arrays
    storage = f"sqlite:///{tmp_path / 'fit.db'}"
    trusted = {int(i): "cat" for i in np.flatnonzero(y != "cat")[:6]}
    model = NoisyLabelSearch(**{**TINY, "trials": 1}, cv=1, storage=storage).fit(x, y, trusted=trusted)
    given = model.label_issues_.set_index("index")["given_label"]
    assert all(given[row] == "cat" for row in trusted)  # the verified labels, not y's
    assert model.study_.user_attrs["data"]["options"]["trusted"].startswith("memory:")
    with pytest.raises(ValueError, match="different data"):  # the same study, other trusted rows
        NoisyLabelSearch(**{**TINY, "trials": 2}, cv=1, storage=storage).fit(x, y, trusted={0: "ant"})
    with pytest.raises(ValueError, match="different data"):  # or none
        NoisyLabelSearch(**{**TINY, "trials": 2}, cv=1, storage=storage).fit(x, y)
    again = NoisyLabelSearch(**{**TINY, "trials": 2}, cv=1, storage=storage).fit(x, y, trusted=dict(trusted))
    assert len(again.study_.trials) == 2  # the same trusted rows: resumed


@pytest.mark.parametrize("trusted, message", [
    ([(0, "ant")], "trusted must be a mapping"), ({}, "trusted is empty"),
    ({240: "ant"}, "row 240, which is not a row of X; rows are 0..239"), ({-1: "ant"}, "not a row of X"),
    ({"0": "ant"}, "not a row of X"), ({3: "dog"}, "trusted label 'dog' of row 3 is not a class of y"),
    ({3: ["ant"]}, "is not a class of y"),
])
def test_bad_trusted_rows(noisy_arrays, trusted, message):
    x, y = noisy_arrays
    with pytest.raises(ValueError, match=message) as caught:
        NoisyLabelSearch(**TINY).fit(x, y, trusted=trusted)
    assert isinstance(caught.value, UserError)
