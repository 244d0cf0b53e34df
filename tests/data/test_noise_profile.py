"""The noise profile: measured on the trusted rows when there are enough of them, else a
confident-joint estimate of the labels' noise, before any trial."""

from __future__ import annotations

import json

import numpy as np
import pytest

from automl_noisy.data import DataSpec, load_data
from automl_noisy.data.noise_profile import (ESTIMATED, MEASURED, MIN_MEASURED_ROWS, calibrated_joint, confident_joint,
                                             describe_profile, measured_profile, noise_profile)


@pytest.mark.parametrize("seed", range(4))
def test_the_joint_matches_cleanlabs_estimate(seed):
    cleanlab = pytest.importorskip("cleanlab.count")
    rng = np.random.default_rng(seed)
    k, n = 4, 400
    labels = rng.integers(0, k, n)
    logits = 2 * rng.normal(size=(n, k))
    logits[np.arange(n), labels] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    ours, theirs = calibrated_joint(confident_joint(probs, labels), labels), cleanlab.estimate_joint(labels, probs)
    assert np.abs(ours - theirs).max() < 0.005
    assert abs(np.trace(ours) - np.trace(theirs)) < 0.01


def test_the_profile_finds_the_rate_and_the_pairs_of_pair_noise():
    data = load_data(DataSpec("digits", "pair:0.3"))
    x, y = np.concatenate([data.x_train, data.x_val]), np.concatenate([data.y_train, data.y_val])
    profile = noise_profile(x, y, data.class_names)
    # a linear model's probabilities are a rough guide: on digits it overestimates (0.41 for 0.29)
    assert data.noise_rate - 0.05 < profile.estimated_rate < data.noise_rate + 0.15
    # pair noise moves class c to c + 1: given c + 1, probably c
    assert all(int(given) == (int(likely) + 1) % 10 for given, likely, _ in profile.confused)
    text = describe_profile(profile.to_dict())
    assert text.startswith("estimated noise") and "->" in text
    clean = noise_profile(x, np.concatenate([data.y_train_clean, data.y_val_clean]), data.class_names)
    assert clean.estimated_rate < 0.05


def test_the_measured_profile_is_the_share_of_trusted_rows_whose_given_label_is_not_the_verified_one():
    verified = np.repeat([0, 1, 2], 20)  # 60 trusted rows, 20 of each class
    given = verified.copy()
    given[:6] = 1  # six of class a were given b
    given[20:23] = 2  # three of class b were given c
    given[40] = 0  # one of class c was given a
    profile = measured_profile(given, verified, ("a", "b", "c"))
    assert profile.measured and profile.method == MEASURED and profile.rows == 60
    assert profile.estimated_rate == 10 / 60
    assert profile.confused == (("b", "a", 6 / 60), ("c", "b", 3 / 60), ("a", "c", 1 / 60))  # given, truly
    assert profile.stderr == pytest.approx(np.sqrt(10 / 60 * 50 / 60 / 60))
    low, high = profile.interval
    assert 0.093 < low < 0.094 and 0.280 < high < 0.281  # Wilson's, around the rate
    stored = json.loads(json.dumps(profile.to_dict()))  # as a study keeps it
    assert describe_profile(stored) == ("measured noise 16.7% (95 % interval 9-28 %) on 60 trusted rows (given label "
                                        "vs verified); most confused, given -> truly: b -> a (10.0%), c -> b (5.0%), "
                                        "a -> c (1.7%)")
    clean = measured_profile(verified, verified, ("a", "b", "c"))
    assert clean.estimated_rate == 0 and clean.confused == () and clean.interval[0] == 0 < clean.interval[1]


def test_a_study_measures_the_noise_on_enough_trusted_rows_and_else_estimates_it():
    from automl_noisy.search.study import noise_profile as study_profile

    options = {"samples": 300, "features": 8, "classes": 3}
    data = load_data(DataSpec("synthetic", "symmetric:0.4", options={**options, "trusted_fraction": 0.25}))
    assert data.trusted_count >= MIN_MEASURED_ROWS
    profile = study_profile(data, 0)
    # --trusted-fraction: the given label is the injected noise's, the verified one the clean label
    given = np.concatenate([data.y_train_given[data.trusted_train], data.y_val_given[data.trusted_val]])
    clean = np.concatenate([data.y_train_clean[data.trusted_train], data.y_val_clean[data.trusted_val]])
    assert profile["measured"] and profile["rows"] == data.trusted_count
    assert profile["estimated_rate"] == np.mean(given != clean) > 0
    assert describe_profile(profile).startswith("measured noise")
    few = load_data(DataSpec("synthetic", "symmetric:0.4", options={**options, "trusted_fraction": 0.1}))
    assert 0 < few.trusted_count < MIN_MEASURED_ROWS
    fallback = study_profile(few, 0)
    assert not fallback["measured"] and fallback["method"] == ESTIMATED
    assert fallback["rows"] == len(few.y_train) + len(few.y_val)
    assert describe_profile(fallback).startswith("estimated noise")


def test_a_profile_stored_by_an_earlier_version_is_still_described():
    old = {"estimated_rate": 0.3, "confused": [{"given": "a", "likely": "b", "share": 0.1}], "rows": 100,
           "method": "confident joint of 5-fold out-of-sample logistic-regression probabilities"}
    assert describe_profile(old) == ("estimated noise 30.0% of 100 rows (confident joint of 5-fold out-of-sample "
                                     "logistic-regression probabilities); most confused, given -> probably: "
                                     "a -> b (10.0%)")
    assert describe_profile({"estimated_rate": 0.25}) == ("estimated noise 25.0% of ? rows (confident learning); most "
                                                          "confused, given -> probably: none")
