"""Noise specs and noise injection: the math each kind promises."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automl_noisy.data import NoiseSpec, inject_noise, parse_noise, realized_rate
from automl_noisy.errors import UserError


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("text, expected", [
    ("none", NoiseSpec("none", 0.0)),
    ("symmetric:0.4", NoiseSpec("symmetric", 0.4)),
    ("symmetric:0", NoiseSpec("symmetric", 0.0)),
    (" Pair:0.2 ", NoiseSpec("pair", 0.2)),
    ("asymmetric:0.3", NoiseSpec("asymmetric", 0.3)),
    ("asymmetric:0.3:3>8,7>1", NoiseSpec("asymmetric", 0.3, ((3, 8), (7, 1)))),
    ("instance:0.25", NoiseSpec("instance", 0.25)),
])
def test_parse_valid(text, expected):
    assert parse_noise(text) == expected
    assert parse_noise(str(expected)) == expected


@pytest.mark.parametrize("text", [
    "symetric:0.4", "symmetric", "symmetric:1", "symmetric:1.5", "pair:-0.1", "pair:abc",
    "instance:nan", "none:0.2", "pair:0.2:1>2", "asymmetric:0.3:3-8", "asymmetric:0.3:3>3",
    "asymmetric:0.3:a>b", "asymmetric:0.3:1>2,1>3", "asymmetric:0.3:", "", "gaussian:0.1",
])
def test_parse_invalid_names_the_forms(raises_user_error, text):
    with raises_user_error(f"bad noise spec {text!r}", "symmetric:R", "asymmetric:R[:a>b,...]"):
        parse_noise(text)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 400), rate=st.floats(0.0, 0.99), k=st.integers(2, 12), seed=st.integers(0, 2**32 - 1))
def test_symmetric_flips_exactly_round_rn_to_other_classes(n, rate, k, seed):
    y = np.random.default_rng(seed).integers(0, k, size=n)
    before = y.copy()
    rate = min(rate, (k - 1) / k - 1e-9)  # at and above (K-1)/K inject_noise refuses: no signal left
    noisy = inject_noise(y, NoiseSpec("symmetric", rate), k, rng(seed))
    np.testing.assert_array_equal(y, before)
    assert int((noisy != y).sum()) == round(rate * n)
    assert noisy.dtype == y.dtype and noisy.min() >= 0 and noisy.max() < k


def test_symmetric_targets_are_uniform_over_other_classes():
    y = np.zeros(40000, dtype=np.int64)
    noisy = inject_noise(y, "symmetric:0.5", 5, rng())
    counts = np.bincount(noisy[noisy != 0], minlength=5)[1:]
    assert np.allclose(counts / counts.sum(), 0.25, atol=0.02)


def test_pair_moves_to_next_class_only():
    k = 4
    y = np.repeat(np.arange(k), 2500)
    noisy = inject_noise(y, "pair:0.3", k, rng())
    moved = noisy != y
    np.testing.assert_array_equal(noisy[moved], (y[moved] + 1) % k)
    for c in range(k):
        assert abs(moved[y == c].mean() - 0.3) < 0.04


def test_asymmetric_follows_the_map_only():
    y = np.repeat(np.arange(5), 2000)
    noisy = inject_noise(y, "asymmetric:0.4:1>3,3>1", 5, rng())
    moved = noisy != y
    assert set(np.unique(y[moved])) == {1, 3}
    np.testing.assert_array_equal(noisy[moved & (y == 1)], 3)
    np.testing.assert_array_equal(noisy[moved & (y == 3)], 1)
    for c in (1, 3):
        assert abs(moved[y == c].mean() - 0.4) < 0.04


def test_asymmetric_uses_the_default_map_when_none_given():
    y = np.repeat(np.arange(10), 500)
    noisy = inject_noise(y, "asymmetric:0.5", 10, rng(), default_class_map=((2, 7), (6, 5)))
    assert set(np.unique(y[noisy != y])) == {2, 6}


def test_asymmetric_without_any_map(raises_user_error):
    with raises_user_error("needs a class map", "asymmetric:0.4:3>8,7>1"):
        inject_noise(np.arange(4), "asymmetric:0.4", 4, rng())


def test_asymmetric_class_outside_range(raises_user_error):
    with raises_user_error("class 9", "0..3"):
        inject_noise(np.arange(4), "asymmetric:0.4:1>9", 4, rng())


def instance_data(n: int = 4000, d: int = 10, k: int = 4, seed: int = 0):
    g = np.random.default_rng(seed)
    return g.normal(size=(n, d)), g.integers(0, k, size=n)


@pytest.mark.parametrize("rate", [0.2, 0.4])
def test_instance_realized_rate_near_r(rate):
    x, y = instance_data()
    noisy = inject_noise(y, f"instance:{rate}", 4, rng(1), x=x)
    assert abs(realized_rate(noisy, y) - rate) < 0.05
    assert noisy.min() >= 0 and noisy.max() < 4


def test_instance_noise_depends_on_the_features():
    """Groups of one class with different features flip to different classes."""
    n, d, k = 6000, 6, 4
    group = np.repeat(np.arange(d), n // d)
    x = np.zeros((n, d))
    x[np.arange(n), group] = 1.0
    y = np.zeros(n, dtype=np.int64)
    noisy = inject_noise(y, "instance:0.4", k, rng(3), x=x)
    shares = []
    for j in range(d):
        moved = noisy[(group == j) & (noisy != 0)]
        shares.append(np.bincount(moved, minlength=k)[1:] / len(moved))
    total_variation = max(0.5 * np.abs(a - b).sum() for a in shares for b in shares)
    assert total_variation > 0.3


def test_instance_same_rng_different_features_differ():
    x, y = instance_data(n=1000)
    a = inject_noise(y, "instance:0.3", 4, rng(5), x=x)
    b = inject_noise(y, "instance:0.3", 4, rng(5), x=x[::-1].copy())
    assert (a != b).any()


@pytest.mark.parametrize("text", ["none", "symmetric:0", "pair:0", "instance:0"])
def test_no_noise_returns_a_copy(text):
    x, y = instance_data(n=100)
    noisy = inject_noise(y, text, 4, rng(), x=x)
    np.testing.assert_array_equal(noisy, y)
    assert noisy is not y


def test_same_generator_state_same_labels():
    y = np.repeat(np.arange(3), 100)
    for text in ("symmetric:0.3", "pair:0.3", "asymmetric:0.3:0>2"):
        np.testing.assert_array_equal(inject_noise(y, text, 3, rng(9)), inject_noise(y, text, 3, rng(9)))


def test_realized_rate():
    assert realized_rate(np.array([0, 1, 2, 3]), np.array([0, 1, 0, 0])) == 0.5
    assert realized_rate(np.array([], dtype=int), np.array([], dtype=int)) == 0.0
    with pytest.raises(ValueError):
        realized_rate(np.zeros(3), np.zeros(4))


def test_labels_out_of_range_are_rejected():
    with pytest.raises(ValueError):
        inject_noise(np.array([0, 5]), "pair:0.1", 3, rng())
    with pytest.raises(UserError):
        inject_noise(np.array([0, 1]), "pear:0.1", 3, rng())


@pytest.mark.parametrize("noise,k", [("symmetric:0.9", 10), ("symmetric:0.8", 5), ("symmetric:0.7", 3),
                                     ("symmetric:0.5", 2), ("pair:0.5", 4), ("pair:0.6", 10)])
def test_noise_that_leaves_no_signal_is_refused(noise, k, raises_user_error):
    """The true class must stay the most likely label: symmetric r < (K-1)/K, pair r < 0.5."""
    with raises_user_error("leaves no signal", noise):
        inject_noise(np.arange(k), noise, k, rng())


@pytest.mark.parametrize("noise,k", [("symmetric:0.89", 10), ("symmetric:0.79", 5), ("symmetric:0.6", 3),
                                     ("pair:0.49", 4), ("asymmetric:0.6:0>1", 3), ("instance:0.6", 3)])
def test_noise_that_keeps_a_signal_is_accepted(noise, k):
    y = np.repeat(np.arange(k), 50)
    assert inject_noise(y, noise, k, rng(), x=np.random.default_rng(0).random((len(y), 4))).shape == y.shape


@pytest.mark.parametrize("noise,k", [("symmetric:0.8", 10), ("symmetric:0.4", 10), ("symmetric:0.3", 3),
                                     ("pair:0.4", 10), ("pair:0.2", 4), ("none", 5)])
def test_label_information_is_the_mutual_information_of_the_empirical_joint(noise, k):
    """The closed form against the mutual information of labels drawn by the injector itself."""
    from automl_noisy.data.noise import label_information

    y = np.repeat(np.arange(k), 40_000)
    noisy = inject_noise(y, noise, k, rng(3))
    joint = np.bincount(y * k + noisy, minlength=k * k).reshape(k, k) / len(y)
    outer = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    seen = joint > 0
    empirical = float((joint[seen] * np.log(joint[seen] / outer[seen])).sum())
    assert label_information(noise, k) == pytest.approx(empirical, abs=0.01)
    assert 0.0 <= label_information(noise, k) <= np.log(k) + 1e-12


def test_label_information_of_data_dependent_noise_is_refused():
    from automl_noisy.data.noise import label_information

    with pytest.raises(ValueError, match="depends on the data"):
        label_information("instance:0.4", 10)
