"""DataSpec: validation and the YAML round trip."""

from __future__ import annotations

import pytest
import yaml

from automl_noisy.data import DataSpec
from automl_noisy.errors import UserError


def test_round_trip_through_yaml():
    spec = DataSpec(source="synthetic", noise="asymmetric:0.3:0>1", seed=7, options={"samples": 300})
    text = yaml.safe_dump(spec.to_dict())
    assert DataSpec.from_dict(yaml.safe_load(text)) == spec


def test_defaults_and_hash():
    assert DataSpec().source == "digits" and DataSpec().noise == "none"
    assert hash(DataSpec(options={"a": 1})) == hash(DataSpec(options={"a": 1}))


def test_options_are_copied():
    options = {"samples": 100}
    spec = DataSpec(source="synthetic", options=options)
    options["samples"] = 5
    assert spec.options["samples"] == 100


def test_unknown_key_lists_valid_keys(raises_user_error):
    with raises_user_error("noise_rate", "valid keys", "val_fraction"):
        DataSpec.from_dict({"source": "digits", "noise_rate": 0.2})


@pytest.mark.parametrize("field, value, fragment", [
    ("val_fraction", 0.0, "val_fraction"),
    ("val_fraction", 1.0, "val_fraction"),
    ("test_fraction", -0.2, "test_fraction"),
    ("test_fraction", "0.2", "test_fraction"),
    ("seed", -1, "seed"),
    ("seed", 1.5, "seed"),
    ("source", "", "source"),
])
def test_bad_values(raises_user_error, field, value, fragment):
    with raises_user_error(fragment):
        DataSpec(**{field: value})


def test_fractions_leaving_no_training_data(raises_user_error):
    with raises_user_error("test_fraction=0.9", "val_fraction=0.5", "training"):
        DataSpec(test_fraction=0.9, val_fraction=0.5)


def test_bad_noise_fails_at_construction():
    with pytest.raises(UserError, match="bad noise spec"):
        DataSpec(noise="gaussian:0.2")


def test_from_dict_needs_a_mapping(raises_user_error):
    with raises_user_error("expected a mapping"):
        DataSpec.from_dict(["digits"])


def test_round_trip_with_source_options():
    spec = DataSpec(source="parquet:t.parquet", options={"columns": ("age", "city"), "labels": "n.pt:worse_label"})
    assert spec.options["columns"] == ["age", "city"]  # tuples become lists, which YAML writes plainly
    text = yaml.safe_dump(spec.to_dict())
    assert DataSpec.from_dict(yaml.safe_load(text)) == spec
    assert hash(DataSpec.from_dict(yaml.safe_load(text))) == hash(spec)
    folder = DataSpec(source="folder:photos", options={"image_size": 16})
    assert DataSpec.from_dict(yaml.safe_load(yaml.safe_dump(folder.to_dict()))) == folder
