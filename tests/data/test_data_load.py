"""load_data: stratified disjoint splits, determinism, noise only where it belongs, scaling."""

from __future__ import annotations

import numpy as np
import pytest

from automl_noisy.data import DataSpec, NoisyDataset, load_data
from automl_noisy.data.sources import load_source

SYNTHETIC = {"samples": 600, "features": 6, "classes": 3}


def synthetic(noise: str = "none", **kwargs) -> NoisyDataset:
    return load_data(DataSpec(source="synthetic", noise=noise, options=SYNTHETIC, **kwargs))


def all_arrays(data: NoisyDataset) -> list[np.ndarray]:
    return [data.x_train, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test,
            data.train_index, data.y_train_clean, data.y_val_clean]


def test_split_sizes_dtypes_and_layout():
    data = load_data(DataSpec(source="digits", val_fraction=0.1, test_fraction=0.2))
    n = 1797
    assert len(data.y_test) == pytest.approx(0.2 * n, abs=1)
    assert len(data.y_val) == pytest.approx(0.1 * (n - len(data.y_test)), abs=1)
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == n
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    for array in all_arrays(data):
        assert array.flags.c_contiguous
        assert array.dtype == (np.float32 if array.ndim > 1 else np.int64)


def test_splits_are_disjoint_and_stratified():
    data = synthetic(val_fraction=0.2, test_fraction=0.25)
    raw = load_source(data.spec)
    rows = {tuple(r) for r in raw.x}
    splits = [{tuple(r) for r in x} for x in (data.x_train, data.x_val, data.x_test)]
    assert sum(map(len, splits)) == len(rows) and set().union(*splits) == rows
    overall = np.bincount(raw.y) / len(raw.y)
    for labels in (data.y_train_clean, data.y_val_clean, data.y_test):
        assert np.allclose(np.bincount(labels, minlength=3) / len(labels), overall, atol=0.02)


def test_train_index_points_at_source_rows():
    data = synthetic()
    raw = load_source(data.spec)
    np.testing.assert_array_equal(raw.x[data.train_index], data.x_train)
    np.testing.assert_array_equal(raw.y[data.train_index], data.y_train_clean)


@pytest.mark.parametrize("noise", ["none", "symmetric:0.3", "pair:0.2", "instance:0.3"])
def test_same_spec_same_arrays(noise):
    a, b = synthetic(noise, seed=3), synthetic(noise, seed=3)
    for x, y in zip(all_arrays(a), all_arrays(b)):
        np.testing.assert_array_equal(x, y)
    assert a.fingerprint == b.fingerprint


def test_seed_changes_split_and_noise():
    a = load_data(DataSpec(noise="symmetric:0.3", seed=0))
    b = load_data(DataSpec(noise="symmetric:0.3", seed=1))
    assert not np.array_equal(a.train_index, b.train_index)
    assert a.fingerprint == b.fingerprint


def test_noise_in_train_and_val_but_never_test():
    data = load_data(DataSpec(noise="symmetric:0.4"))
    raw = load_source(data.spec)
    assert data.noise_rate == pytest.approx(0.4, abs=0.005)
    assert (data.y_val != data.y_val_clean).mean() == pytest.approx(0.4, abs=0.01)
    test_rows = np.setdiff1d(np.arange(len(raw.y)), data.train_index)
    x_rows = {r.tobytes(): y for r, y in zip(raw.x[test_rows], raw.y[test_rows])}
    assert all(x_rows[r.tobytes()] == y for r, y in zip(data.x_test, data.y_test))


def test_instance_noise_rate_on_synthetic():
    data = load_data(DataSpec(source="synthetic", noise="instance:0.3", options={"samples": 3000}))
    assert abs(data.noise_rate - 0.3) < 0.05


def test_asymmetric_on_digits_uses_the_builtin_map():
    data = load_data(DataSpec(noise="asymmetric:0.4"))
    flipped = data.y_train_clean[data.noise_mask]
    assert set(np.unique(flipped)) <= {2, 3, 5, 6, 7}


def test_bad_noise_fails_before_loading(raises_user_error, tmp_path):
    """The noise spec is checked before the (here missing) file is read."""
    with raises_user_error("bad noise spec 'symetric:0.4'"):
        load_data(_spec_skipping_validation(f"csv:{tmp_path / 'absent.csv'}", "symetric:0.4"))


def _spec_skipping_validation(source: str, noise: str) -> DataSpec:
    spec = DataSpec(source=source)
    object.__setattr__(spec, "noise", noise)
    return spec


def test_asymmetric_map_outside_the_classes(raises_user_error):
    with raises_user_error("class 5", "0..2"):
        synthetic("asymmetric:0.3:0>5")


def test_asymmetric_without_map_on_synthetic(raises_user_error):
    with raises_user_error("needs a class map", "asymmetric:0.3:3>8,7>1"):
        synthetic("asymmetric:0.3")


