from __future__ import annotations

from dataclasses import replace

import optuna
import pytest

from automl_noisy.components import FAMILIES
from automl_noisy.data import DataSpec
from automl_noisy.errors import UserError
from automl_noisy.search.space import load_space, parse_space, shipped_spaces
from automl_noisy.pipeline import ComponentSpec
from automl_noisy.train import Trainer
from automl_noisy.train.pretrain import EncoderRequest, make_encoder

IMAGES, VECTORS = (1, 8, 8), (8,)


def test_two_network_schemes_draw_a_selector_under_their_own_name():
    space = parse_space({"families": {"scheme": ["single", "coteaching"], "selection": ["none", "small_loss"]}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        pipeline = space.suggest(trial, DataSpec())
        if pipeline.scheme.name == "coteaching":
            assert "selection" not in trial.params  # drawn as scheme.coteaching.selection (fixed: one option)
            assert pipeline.selection == ComponentSpec("small_loss", pipeline.selection.params)
        else:
            assert "selection" in trial.params
        study.tell(trial, 0.0)
    with pytest.raises(UserError, match="scheme 'coteaching' exchanges selections"):
        parse_space({"families": {"scheme": ["single", "coteaching"]}})


@pytest.mark.parametrize("name", shipped_spaces())
@pytest.mark.parametrize("kind", ["images", "vectors"])
def test_every_shipped_space_samples_pipelines_that_build(name, kind, tiny_data, image_data):
    """Many trials from each shipped space: every sampled combination builds into a trainer
    (networks, scheme, every component set up), so no invalid combination is ever sampled."""
    data = image_data if kind == "images" else tiny_data
    models = FAMILIES["model"].registry
    if not any(models.get(m).accepts(data.input_shape) for m in load_space(name).families["model"]):
        with pytest.raises(UserError, match="has no model for data of shape"):  # e.g. images.yaml on vectors
            load_space(name).for_shape(data.input_shape)
        return
    space = load_space(name).for_shape(data.input_shape)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen, encoders = set(), {}
    for _ in range(80):
        trial = study.ask()
        pipeline = space.suggest(trial, data.spec)
        encoder = None
        if pipeline.start.pretrained:  # a one-step encoder per model: what matters here is that it loads
            short = replace(pipeline, pretraining=replace(pipeline.pretraining, params={
                **pipeline.pretraining.params, "steps": 1, "batch_size": 16}))
            request = EncoderRequest.of(short, data)
            if request.key not in encoders:
                encoders[request.key] = make_encoder(request, data)
            encoder = encoders[request.key]
        Trainer(pipeline, data, encoder=encoder)
        seen.add(tuple(sorted(pipeline.combination().items())))
        study.tell(trial, 0.5)
    assert len(seen) > 20
    schemes = {dict(c)["scheme"] for c in seen}
    assert len(schemes) > 1 and all(dict(c)["selection"] != "none" for c in seen if dict(c)["scheme"] != "single")


def test_parameter_names_follow_family_choice_param():
    space = load_space("quick").for_shape(IMAGES)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    names = set()
    for _ in range(40):
        trial = study.ask()
        space.suggest(trial, DataSpec())
        names |= set(trial.params)
        study.tell(trial, 0.0)
    assert {"model", "loss", "adjustment", "mixing", "penalty.l1", "penalty.weight_decay"} <= names
    assert {"loss.gce.q", "model.mlp.width", "mixing.mixup.alpha", "optimizer.sgd.lr"} <= names
    for name in names:
        parts = name.split(".")
        assert parts[0] in set(FAMILIES) | {"optimizer", "batch_size", "schedule", "preset", "start"}


def test_conditionals_only_sample_the_chosen_choice_params():
    space = load_space("quick").for_shape(IMAGES)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        pipeline = space.suggest(trial, DataSpec())
        for name in trial.params:
            if name.startswith("loss."):
                assert name.split(".")[1] == pipeline.loss.name
        study.tell(trial, 0.0)


def test_baseline_is_plain_ce_and_enqueues():
    space = load_space("default").for_shape(IMAGES)
    pipeline, params = space.baseline(DataSpec())
    assert pipeline.combination() == {"model": "mlp", "adjustment": "none", "mixing": "none",
                                      "loss": "ce", "penalty": "none", "scheme": "single", "selection": "none", "correction": "none", "semi": "none",
                                     "start": "random"}
    study = optuna.create_study()
    study.enqueue_trial(params)
    trial = study.ask()
    assert space.suggest(trial, DataSpec()) == pipeline


def test_for_shape_drops_models_that_do_not_fit():
    assert set(load_space("quick").for_shape(VECTORS).families["model"]) == {"mlp"}
    only_cnn = parse_space({"families": {"model": ["cnn"]}})
    with pytest.raises(UserError, match="has no model for data of shape"):
        only_cnn.for_shape(VECTORS)


def test_fingerprint_changes_with_the_space():
    a = parse_space({"families": {"loss": ["ce", "gce"]}})
    b = parse_space({"families": {"loss": ["ce", "gce"]}})
    c = parse_space({"families": {"loss": {"ce": None, "gce": {"q": [0.5, 0.9]}}}})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


@pytest.mark.parametrize("doc, message", [
    ({"families": {"losses": ["ce"]}}, "unknown family 'losses'; choose one of: model"),
    ({"families": {"loss": ["cee"]}}, "unknown loss 'cee'; choose one of: ce, gce"),
    ({"families": {"loss": {"gce": {"r": [0.1, 0.2]}}}}, "has no parameter 'r'"),
    ({"families": {"loss": {"gce": {"q": [0.5, 3.0]}}}}, "must lie inside"),
    ({"families": {"loss": []}}, "needs at least one choice"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"batch_size": [1]}, "batch_size must be integers"),
    ({"pruner": {"name": "median", "bogus": 1}}, "pruner 'median'"),
    ({"sampler": {"name": "magic"}}, "unknown sampler 'magic'"),
    ({"optimizer": ["rmsprop"]}, "unknown optimizer 'rmsprop'"),
    ({"schedule": "step"}, "unknown schedule 'step'"),
    ({"bogus": 1}, "unknown key"),
    (["loss"], "must be a mapping"),
])
def test_bad_space_documents_are_user_errors(doc, message):
    with pytest.raises(UserError, match=message):
        parse_space(doc)


def test_load_space_errors(tmp_path):
    with pytest.raises(UserError, match="search space not found: nope; give a YAML file or one of: default"):
        load_space("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("families:\n  loss: [ce\n")
    with pytest.raises(UserError, match="not valid YAML at line"):
        load_space(str(bad))


def test_a_search_offers_glc_only_for_data_with_trusted_rows(tmp_path):
    """The search gives the space the data's trusted rows: a space of glc alone trains it on data with
    trusted rows, and is refused in one line on data without them."""
    from automl_noisy.search.controller import SearchOptions, search

    path = tmp_path / "glc.yaml"
    path.write_text("epochs: 2\nfamilies:\n  model: {mlp: {width: 32, depth: 1}}\n"
                    "  adjustment: {glc: {warmup_epochs: 1}}\n")
    options = {"space": str(path), "trials": 1, "executor": "local", "progress": False, "cv": 1, "portfolio": None}
    spec = DataSpec("synthetic", "pair:0.3", options={"samples": 200, "features": 4, "classes": 3,
                                                      "trusted_fraction": 0.1})
    study = search(SearchOptions(data=spec, storage=f"sqlite:///{tmp_path}/a.db", **options))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE]
    assert study.trials[0].user_attrs["pipeline"]["adjustment"]["name"] == "glc"
    untrusted = replace(spec, options={"samples": 200, "features": 4, "classes": 3})
    with pytest.raises(UserError, match=r"offers as adjustment only methods that need trusted rows \(glc\)"):
        search(SearchOptions(data=untrusted, storage=f"sqlite:///{tmp_path}/b.db", **options))


def test_a_search_leaves_glc_out_where_the_trusted_rows_miss_a_class(tmp_path, capsys):
    """Trusted rows of classes '0' and '1' only: the search leaves glc out and says why in one progress
    line (the space it records has no glc), and a space of glc alone is refused in one line."""
    import numpy as np

    from automl_noisy.data import load_data
    from automl_noisy.data.sources.memory import hold_trusted
    from automl_noisy.search.controller import SearchOptions, search

    data = {"samples": 200, "features": 4, "classes": 3}
    plain = load_data(DataSpec("synthetic", "pair:0.3", options=data))
    rows = np.concatenate([plain.train_index[plain.y_train_clean == c][:5] for c in (0, 1)])
    spec = DataSpec("synthetic", "pair:0.3", options={**data, "trusted": hold_trusted(rows, np.repeat([0, 1], 5))})
    path = tmp_path / "glc.yaml"
    path.write_text("epochs: 2\nfamilies:\n  model: {mlp: {width: 32, depth: 1}}\n"
                    "  adjustment: {none: {}, glc: {warmup_epochs: 1}}\n")
    options = {"trials": 2, "executor": "local", "cv": 1, "portfolio": None}
    study = search(SearchOptions(data=spec, space=str(path), storage=f"sqlite:///{tmp_path}/a.db", **options))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert list(study.user_attrs["space"]["families"]["adjustment"]) == ["none"]
    assert all(t.user_attrs["pipeline"]["adjustment"] == "none" for t in study.trials)
    said = [line for line in capsys.readouterr().err.splitlines() if "glc" in line]
    assert said == ["adjustment glc left out of the search: it needs a trusted training row of every class, and the "
                    "training split has no trusted row of class '2'"]
    path.write_text("epochs: 2\nfamilies:\n  model: {mlp: {width: 32, depth: 1}}\n  adjustment: [glc]\n")
    with pytest.raises(UserError, match=r"offers as adjustment only methods that need a trusted training row of "
                                        r"every class \(glc\), but the training split has no trusted row of class '2'"):
        search(SearchOptions(data=spec, space=str(path), storage=f"sqlite:///{tmp_path}/b.db", **options))
