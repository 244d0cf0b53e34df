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
    assert p.selection.params["warmup_epochs"] == 13  # the data's size unknown: a third of the budget
    # the noise unknown, outside a search: no confidence penalty, lambda_u 25; weight decay as the paper
    assert [(q.name, q.params) for q in p.penalty] == [("weight_decay", {"coef": 5e-4})]
    assert p.semi.params["lambda_u"] == 25.0
    assert p.selection.params["per_class"] is False  # one GMM on all losses, as the paper


@pytest.mark.parametrize("noise,penalty,lambda_u", [
    ("symmetric:0.2", False, 0.0), ("symmetric:0.4", False, 25.0), ("symmetric:0.8", False, 25.0),
    ("symmetric:0.9", False, 50.0), ("pair:0.4", True, 0.0), ("asymmetric:0.3", True, 0.0),
])
def test_dividemix_follows_the_paper_for_declared_noise(noise, penalty, lambda_u):
    p = apply_preset("dividemix", Pipeline(model=ComponentSpec("mlp"), epochs=30, data=DataSpec(noise=noise)))
    names = [q.name for q in p.penalty]
    assert ("confidence_penalty" in names) == penalty and "weight_decay" in names
    assert p.semi.params["lambda_u"] == lambda_u


@pytest.mark.parametrize("rows,batch,epochs,warmup", [
    (50_000, 128, 300, 10),  # CIFAR-10 as in the paper: 10 epochs
    (1_293, 64, 30, 10),     # digits: thousands of steps do not fit, a third of the budget
    (200_000, 128, 300, 3),  # more data: fewer epochs for as many steps
    (100, 64, 2, 1),
])
def test_dividemix_warmup_counts_sgd_steps(rows, batch, epochs, warmup):
    p = apply_preset("dividemix", Pipeline(model=ComponentSpec("mlp"), epochs=epochs, batch_size=batch), rows)
    assert p.selection.params["warmup_epochs"] == warmup


def test_a_search_decides_what_undeclared_noise_leaves_open():
    space = parse_space({"families": {"loss": ["ce"]}, "presets": ["dividemix"]})
    always = {"preset.dividemix.per_class"}  # beyond the paper: no declared noise settles it
    for noise, open_params in (("none", {"preset.dividemix.confidence_penalty", "preset.dividemix.lambda_u"}),
                               ("symmetric:0.4", set()), ("instance:0.4", {"preset.dividemix.confidence_penalty"})):
        open_params = open_params | always
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        seen = set()
        for _ in range(20):
            trial = study.ask({"preset": optuna.distributions.CategoricalDistribution(["none", "dividemix"])})
            if trial.params["preset"] == "none":
                continue
            pipeline = space.suggest(trial, DataSpec(noise=noise))
            seen |= {name for name in trial.params if name.startswith("preset.")}
            penalties = {q.name for q in pipeline.penalty}
            if "preset.dividemix.confidence_penalty" in trial.params:
                assert ("confidence_penalty" in penalties) == trial.params["preset.dividemix.confidence_penalty"]
            if "preset.dividemix.lambda_u" in trial.params:
                assert pipeline.semi.params["lambda_u"] == trial.params["preset.dividemix.lambda_u"]
            assert pipeline.selection.params["per_class"] == trial.params["preset.dividemix.per_class"]
        assert seen == open_params


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
