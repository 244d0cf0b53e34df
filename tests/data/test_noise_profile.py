"""The noise profile: a confident-joint estimate of the labels' noise, before any trial."""

from __future__ import annotations

import numpy as np
import pytest

from automl_noisy.data import DataSpec, load_data
from automl_noisy.data.noise_profile import calibrated_joint, confident_joint, describe_profile, noise_profile


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
