from __future__ import annotations

import json

import optuna
import pytest

from automl_noisy.cli import main
from automl_noisy.data import DataSpec
from automl_noisy.errors import UserError
from automl_noisy.pipeline import ComponentSpec, Pipeline
from automl_noisy.presets import PRESETS, apply_preset
from automl_noisy.search.space import parse_space
from automl_noisy.train import Trainer

TINY = ["--data", "synthetic", "--samples", "300", "--dims", "8", "--classes", "3"]


def test_dividemix_is_made_of_parts():
    base = Pipeline(model=ComponentSpec("mlp", {"width": 64}), mixing=ComponentSpec("mixup"), epochs=40)
    p = apply_preset("dividemix", base)
    assert p.model == base.model and p.epochs == 40 and p.mixing is None  # families it does not name are off
    assert (p.scheme.name, p.selection.name, p.semi.name, p.loss.name) == ("coteaching", "gmm", "mixmatch", "ce")
    assert p.selection.params["warmup_epochs"] == 6
    (penalty,) = p.penalty
    assert penalty.name == "confidence_penalty" and penalty.params["warmup_only"] is True


def test_every_preset_builds_and_trains(tiny_data):
    for name in PRESETS:
        p = apply_preset(name, Pipeline(model=ComponentSpec("mlp", {"width": 32, "depth": 1}), epochs=3,
                                        data=tiny_data.spec))
        metrics = list(Trainer(p, tiny_data).epochs())
        assert len(metrics) == 3 and all(m.train_loss == m.train_loss for m in metrics)


def test_unknown_preset_lists_the_choices():
    with pytest.raises(UserError, match="unknown preset 'mixdivide'; choose one of: dividemix"):
        apply_preset("mixdivide", Pipeline(model=ComponentSpec("mlp")))
    with pytest.raises(UserError, match="unknown preset"):
        parse_space({"presets": ["mixdivide"]})


def test_a_space_draws_presets_beside_the_families():
    space = parse_space({"families": {"loss": ["ce", "gce"], "mixing": ["none", "mixup"]}, "presets": ["dividemix"]})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        pipeline = space.suggest(trial, DataSpec())
        seen.add(trial.params["preset"])
        if trial.params["preset"] == "dividemix":
            assert "loss" not in trial.params and "mixing" not in trial.params and "model" in trial.params
            assert pipeline.semi.name == "mixmatch"
        study.tell(trial, 0.0)
    assert seen == {"none", "dividemix"}
    assert space.baseline(DataSpec())[1]["preset"] == "none"


def test_train_a_preset_from_the_command_line(tmp_path, capsys):
    assert main(["presets"]) == 0
    assert "dividemix:" in capsys.readouterr().out
    code = main(["train", "dividemix", *TINY, "--noise", "symmetric:0.5", "--epochs", "3", "-o", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["test_accuracy"] is not None
    assert "semi:" in (tmp_path / "pipeline.yaml").read_text()