def test_standardized_with_train_statistics_only(write_csv, blobs):
    x, y = blobs(n_per_class=40, features=3)
    source = write_csv({"a": x[:, 0] * 5 + 100, "b": x[:, 1], "const": np.ones(len(y)), "label": y})
    # injected noise: the clean labels are known, so a test split is held out too
    data = load_data(DataSpec(source=source, noise="symmetric:0.1", val_fraction=0.2, test_fraction=0.3))
    assert np.allclose(data.x_train.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(data.x_train[:, :2].std(axis=0), 1, atol=1e-4)
    assert np.all(data.x_train[:, 2] == 0) and np.all(data.x_test[:, 2] == 0)
    for split in (data.x_val, data.x_test):
        assert not np.allclose(split[:, :2].mean(axis=0), 0, atol=1e-5)
    raw = load_source(data.spec).x[:, :2].astype(np.float64)
    mean, std = raw[data.train_index].mean(axis=0), raw[data.train_index].std(axis=0)
    np.testing.assert_allclose(data.x_train[:, :2], (raw[data.train_index] - mean) / std, atol=1e-4)
    restored = data.x_test[:, :2] * std + mean
    distances = np.abs(restored[:, None, :] - raw[None, :, :]).max(axis=2).min(axis=1)
    assert distances.max() < 1e-3


def test_a_users_own_labels_leave_no_row_unused(write_csv, blobs):
    """Without clean labels a test split could score nothing: every row trains or validates."""
    x, y = blobs(n_per_class=40, features=3)
    data = load_data(DataSpec(source=write_csv({"a": x[:, 0], "b": x[:, 1], "label": y}), test_fraction=0.3))
    assert not data.clean_labels_known and len(data.y_test) == 0
    assert sorted(np.concatenate([data.train_index, data.val_index]).tolist()) == list(range(len(y)))
    assert len(data.y_val) == np.ceil(0.1 * len(y))


def test_images_are_not_standardized(write_npz):
    x = np.random.default_rng(0).integers(0, 256, size=(30, 1, 4, 4), dtype=np.uint8)
    data = load_data(DataSpec(source=write_npz(X=x, y=np.arange(30) % 3)))
    assert data.x_train.min() >= 0 and data.x_train.max() <= 1


def test_clean_labels_for_user_files(write_csv, blobs):
    x, y = blobs()
    source = write_csv({"a": x[:, 0], "label": y})
    plain = load_data(DataSpec(source=source))
    assert not plain.clean_labels_known and plain.noise_mask is None and plain.noise_rate is None
    assert "clean labels unknown" in plain.summary()
    noised = load_data(DataSpec(source=source, noise="pair:0.3"))
    assert noised.clean_labels_known
    given = load_source(noised.spec).y  # the file's labels are the clean ones; the test split keeps them
    np.testing.assert_array_equal(noised.y_train_clean, given[noised.train_index])
    np.testing.assert_array_equal(noised.y_val_clean, given[noised.val_index])
    assert len(noised.y_test) > 0 and len(plain.y_test) == 0


def test_builtin_clean_labels_always_known():
    data = load_data(DataSpec())
    assert data.clean_labels_known and data.noise_rate == 0.0
    np.testing.assert_array_equal(data.y_train, data.y_train_clean)


def test_fingerprint_stable_and_follows_the_data(write_csv, blobs):
    x, y = blobs()
    a = load_data(DataSpec(source=write_csv({"a": x[:, 0], "label": y}, name="a.csv")))
    again = load_data(DataSpec(source=write_csv({"a": x[:, 0], "label": y}, name="b.csv"), seed=5,
                               noise="symmetric:0.2", val_fraction=0.3))
    y_changed = y.copy()
    y_changed[0] = y[-1]
    other = load_data(DataSpec(source=write_csv({"a": x[:, 0], "label": y_changed}, name="c.csv")))
    x_changed = load_data(DataSpec(source=write_csv({"a": x[:, 0] + 1, "label": y}, name="d.csv")))
    assert len(a.fingerprint) == 16 and int(a.fingerprint, 16) >= 0
    assert a.fingerprint == again.fingerprint
    assert len({a.fingerprint, other.fingerprint, x_changed.fingerprint}) == 3


def test_summary_is_one_line():
    text = load_data(DataSpec(noise="symmetric:0.2")).summary()
    assert "\n" not in text
    for fragment in ("digits", "train", "10 classes", "symmetric:0.2", "realized 0.200"):
        assert fragment in text


def test_too_few_samples_for_the_split(raises_user_error, write_csv):
    y = np.repeat(np.arange(6), 3)
    source = write_csv({"a": np.arange(len(y)), "label": y})
    with raises_user_error("too few for a stratified", "--test-fraction"):
        load_data(DataSpec(source=source, noise="symmetric:0.1", test_fraction=0.1))
