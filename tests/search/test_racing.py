"""Racing the folds (search/racing.py): a trial clearly behind after its first fold stops there."""

from __future__ import annotations

import numpy as np
import pytest
from optuna.trial import TrialState

from automl_noisy.data import DataSpec
from automl_noisy.errors import UserError
from automl_noisy.search.controller import SearchOptions, search
from automl_noisy.search.racing import Racing, behind, parse_racing
from automl_noisy.search.space import parse_space

SPACE = """
epochs: 3
sampler: {name: random}
pruner: {name: none}
racing: {folds: 1, z: 1.0}
families:
  model: {mlp: {width: 32, depth: 1}}
  loss: [ce, mae]
  mixing: [none, mixup]
"""


def test_behind_is_a_one_sided_paired_test():
    rng = np.random.default_rng(0)
    incumbent = rng.random(300) < 0.8
    same = incumbent.copy()
    assert behind(same, incumbent, 2.0)[0] is False  # no difference: never behind
    worse = incumbent.copy()
    worse[np.flatnonzero(incumbent)[:60]] = False  # 60 rows lost, none won: -0.2, far behind
    stopped, mean, stderr = behind(worse, incumbent, 2.0)
    assert stopped and mean == pytest.approx(-0.2) and stderr == pytest.approx(np.std(worse.astype(float) - incumbent,
                                                                                      ddof=1) / np.sqrt(300))
    slightly = incumbent.copy()
    slightly[np.flatnonzero(incumbent)[:12]] = False  # 12 lost and 9 won: -0.01, within two standard errors
    slightly[np.flatnonzero(~incumbent)[:9]] = True
    assert behind(slightly, incumbent, 2.0)[0] is False and behind(slightly, incumbent, 0.1)[0] is True


def test_the_racing_key_of_a_space():
    assert parse_racing(None, "s") is None and parse_racing(False, "s") is None
    assert parse_racing(True, "s") == Racing() and parse_racing({"folds": 2, "z": 3}, "s") == Racing(2, 3.0)
    for bad in ({"folds": 0}, {"z": -1}, {"z": float("nan")}, {"fold": 1}, "yes"):
        with pytest.raises(UserError, match="racing"):
            parse_racing(bad, "s")
    racing = parse_space({"racing": True}).to_dict()["racing"]
    assert racing == {"folds": 1, "z": 2.0} and "racing" not in parse_space({}).to_dict()  # old studies unchanged


def test_a_raced_out_trial_stops_after_its_first_fold_and_queued_ones_are_never_raced(tmp_path):
    """A seeded search on the local executor (the same trials every run): the trials clearly behind
    the incumbent on fold 0's rows are pruned there with the reason; plain CE, queued, runs all its
    folds; a trial that was not behind runs all three."""
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    spec = DataSpec("synthetic", "symmetric:0.5", options={"samples": 300, "features": 8, "classes": 3})
    study = search(SearchOptions(spec, space=str(space), trials=8, storage=f"sqlite:///{tmp_path}/s.db",
                                 executor="local", progress=False, portfolio=None, cv=3))
    raced = [t for t in study.trials if "raced_out" in t.user_attrs]
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert raced and complete and study.trials[0] in complete  # plain CE, queued: never raced
    for t in raced:
        assert t.state == TrialState.PRUNED and len(t.intermediate_values) == 1
        assert t.user_attrs["raced_out"].startswith("raced out after 1 of 3 folds: -")
        assert "best_epoch" not in t.user_attrs  # no combined curve: the other folds never ran
    for t in complete:  # all three folds: a record over the whole pool
        assert int(t.user_attrs["val_correct"].split(":")[0]) == 240
