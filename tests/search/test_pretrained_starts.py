"""A search that may start trials from a pretrained encoder: the space's choice, one encoder per key
for the whole search (and its resumes), on both executors, and export then train reproducing it."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from automl_noisy.data import DataSpec
from automl_noisy.errors import UserError
from automl_noisy.search.controller import SearchOptions, search
from automl_noisy.search.encoders import encoder_folder
from automl_noisy.search.export import export_best
from automl_noisy.search.space import load_space, parse_space
from automl_noisy.train import pretrain, train_pipeline
from automl_noisy.pipeline import read_pipeline_file

SPACE = """
epochs: 3
optimizer: {sgd: {lr: [0.05, 0.2]}}
sampler: {name: random}
pruner: {name: none}
families:
  model: {mlp: {width: [32, 64], depth: 1}}
  loss: [ce, gce]
pretraining:
  start: [frozen, finetune]
  body_lr: [0.05, 1.0]
  method: {name: simclr, steps: 8, batch_size: 32}
"""


@pytest.fixture
def space_file(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(SPACE)
    return str(path)


@pytest.fixture
def pretrainings(monkeypatch):
    """How many encoders this process pretrains (the real function, counted)."""
    calls = []
    real = pretrain.pretrain_body

    def counted(*args, **kwargs):
        calls.append(args[:2])
        return real(*args, **kwargs)

    monkeypatch.setattr(pretrain, "pretrain_body", counted)
    return calls


def _options(tmp_path, spec, space, **kw) -> SearchOptions:
    base = dict(data=spec, space=space, trials=4, storage=f"sqlite:///{tmp_path}/s.db", executor="local",
                progress=False)
    return SearchOptions(**{**base, **kw})


def test_one_encoder_serves_every_trial_and_fold_and_survives_a_resume(tmp_path, tiny_spec, space_file,
                                                                      pretrainings):
    study = search(_options(tmp_path, tiny_spec, space_file, cv=3))
    assert len(pretrainings) == 1  # 4 trials x 3 folds, one pretraining
    keys = {t.user_attrs.get("encoder") for t in study.trials}
    assert len(keys) == 1 and None not in keys
    assert {t.user_attrs["combination"]["start"] for t in study.trials} <= {"frozen", "finetune"}
    folder = encoder_folder(f"sqlite:///{tmp_path}/s.db")
    assert folder == tmp_path / "s-encoders" and (folder / f"{keys.pop()}.pt").is_file()
    study = search(_options(tmp_path, tiny_spec, space_file, cv=3, trials=6))
    assert len(study.trials) == 6 and all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len(pretrainings) == 1  # the resumed search loaded it


def test_a_search_that_never_starts_pretrained_pretrains_nothing(tmp_path, tiny_spec, pretrainings):
    space = tmp_path / "plain.yaml"
    space.write_text(SPACE.replace("start: [frozen, finetune]", "start: [random]"))
    study = search(_options(tmp_path, tiny_spec, str(space), trials=2, cv=1))
    assert not pretrainings and all("encoder" not in t.user_attrs for t in study.trials)
    assert not (tmp_path / "s-encoders").exists()


def test_ray_workers_get_the_encoder_once_from_the_driver(ray_session, tmp_path, tiny_spec, space_file):
    options = _options(tmp_path, tiny_spec, space_file, executor="ray", cv=2, encoders=str(tmp_path / "enc"))
    study = search(options)
    stored = list((tmp_path / "enc").glob("*.pt"))
    assert len(stored) == 1 and all(t.state == TrialState.COMPLETE for t in study.trials)
    assert {t.user_attrs["encoder"] for t in study.trials} == {stored[0].stem}
    before = stored[0].stat().st_mtime_ns
    search(_options(tmp_path, tiny_spec, space_file, executor="ray", cv=2, encoders=str(tmp_path / "enc"), trials=5))
    assert stored[0].stat().st_mtime_ns == before  # reused, not pretrained and written again


def test_export_then_train_reproduces_a_pretrained_trial(tmp_path, tiny_spec, space_file):
    study = search(_options(tmp_path, tiny_spec, space_file, cv=1))
    pipeline, provenance = export_best(f"sqlite:///{tmp_path}/s.db", None, tmp_path / "best.yaml")
    written, written_provenance = read_pipeline_file(str(tmp_path / "best.yaml"))
    assert written == pipeline and pipeline.start.pretrained and pipeline.pretraining.params["steps"] == 8
    assert set(pipeline.pretraining.params) == {"steps", "batch_size", "lr", "projection_dim", "temperature"}
    assert written_provenance["encoder"] == study.best_trial.user_attrs["encoder"]
    events: list[str] = []
    metrics = train_pipeline(written, tmp_path / "out", encoders=written_provenance["encoders"], on_event=events.append)
    assert "loaded" in events[0]
    assert metrics["val_accuracy"] == pytest.approx(study.best_value, abs=1e-9)


def test_the_space_chooses_the_start_and_fixes_a_pretrained_architecture(space_file):
    space = load_space(space_file).for_shape((8,))
    seen = set()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(12):
        trial = study.ask()
        pipeline = space.suggest(trial, DataSpec())
        seen.add(pipeline.start.mode)
        assert pipeline.model.params == {"width": 64, "depth": 1}  # the defaults (narrowed), never drawn
        assert "model.mlp.width" not in trial.params
        assert (pipeline.start.mode == "finetune") == ("start.finetune.body_lr" in trial.params)
        study.tell(trial, 0.0)
    assert seen == {"frozen", "finetune"}
    default = load_space("default").for_shape((1, 8, 8))
    assert default.baseline(DataSpec())[0].start.mode == "random"
    encoders = default.encoder_pipelines(DataSpec())
    assert [(p.model.name, p.pretraining.name) for p in encoders] == [("mlp", "simclr"), ("cnn", "simclr")]


@pytest.mark.parametrize("section, message", [
    ("pretraining: {method: {name: simclr, steps: [5, 50]}}", "pretraining settings are fixed"),
    ("pretraining: {method: {vectors: byol}}", "unknown pretraining 'byol'"),
    ("pretraining: {method: {name: simclr, temperature: 9}}", "outside its range"),
    ("pretraining: {starts: [random]}", "pretraining must be a mapping with keys among"),
    ("pretraining: {body_lr: [0.001, 1]}", "must lie inside"),
])
def test_space_mistakes_in_pretraining_are_one_line(section, message):
    import yaml

    with pytest.raises(UserError, match=message.replace("[", r"\[")):
        parse_space(yaml.safe_load(section))


def test_a_failed_pretraining_fails_only_the_trials_that_start_from_it(tmp_path, tiny_spec, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(pretrain, "pretrain_body", broken)  # fault injection, as a real failure would raise
    space = tmp_path / "mixed.yaml"
    space.write_text(SPACE.replace("start: [frozen, finetune]", "start: [random, frozen]"))
    study = search(_options(tmp_path, tiny_spec, str(space), trials=6, cv=1))
    by_start = {}
    for t in study.trials:
        by_start.setdefault(t.user_attrs["combination"]["start"], []).append(t)
    assert {t.state for t in by_start["random"]} == {TrialState.COMPLETE}
    assert {t.state for t in by_start["frozen"]} == {TrialState.FAIL}
    assert all("pretraining its encoder failed: RuntimeError: out of memory" in t.user_attrs["fail_reason"]
               for t in by_start["frozen"])
    assert not list((tmp_path / "s-encoders").glob("*.pt"))  # nothing stored


@pytest.mark.parametrize("poison", ["shapes", "nan", "names"])
def test_a_poisoned_encoder_file_is_pretrained_again_and_replaced(tmp_path, tiny_spec, space_file, pretrainings, poison):
    """An encoder file with the right key but tensors of other shapes, NaN weights or other tensor
    names is never used: the resume pretrains it again, replaces the file, and its trials complete."""
    import torch

    study = search(_options(tmp_path, tiny_spec, space_file, trials=2, cv=1))
    (key,) = {t.user_attrs["encoder"] for t in study.trials if "encoder" in t.user_attrs}
    path = tmp_path / "s-encoders" / f"{key}.pt"
    stored = torch.load(path, weights_only=True)
    body = dict(stored["body"])
    name = next(k for k, v in body.items() if v.ndim == 2)
    if poison == "shapes":
        body[name] = torch.zeros(3, 3)
    elif poison == "nan":
        body[name] = torch.full_like(body[name], float("nan"))
    else:
        body[f"{name}.extra"] = body.pop(name)
    torch.save({"key": key, "body": body}, path)
    assert len(pretrainings) == 1
    study = search(_options(tmp_path, tiny_spec, space_file, trials=5, cv=1))
    assert len(pretrainings) == 2  # pretrained again, once
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    repaired = torch.load(path, weights_only=True)["body"]
    assert set(repaired) == set(stored["body"]) and all(torch.isfinite(v).all() for v in repaired.values()
                                                       if v.is_floating_point())
    assert all(repaired[k].shape == v.shape for k, v in stored["body"].items())
