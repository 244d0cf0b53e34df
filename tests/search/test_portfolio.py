"""Warm start: a portfolio file's pipelines, and an earlier study's best, run after the baseline."""

from __future__ import annotations

import pytest
import yaml
from optuna.trial import TrialState

from automl_noisy.data import DataSpec
from automl_noisy.errors import UserError
from automl_noisy.pipeline import ComponentSpec, Pipeline
from automl_noisy.search.controller import SearchOptions, first_pipelines, search
from automl_noisy.search.portfolio import DEFAULT_PORTFOLIO, Entry, fitting, load_portfolio, resolve
from automl_noisy.search.space import SPACES_DIR, load_space

PORTFOLIO = {
    "vectors": [{"name": "gce", "params": {"loss": "gce", "loss.gce.q": 0.5}},
                {"name": "cnn-only", "params": {"model": "cnn"}},  # no cnn for vectors: skipped
                {"name": "coteaching", "params": {"scheme": "coteaching", "scheme.coteaching.selection": "small_loss"}},
                {"name": "gce-again", "params": {"loss": "gce", "loss.gce.q": 0.5}},  # the same pipeline: once
                {"name": "mixup", "params": {"mixing": "mixup"}}],
    "images": [{"name": "cnn", "params": {"model": "cnn"}}],
}


@pytest.fixture
def portfolio(tmp_path):
    path = tmp_path / "portfolio.yaml"
    path.write_text(yaml.safe_dump(PORTFOLIO))
    return str(path)


def _options(tmp_path, spec, **kw) -> SearchOptions:
    base = dict(data=spec, space="quick", trials=4, storage=f"sqlite:///{tmp_path}/s.db", executor="local",
                progress=False, cv=1)
    return SearchOptions(**{**base, **kw})


def test_portfolio_entries_run_after_the_baseline_in_order(tmp_path, tiny_spec, portfolio):
    study = search(_options(tmp_path, tiny_spec, portfolio=portfolio))
    names = [t.user_attrs.get("portfolio") for t in study.trials]
    assert study.trials[0].user_attrs["baseline"] and names == [None, "gce", "coteaching", "mixup"]
    assert first_pipelines(_options(tmp_path, tiny_spec, portfolio=portfolio)) == [  # what it plans, told before
        ("baseline", "plain CE"), ("portfolio", "gce"), ("portfolio", "coteaching"), ("portfolio", "mixup")]
    gce = Pipeline.from_dict(study.trials[1].user_attrs["pipeline"])
    assert gce.loss == ComponentSpec("gce", {"q": 0.5}) and gce.scheme.name == "single"
    assert study.trials[2].user_attrs["combination"]["scheme"] == "coteaching"
    # resumed with more trials: no entry runs twice, the sampler takes over
    study = search(_options(tmp_path, tiny_spec, portfolio=portfolio, trials=6))
    assert [t.user_attrs.get("portfolio") for t in study.trials][4:] == [None, None]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)


def test_a_small_budget_runs_as_many_entries_as_fit_and_no_portfolio_runs_none(tmp_path, tiny_spec, portfolio):
    study = search(_options(tmp_path, tiny_spec, portfolio=portfolio, trials=2))
    assert [t.user_attrs.get("portfolio") for t in study.trials] == [None, "gce"]
    assert not [t for t in study.trials if t.state == TrialState.WAITING]
    study = search(_options(tmp_path, tiny_spec, portfolio=None, trials=3, study="plain"))
    assert not any("portfolio" in t.user_attrs for t in study.trials)


def test_entries_resolve_against_the_space_and_the_data(portfolio):
    space = load_space("quick").for_shape((8,))
    fit = fitting(load_portfolio(portfolio)["vectors"], space, DataSpec(), 0)
    assert [e.name for e, _ in fit] == ["gce", "coteaching", "mixup"]
    with pytest.raises(UserError, match="loss.gce.q=5"):
        resolve(space, {"loss": "gce", "loss.gce.q": 5}, DataSpec(), 0)
    with pytest.raises(UserError, match="model='cnn' is not offered"):
        resolve(space, {"model": "cnn"}, DataSpec(), 0)
    pipeline, params = resolve(space, {}, DataSpec(), 0)
    assert (pipeline, params) == space.baseline(DataSpec(), 0)


