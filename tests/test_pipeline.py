from __future__ import annotations

import pytest
import yaml

from automl_noisy.data import DataSpec
from automl_noisy.errors import UserError
from automl_noisy.hparams import Choice, Float, Int
from automl_noisy.pipeline import ComponentSpec, OptimizerSpec, Pipeline, read_pipeline_file

FULL = Pipeline(model=ComponentSpec("mlp", {"width": 64, "depth": 1}), loss=ComponentSpec("gce", {"q": 0.5}),
                adjustment=ComponentSpec("label_smoothing", {"epsilon": 0.1}), mixing=None,
                penalty=(ComponentSpec("l1", {"coef": 1e-5}), ComponentSpec("weight_decay", {"coef": 1e-4})),
                optimizer=OptimizerSpec("sgd", 0.1, 0.9, "cosine"), epochs=3, batch_size=32, seed=7,
                data=DataSpec("digits", "pair:0.2"))


def test_roundtrip_through_yaml(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(FULL.to_yaml({"trial": 3}))
    pipeline, provenance = read_pipeline_file(str(path))
    assert pipeline == FULL and provenance == {"trial": 3}
    assert yaml.safe_load(path.read_text())["pipeline"]["mixing"] == "none"


def test_best_epoch_and_folds_round_trip():
    from dataclasses import replace

    exported = replace(FULL, best_epoch=2, data=replace(FULL.data, folds=4))
    assert Pipeline.from_dict(exported.to_dict()) == exported and exported.stop_epoch == 2
    assert "best_epoch" not in FULL.to_dict() and FULL.stop_epoch == FULL.epochs


def test_combination_names_each_family():
    assert FULL.combination() == {"model": "mlp", "adjustment": "label_smoothing", "mixing": "none",
                                  "loss": "gce", "penalty": "l1+weight_decay", "scheme": "single", "selection": "none", "correction": "none", "semi": "none",
                                  "start": "random"}


@pytest.mark.parametrize("doc, message", [
    ({"model": "mlp", "bogus": 1}, "unknown pipeline key"),
    ({"loss": "ce"}, "names no model"),
    ({"model": {"width": 3}}, "expected a name or a mapping with 'name'"),
    ({"model": "mlp", "penalty": "l1"}, "expected a list"),
    ({"model": "mlp", "epochs": 0}, "epochs must be a positive integer"),
    ({"model": "mlp", "epochs": 5, "best_epoch": 6}, "best_epoch must be an epoch from 1 to epochs=5"),
    ({"model": "mlp", "best_epoch": 0}, "best_epoch must be an epoch"),
    ({"model": "mlp", "data": {"folds": 0}}, "data.folds"),
    ({"model": "mlp", "optimizer": {"name": "rmsprop"}}, "unknown optimizer"),
    ({"model": "mlp", "optimizer": {"lr": -1}}, "lr must be a number in \\(0, 10\\]"),
    ({"model": "mlp", "optimizer": {"lr": 1e6}}, "lr must be a number in \\(0, 10\\]"),
    ({"model": "mlp", "optimizer": {"momentum": 7}}, "momentum must be a number in \\[0, 1\\)"),
    ({"model": "mlp", "batch_size": 1}, "batch_size must be an integer of at least 2"),
    ({"model": "mlp", "seed": "x"}, "seed must be an integer"),
    ({"model": "mlp", "data": {"source": "digits", "noise": "bad"}}, "bad noise spec"),
])
def test_malformed_pipelines_are_user_errors(doc, message):
    with pytest.raises(UserError, match=message):
        Pipeline.from_dict(doc)


def test_read_pipeline_file_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_pipeline_file(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML at line"):
        read_pipeline_file(str(bad))
    other = tmp_path / "other.yaml"
    other.write_text("just: text\n")
    with pytest.raises(UserError, match="no 'pipeline' section"):
        read_pipeline_file(str(other))


def test_hparam_narrowing():
    assert Float(0.5, 0.0, 1.0).narrow("x", [0.2, 0.4]) == Float(0.4, 0.2, 0.4)
    assert Int(3, 1, 8).narrow("n", {"low": 2}) == Int(3, 2, 8)
    assert Int(3, 1, 8).narrow("n", 5) == Int(5, 5, 5)
    assert Choice("a", ("a", "b", "c")).narrow("c", ["b", "c"]).default == "b"
    with pytest.raises(UserError, match="must lie inside"):
        Float(0.5, 0.0, 1.0).narrow("x", [0.5, 2.0])
    with pytest.raises(UserError, match="integer bounds"):
        Int(3, 1, 8).narrow("n", [1.5, 3])
    with pytest.raises(UserError, match="not one of"):
        Choice("a", ("a", "b")).narrow("c", ["z"])
