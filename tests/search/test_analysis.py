"""Help-or-hurt analysis: known effects are recovered from a synthetic study, and it is kept in the study."""

from __future__ import annotations

import shutil
import time

import numpy as np
import optuna
import pytest
from sklearn.linear_model import Ridge

from automl_noisy.search.analysis import Observation, _ridge_resamples, effects
from automl_noisy.search.study_analysis import ATTR, load_or_compute, observations


@pytest.fixture(scope="module")
def analysis(effects_study):
    return load_or_compute(optuna.load_study(study_name="effects", storage=effects_study), save=False)


def test_main_effects_have_the_right_verdicts(analysis, effects_truth):
    """Choices with an effect get its sign; the six without one are unclear. (With 90% simultaneous
    intervals a spurious verdict among them has a chance of about 10% per data set: the study's
    seed is fixed.)"""
    table = analysis.effects
    assert table.baseline["loss"] == "ce" and table.baseline["selection"] == "none"
    for family, choices in effects_truth["choices"].items():
        for choice in (c for c in choices if c != table.baseline[family]):
            for part in choice.split("+"):
                row = table.effect(family, part)
                truth = effects_truth["effects"].get((family, part), 0.0)
                expected = "helps" if truth > 0 else "hurts" if truth < 0 else "unclear"
                assert row.verdict == expected, row
                assert row.low <= row.effect <= row.high
    assert table.effect("mixing", "mixup").effect == pytest.approx(-0.04, abs=0.01)
    assert table.effect("loss", "ce").reference and table.effect("loss", "ce").verdict == "baseline"


def test_main_effect_is_averaged_over_the_other_choices(analysis, effects_study, effects_truth):
    """With the gce x gmm interaction, gce's main effect is its average over how often gmm came along."""
    obs = [o for o in observations(optuna.load_study(study_name="effects", storage=effects_study).trials)
           if o.value is not None]
    gmm_share = np.mean([o.combination["selection"] == "gmm" for o in obs])
    interaction = effects_truth["interaction"][2]
    expected = effects_truth["effects"][("loss", "gce")] + interaction * gmm_share
    assert analysis.effects.effect("loss", "gce").effect == pytest.approx(expected, abs=0.01)


def test_the_known_interaction_is_found_and_no_other(analysis, effects_truth):
    first, second, truth = effects_truth["interaction"]
    pair = analysis.effects.pair(first, second)
    assert pair.verdict == "hurts" and pair.high < 0
    assert pair.effect == pytest.approx(truth, abs=0.02)
    others = [p for p in analysis.effects.pairs if p is not pair and p.verdict != "unclear"]
    assert others == []
    assert len(analysis.effects.pairs) > 5  # pairs of different families that co-occur often enough
    assert all(p.first[0] != p.second[0] and p.together >= 3 for p in analysis.effects.pairs)


def test_failed_and_pruned_trials_are_counted(analysis):
    table = analysis.effects
    assert table.counts == {"complete": 120, "pruned": 2, "failed": 5}  # the interrupted trial is left out
    aum = table.effect("selection", "aum")
    assert (aum.trials, aum.failed, aum.verdict) == (2, 4, "fails often")
    gce = table.effect("loss", "gce")
    assert gce.failed == 1 and gce.verdict == "helps"  # one failure in many trials is not "often"
    assert table.effect("mixing", "mixup").failed == 0
    assert sum(r.pruned for r in table.rows if r.family == "loss") == 2


def test_importances_cover_conditional_parameters(analysis):
    assert set(analysis.importances) == {"loss.gce.q", "optimizer.sgd.lr"}
    assert sum(analysis.importances.values()) == pytest.approx(1.0)


def test_stored_in_the_study_and_recomputed_when_trials_change(effects_study, tmp_path):
    path = effects_study.removeprefix("sqlite:///")
    shutil.copy(path, tmp_path / "copy.db")
    url = f"sqlite:///{tmp_path}/copy.db"
    study = optuna.load_study(study_name="effects", storage=url)
    first = load_or_compute(study)
    stored = optuna.load_study(study_name="effects", storage=url).user_attrs[ATTR]
    assert stored["n_trials"] == first.n_trials == 127 and stored["fingerprint"] == first.fingerprint
    again = load_or_compute(optuna.load_study(study_name="effects", storage=url))
    assert again.computed_at == first.computed_at and again.effects == first.effects  # read, not recomputed
    study.add_trial(optuna.trial.create_trial(value=0.7, user_attrs={"combination": {"loss": "sce"}}))
    fresh = load_or_compute(optuna.load_study(study_name="effects", storage=url))
    assert fresh.n_trials == 128 and fresh.fingerprint != first.fingerprint


def test_fast_enough_for_200_trials(effects_truth):
    rng = np.random.default_rng(0)
    obs = [Observation({f: str(rng.choice(c)) for f, c in effects_truth["choices"].items()}, value=float(rng.random()),
                       number=i) for i in range(200)]
    effects(obs[:5])  # warm up imports
    start = time.perf_counter()
    table = effects(obs, resamples=500)
    assert time.perf_counter() - start < 2.0
    assert table.pairs  # interactions were estimated too


def test_bootstrap_solves_the_same_ridge_as_scikit_learn():
    rng = np.random.default_rng(1)
    x, y = rng.random((40, 5)), rng.normal(size=40)
    w = rng.multinomial(40, np.full(40, 1 / 40), size=3).astype(float)
    boot = _ridge_resamples(x, y, w, alpha=1.0)
    for r in range(3):
        np.testing.assert_allclose(boot[r], Ridge(alpha=1.0).fit(x, y, sample_weight=w[r]).coef_, atol=1e-10)


def test_inputs_are_validated():
    with pytest.raises(ValueError, match="no observations"):
        effects([])
    with pytest.raises(ValueError, match="choose one of: complete, pruned, failed"):
        effects([Observation({"loss": "ce"}, state="running", value=0.5)])
    with pytest.raises(ValueError, match="needs a finite value"):
        effects([Observation({"loss": "ce"}, value=float("nan"))])
    with pytest.raises(ValueError, match="family -> choice name"):
        effects([Observation({"loss": 3}, value=0.5)])  # type: ignore[dict-item]


def test_too_few_trials_give_no_verdict():
    table = effects([Observation({"loss": "ce"}, value=0.5, baseline=True), Observation({"loss": "gce"}, value=0.9)])
    assert table.effect("loss", "gce").verdict == "unclear"


def test_no_intervals_while_the_fit_is_nearly_saturated():
    choices = ["ce", "gce", "sce", "mae", "nce_rce"]
    obs = [Observation({"loss": choices[i % 5], "mixing": "mixup" if i % 2 else "none"}, value=0.5 + 0.01 * i,
                       number=i, baseline=i == 0) for i in range(12)]
    table = effects(obs)
    assert all(r.low is None and r.verdict in ("unclear", "baseline") for r in table.rows)
    assert any("run more trials" in note for note in table.notes)
