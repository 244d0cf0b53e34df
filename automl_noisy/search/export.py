"""Export: the best trial's complete Pipeline as YAML, with provenance beside it."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna

from automl_noisy.components import complete
from automl_noisy.data.dataset import MIN_TRUSTED_TO_RANK
from automl_noisy.errors import UserError
from automl_noisy.outputs import data_files, refuse_inputs, sqlite_file, write_text
from automl_noisy.pipeline import Pipeline
from automl_noisy.final_model import estimate_note
from automl_noisy.search.selection import DEFAULT_RULE, choose, versus_baseline
from automl_noisy.search.storage import mask_url, open_storage, resolve_study
from automl_noisy.versions import versions


def validation_name(folds: int, objective: dict | None = None) -> str:
    """How a trial's value was measured, in words; ``objective`` is the study's (``study.objective``:
    what ranked the trials; a study without one ranked by the noisy labels).

    >>> validation_name(3, {"ranked_by": "trusted", "rows": 72})
    '3-fold cross-validation (out-of-fold accuracy on the 72 trusted rows; noisy accuracy recorded as noisy_val_accuracy)'
    >>> validation_name(1)
    'holdout (noisy accuracy)'
    """
    how = f"{folds}-fold cross-validation (out-of-fold " if folds > 1 else "holdout ("
    if objective and objective.get("ranked_by") == "trusted":
        return how + (f"accuracy on the {objective['rows']} trusted rows"
                      f"{'' if folds > 1 else ' of the validation split'}; noisy accuracy recorded as noisy_val_accuracy)")
    return how + "noisy accuracy)"


def ranked_by(study: optuna.Study) -> str:
    """What ranked the study's trials, in a few words."""
    objective = study.user_attrs.get("objective") or {}
    if objective.get("ranked_by") == "trusted":
        return f"accuracy on the {objective['rows']} trusted rows (a clean objective)"
    if "trusted_validating" in objective:
        return (f"noisy accuracy: only {objective['trusted_validating']} trusted rows validate, fewer than the "
                f"{MIN_TRUSTED_TO_RANK} that rank trials (more trusted rows, or --cv, would make the objective clean)")
    return "noisy accuracy (no trusted rows)"


def best_pipeline(study: optuna.Study, storage_url: str = "",
                  rule: str = DEFAULT_RULE) -> tuple[Pipeline, dict[str, Any]]:
    """The pipeline of the complete trial ``rule`` picks (see :mod:`automl_noisy.search.selection`)
    and its provenance, which says which rule picked what and how it compares with plain CE."""
    choice = choose(study, rule)
    best = choice.trial
    if "pipeline" not in best.user_attrs:
        raise UserError(f"trial {best.number} of study {study.study_name!r} holds no pipeline; "
                        "was the study made by automl-noisy?")
    # train stops where the trial's curve peaked (studies of older versions kept the last epoch); every
    # hyperparameter is written down, so a default changed later does not change what the export trains
    pipeline = complete(replace(Pipeline.from_dict(best.user_attrs["pipeline"]),
                                best_epoch=best.user_attrs.get("best_epoch")))
    provenance = {
        "study": study.study_name,
        "storage": mask_url(storage_url) if storage_url else None,
        "trial": best.number,
        "rule": choice.rule,
        "selection": choice.reason,
        "best_trial": choice.best.number,
        "versus_plain_ce": versus_baseline(study, best),
        "val_accuracy": best.value,
        "value_stderr": best.user_attrs.get("value_stderr"),
        "validation": validation_name(pipeline.data.folds, study.user_attrs.get("objective")),
        "ranked_by": ranked_by(study),
        **({"noisy_val_accuracy": best.user_attrs["noisy_val_accuracy"]}
           if "noisy_val_accuracy" in best.user_attrs else {}),
        "val_accuracy_estimates": estimate_note(pipeline.data.folds),
        "test_accuracy": best.user_attrs.get("test_accuracy"),
        "combination": best.user_attrs.get("combination"),
        "trials_in_study": len(study.trials),
        "data_fingerprint": study.user_attrs.get("data_fingerprint"),
        "noise_rate": study.user_attrs.get("noise_rate"),
        **({"encoder": best.user_attrs["encoder"], "encoders": study.user_attrs.get("encoder_folder"),
            "encoder_threads": study.user_attrs.get("encoder_threads", 1)}
           if "encoder" in best.user_attrs else {}),
        **({"fold_models": str(Path(study.user_attrs["fold_models"]) / f"trial-{best.number}")}
           if "fold_models" in study.user_attrs else {}),
        "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
    }
    return pipeline, provenance


def export_best(storage_url: str, study_name: str | None, path: str | Path,
                rule: str = DEFAULT_RULE) -> tuple[Pipeline, dict[str, Any]]:
    """Write ``path`` (YAML) from the trial ``rule`` picks in a stored study; returns what was written."""
    storage = open_storage(storage_url, must_exist=True)
    study = resolve_study(storage, study_name, storage_url)
    pipeline, provenance = best_pipeline(study, storage_url, rule)
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder; pass -o with a file name, e.g. {path / 'best.yaml'}")
    refuse_inputs([path], study_inputs(study, storage_url))
    write_text(path, pipeline.to_yaml(provenance))
    return pipeline, provenance


def study_inputs(study: optuna.Study, storage_url: str) -> dict[str, str | None]:
    """The files behind a stored study, which no output may overwrite: the study database (an
    SQLite file) and the files of the data it was searched on."""
    from automl_noisy.data import DataSpec

    inputs: dict[str, str | None] = {"the study database": sqlite_file(storage_url)}
    data = study.user_attrs.get("data")
    if isinstance(data, dict):
        try:
            inputs.update(data_files(DataSpec.from_dict(data)))
        except UserError:  # a study of another version: its database is what matters
            pass
    return inputs
