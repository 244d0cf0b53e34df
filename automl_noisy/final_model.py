"""Which model ``train`` ships when a recipe is cross-validated (K >= 2 folds).

Cross-validation trains the recipe once per fold; each fold model scores the rows it did not see,
and those out-of-fold predictions are what the search ranked and what ``val_accuracy`` reports.
Then either of two models can ship:

- ``"ensemble"``: the K fold models themselves, as one model that averages their class
  probabilities (bagging, as AutoGluon ships its folds). It is exactly what was validated, and
  nothing more is trained.
- ``"refit"``: one more model of the same recipe trained on the whole pool. It learns from more rows
  (all of them, not K-1 folds of them) but was never validated itself: the out-of-fold accuracy is
  only an estimate for it, from models trained on fewer rows.

Measured on real data the two go opposite ways: on a 333-row table the refit scored 21 points below
its trial's fold models on the clean test split, on a 4,000-row one 7 points above them.

This module imports nothing heavy, so the command line's ``--help`` can name the default.
"""

from __future__ import annotations

ENSEMBLE, REFIT = "ensemble", "refit"
FINAL_MODELS = (ENSEMBLE, REFIT)

#: The model that ships with K >= 2 folds when none is asked for (``train --ensemble`` / ``--refit``,
#: ``NoisyLabelSearch(final_model=...)``): the fold ensemble, which ``benchmarks/model_selection.py --ship``
#: measured level with or ahead of the refit (median clean test accuracy over 12 searches: 0.938 against
#: 0.935 at commit 99275d3, 0.875 against 0.779 in the run before; the ensemble wins a tie).
DEFAULT_FINAL_MODEL = ENSEMBLE


def estimate_note(folds: int, final_model: str = DEFAULT_FINAL_MODEL, validation_rows: int | None = None,
                  trusted_rows: int | None = None) -> str:
    """What a trial's ``val_accuracy`` estimates for the model ``train`` ships (with a holdout split,
    ``trusted_rows``: how many trusted rows of it scored, when they did)."""
    if folds <= 1:
        rows = f"the {validation_rows} rows of " if validation_rows is not None else ""
        if trusted_rows is not None:
            rows = f"the {trusted_rows} trusted rows of "
        return f"on {rows}the validation split, which the model that ships did not train on"
    if final_model == ENSEMBLE:
        return (f"out of fold: each row scored by the one of the {folds} fold models that did not train on it; "
                "the ensemble that ships is those models")
    return (f"out of fold, from {folds} fold models each trained on {folds - 1} of the {folds} folds: an "
            "estimate for the refit, which trained on every row and was not validated itself")