def test_a_preset_parameter_the_declared_noise_decides_is_left_to_the_preset():
    """An entry tuned where DivideMix draws its confidence penalty (unknown or instance noise) runs on
    data whose declared noise decides it (the paper's rule: on for pair noise, off for symmetric)."""
    space = load_space("default").for_shape((8,))
    entry = {"preset": "dividemix", "preset.dividemix.confidence_penalty": False, "preset.dividemix.lambda_u": 50.0}
    unknown, _ = resolve(space, entry, DataSpec(), 0)
    assert not any(p.name == "confidence_penalty" for p in unknown.penalty)
    assert unknown.semi.params["lambda_u"] == 50.0
    pair, params = resolve(space, entry, DataSpec(noise="pair:0.3"), 0)
    assert any(p.name == "confidence_penalty" for p in pair.penalty)  # the paper's rule, not the entry's value
    assert not any(name.startswith("preset.dividemix.confidence") or name.endswith("lambda_u") for name in params)
    assert resolve(space, params, DataSpec(noise="pair:0.3"), 0)[0] == pair  # what the search enqueues
    # a parameter no noise lets the space draw, or one of a choice not taken, is still refused
    with pytest.raises(UserError, match="preset.dividemix.typo"):
        resolve(space, {"preset": "dividemix", "preset.dividemix.typo": 1}, DataSpec(noise="pair:0.3"), 0)
    with pytest.raises(UserError, match="loss.gce.q=0.5 is not a parameter"):
        resolve(space, {"loss": "ce", "loss.gce.q": 0.5}, DataSpec(noise="pair:0.3"), 0)


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "a portfolio maps vectors and/or images"),
    ("vectors: {name: x}", "vectors must be a list"),
    ("vectors: [{params: {}}]", "vectors entry 1 must be a mapping with a 'name'"),
])
def test_a_malformed_portfolio_is_one_line(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        load_portfolio(path)


def test_the_shipped_portfolio_fits_the_default_space():
    if not DEFAULT_PORTFOLIO.is_file():
        pytest.skip("no portfolio built yet")
    entries = load_portfolio(DEFAULT_PORTFOLIO)
    built = yaml.safe_load(DEFAULT_PORTFOLIO.read_text())["provenance"]["kinds"]
    for kind, shape in (("vectors", (20,)), ("images", (1, 8, 8))):
        space = load_space("default").for_shape(shape)
        assert len(fitting(entries[kind], space, DataSpec(), 0)) == len(entries[kind])
        if not entries[kind]:  # a kind ships none only where the evaluation said its entries do not help
            assert built[kind]["greedy"] and "ships no entries" in built[kind]["evaluation"]


def test_warm_start_runs_the_best_pipelines_of_an_earlier_study(tmp_path, tiny_spec):
    earlier = search(_options(tmp_path, tiny_spec, portfolio=None, trials=5, study="last-month"))
    best = sorted((t for t in earlier.trials if t.state == TrialState.COMPLETE and not t.user_attrs.get("baseline")),
                  key=lambda t: -t.value)  # plain CE runs first anyway: not warm-started again
    study = search(_options(tmp_path, tiny_spec, portfolio=None, trials=4, study="this-month",
                            warm_start="last-month", warm_start_k=2))
    assert [t.user_attrs.get("warm_start") for t in study.trials[1:3]] == [f"last-month#{t.number}" for t in best[:2]]
    assert [t.params for t in study.trials[1:3]] == [t.params for t in best[:2]]
    other = search(_options(tmp_path, tiny_spec, portfolio=None, trials=2, study="elsewhere",
                            storage=f"sqlite:///{tmp_path}/other.db",
                            warm_start=f"sqlite:///{tmp_path}/s.db#last-month", warm_start_k=1))
    assert other.trials[1].user_attrs["warm_start"] == f"last-month#{best[0].number}"


def test_warm_start_mistakes_are_one_line(tmp_path, tiny_spec):
    search(_options(tmp_path, tiny_spec, portfolio=None, trials=2, study="vectors"))
    with pytest.raises(UserError, match="no study named 'nope'"):
        search(_options(tmp_path, tiny_spec, portfolio=None, study="b", warm_start="nope"))
    with pytest.raises(UserError, match=r"was made on data of shape \(8,\); this data has shape \(1, 8, 8\)"):
        search(_options(tmp_path, DataSpec("digits", "symmetric:0.2"), portfolio=None, study="c", warm_start="vectors"))
    narrow = tmp_path / "narrow.yaml"
    narrow.write_text("epochs: 2\nfamilies:\n  model: {mlp: {width: [32, 40], depth: 1}}\n  loss: [ce]\n")
    with pytest.raises(UserError, match="none of its best pipelines fits this search space"):
        search(_options(tmp_path, tiny_spec, space=str(narrow), portfolio=None, study="d", warm_start="vectors"))
    assert Entry("x", {}).params == {}


def test_an_entry_interrupted_by_a_stopped_search_runs_again(tmp_path, tiny_spec, portfolio):
    import socket

    study = search(_options(tmp_path, tiny_spec, portfolio=None, trials=1))  # the baseline alone
    space = load_space("quick").for_shape((8,))
    _, params = resolve(space, PORTFOLIO["vectors"][0]["params"], tiny_spec, 0)
    dead = f"{socket.gethostname()}:{2 ** 22 + 4321}"  # no such process: a driver killed mid-trial
    study.enqueue_trial(params, user_attrs={"portfolio": "gce", "driver": dead})
    study.ask()
    study = search(_options(tmp_path, tiny_spec, portfolio=portfolio, trials=3))
    gce = [t for t in study.trials if t.user_attrs.get("portfolio") == "gce"]
    assert [t.state for t in gce] == [TrialState.FAIL, TrialState.COMPLETE]
    assert gce[0].user_attrs["interrupted"] and gce[1].params == params


def test_queued_trials_run_every_epoch_and_the_sampler_trials_meet_the_pruner(tmp_path, tiny_spec, portfolio):
    # a pruner that prunes whatever reports an accuracy below 1.01, i.e. every trial at its first epoch
    doc = yaml.safe_load((SPACES_DIR / "quick.yaml").read_text())
    doc["pruner"] = {"name": "threshold", "lower": 1.01}
    space = tmp_path / "prune-all.yaml"
    space.write_text(yaml.safe_dump(doc))
    study = search(_options(tmp_path, tiny_spec, portfolio=portfolio, space=str(space), trials=5))
    queued = [t for t in study.trials if "baseline" in t.user_attrs or "portfolio" in t.user_attrs]
    sampled = [t for t in study.trials if t not in queued]
    assert len(queued) == 4 and len(sampled) == 1
    assert all(t.state == TrialState.COMPLETE and len(t.intermediate_values) == doc["epochs"] for t in queued)
    assert sampled[0].state == TrialState.PRUNED


def test_the_search_says_what_it_queued_and_that_the_portfolio_lists_none_for_the_kind(tmp_path, tiny_spec, capsys,
                                                                                     portfolio):
    search(_options(tmp_path, tiny_spec, portfolio=portfolio, progress=True))
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("queued before")]
    assert said == ["queued before the sampler draws: plain CE; 3 from the portfolio (fixed order)"]
    search(_options(tmp_path, tiny_spec, portfolio=portfolio, progress=True, trials=6))  # resumed: nothing queued
    assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("queued before")]
    images_only = tmp_path / "images-only.yaml"
    images_only.write_text(yaml.safe_dump({"vectors": [], "images": PORTFOLIO["images"]}))
    search(_options(tmp_path, tiny_spec, portfolio=str(images_only), progress=True, study="none"))
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("queued before")]
    assert said == ["queued before the sampler draws: plain CE; no portfolio entry: images-only.yaml lists none "
                    "for vectors"]
