"""The fold models a search trained are what train ships: kept at their best epoch, reused when the
pipeline and data are the same, trained again otherwise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from optuna.trial import TrialState

from automl_noisy.components import build
from automl_noisy.data import load_data
from automl_noisy.pipeline import ComponentSpec
from automl_noisy.search.controller import SearchOptions, search
from automl_noisy.search.export import export_best
from automl_noisy.search.selection import correct_rows
from automl_noisy.train import train_pipeline

SPACE = "epochs: 4\nsampler: {name: random}\npruner: {name: none}\nfamilies:\n  model: {mlp: {width: 32, depth: 1}}\n  loss: [ce, gce, sce]\n"


@pytest.fixture
def searched(tmp_path, tiny_spec):
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    storage = f"sqlite:///{tmp_path}/s.db"
    study = search(SearchOptions(tiny_spec, space=str(space), trials=4, storage=storage, executor="local",
                                 progress=False, portfolio=None, cv=3))
    return study, storage


def test_train_ships_the_fold_models_the_search_kept(tmp_path, searched):
    """The exported trial's fold models, kept by the search at its best epoch, are the ensemble train
    ships: nothing is trained, its out-of-fold accuracy is the trial's value to the last digit, and
    it is right on exactly the rows the trial's record marks."""
    study, storage = searched
    root = tmp_path / "s-models" / study.study_name
    kept = sorted(p.name for p in root.iterdir())
    assert kept and all((root / k / "meta.json").is_file() and not list((root / k).glob("fold-*/")) for k in kept)
    pipeline, provenance = export_best(storage, None, tmp_path / "best.yaml", "best")
    assert provenance["fold_models"] == str(root.resolve() / f"trial-{provenance['trial']}")
    # the export writes every default (the search recorded only what it sampled), and still reuses them
    assert pipeline.model.params == build("model", ComponentSpec("mlp")).params() | {"width": 32, "depth": 1}
    assert set(study.trials[provenance["trial"]].user_attrs["pipeline"]["model"]) == {"name", "width", "depth"}
    epochs = []
    metrics = train_pipeline(pipeline, tmp_path / "out", kept=provenance["fold_models"],
                             on_epoch=lambda m, stage: epochs.append(stage))
    trial = study.trials[provenance["trial"]]
    assert not epochs and metrics["fold_models_kept_by_the_search"] == provenance["fold_models"]
    assert metrics["val_accuracy"] == trial.value and metrics["model"] == "ensemble of 3 fold models"
    data = load_data(pipeline.data)
    pool = np.concatenate([data.train_index, data.val_index]).astype(str)
    rows = pd.read_csv(tmp_path / "out" / "label_issues.csv", dtype=str).set_index("index").loc[pool]
    assert (rows["given_label"] == rows["predicted_label"]).tolist() == correct_rows(trial).tolist()


def test_other_epochs_or_data_train_again_and_only_reachable_trials_are_kept(tmp_path, searched):
    study, storage = searched
    pipeline, provenance = export_best(storage, None, tmp_path / "best.yaml", "best")
    from dataclasses import replace

    epochs = []
    train_pipeline(replace(pipeline, best_epoch=1 if pipeline.best_epoch != 1 else 2), tmp_path / "o1",
                   kept=provenance["fold_models"], on_epoch=lambda m, stage: epochs.append(stage))
    assert epochs  # another best epoch: trained
    root = tmp_path / "s-models" / study.study_name
    kept = {int(p.name.removeprefix("trial-")) for p in root.iterdir()}
    complete = {t.number for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert study.best_trial.number in kept and 0 in kept and kept <= complete
