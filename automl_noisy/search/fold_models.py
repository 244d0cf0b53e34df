"""The fold models a search trained, kept so that ``train`` ships them instead of training them again.

A cross-validated trial trains K fold models; the ensemble ``train`` ships by default is exactly
those K models at the trial's best epoch (trained with the schedule of the full epochs, as ``train``
would train them again). So each fold job saves its weights after every epoch into
``<folder>/trial-<n>/fold-<i>/epoch-<e>.pt`` (on the driver's machine only: a job that runs on
another node of a cluster saves nothing, and ``train`` then trains as before). When the trial
completes, the driver keeps its best epoch's files as ``trial-<n>/fold-<i>.pt`` with a ``meta.json``
(the pipeline, the best epoch, the data's fingerprint) and deletes the rest; a pruned or failed trial
keeps nothing. Only trials the export rule could still pick are kept: plain CE, the best trial and
those within ``KEEP_WITHIN`` paired standard errors of it (the rule takes one within one); the folder
holds a few trials' models, not every trial's.

``train`` reuses a kept trial when the pipeline, its best epoch, the folds and the data's fingerprint
are the ones recorded (:func:`automl_noisy.train.kept.kept_fold_models`); anything else trains anew.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from automl_noisy.search.selection import baseline_of, paired
from automl_noisy.train.kept import META, write_meta

#: trials within this many paired standard errors of the best keep their fold models
KEEP_WITHIN = 2.0


def models_folder(encoder_folder: Path | None) -> Path | None:
    """Where a search keeps fold models: beside its encoders (``study-encoders`` -> ``study-models``)."""
    if encoder_folder is None:
        return None
    name = encoder_folder.name.removesuffix("-encoders")
    return encoder_folder.with_name(f"{name}-models")


class FoldModels:
    """The fold models of one study's trials, under ``root/<study name>``."""

    def __init__(self, root: Path, study_name: str) -> None:
        self.folder = root / study_name

    def snapshots(self, trial: int, fold: int) -> str:
        """The folder fold job ``fold`` of ``trial`` saves its epochs in."""
        return str(self.folder / f"trial-{trial}" / f"fold-{fold}")

    def trial_folder(self, trial: int) -> Path:
        return self.folder / f"trial-{trial}"

    def keep(self, trial: FrozenTrial | optuna.Trial, pipeline: dict, best_epoch: int, folds: int,
             fingerprint: str) -> bool:
        """Keep ``trial``'s fold models at ``best_epoch`` (False, and nothing kept, when a fold saved
        none: it ran on another node)."""
        top = self.trial_folder(trial.number)
        chosen = [top / f"fold-{i}" / f"epoch-{best_epoch}.pt" for i in range(folds)]
        if not all(p.is_file() for p in chosen):
            self.drop(trial.number)
            return False
        for i, path in enumerate(chosen):
            path.replace(top / f"fold-{i}.pt")
            shutil.rmtree(top / f"fold-{i}", ignore_errors=True)
        write_meta(top, pipeline, best_epoch, folds, fingerprint)
        return True

    def drop(self, trial: int) -> None:
        shutil.rmtree(self.trial_folder(trial), ignore_errors=True)

    def tidy(self, trials: Iterable[int]) -> None:
        """Remove what these trials (a driver's own) left and no kept model owns: epochs a cancelled
        job saved after its trial was dropped, the folders of trials never kept (a stopped search's)."""
        for number in trials:
            top = self.trial_folder(number)
            if not top.is_dir():
                continue
            if not (top / META).is_file():
                shutil.rmtree(top, ignore_errors=True)
                continue
            for leftover in top.glob("fold-*"):
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)

    def forget_the_unreachable(self, study: optuna.Study) -> None:
        """Delete the kept models of complete trials the export rule can no longer pick (see the
        module docstring)."""
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            return
        best, baseline = study.best_trial, baseline_of(study)
        for t in complete:
            if t.number in (best.number, getattr(baseline, "number", None)):
                continue
            p = paired(best, t)
            if p is None or p.difference > KEEP_WITHIN * p.stderr:
                self.drop(t.number)
