"""automl-noisy: find the combination of noisy-label methods that trains the best classifier.

The public API is re-exported lazily, so ``import automl_noisy`` stays light:

- ``search(SearchOptions(...))`` runs or resumes a search and returns the Optuna study;
- ``Pipeline`` is one combination of methods, the object an export writes as YAML;
- ``train_pipeline(pipeline, out_dir)`` trains it and saves weights, metrics and label issues;
- ``load(out_dir)`` reads that folder back as a model with ``predict`` and ``predict_proba``;
- ``NoisyLabelSearch`` does all of it in scikit-learn's shape: ``fit(X, y)``, ``predict(X)``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "search": "automl_noisy.search.controller",
    "SearchOptions": "automl_noisy.search.controller",
    "Pipeline": "automl_noisy.pipeline",
    "ComponentSpec": "automl_noisy.pipeline",
    "DataSpec": "automl_noisy.data.spec",
    "train_pipeline": "automl_noisy.train.final",
    "run_trial": "automl_noisy.train.trainer",
    "load": "automl_noisy.trained",
    "TrainedModel": "automl_noisy.trained",
    "NoisyLabelSearch": "automl_noisy.estimator",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'automl_noisy' has no attribute {name!r}")
