"""A trained model that predicts new data: :func:`load` reads the folder ``automl-noisy train``
writes (see :mod:`automl_noisy.train.model_folder`) and returns a :class:`TrainedModel`.

>>> model = load("out/")                                          # doctest: +SKIP
>>> model.predict(frame)               # class names, one per row  # doctest: +SKIP
>>> model.predict_proba(frame)         # (n, len(model.classes_))  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from automl_noisy.data.inputs import Inputs, array_inputs, frame_inputs, read_inputs
from automl_noisy.data.preprocessing import Preprocessing
from automl_noisy.pipeline import Pipeline
from automl_noisy.train.ensemble import Ensemble
from automl_noisy.train.model_folder import ModelCard, read_model_folder
from automl_noisy.train.trainer import autocast_for, resolve_device


class TrainedModel:
    """A trained pipeline with its preprocessing and class names.

    ``predict_proba(X)`` and ``predict(X)`` take a pandas DataFrame with the training columns (a
    table model; other columns are ignored; missing values filled as training filled them, when it
    was trained with ``--impute median``) or a NumPy array: a table model's columns in training
    order, else samples of the model's input shape **in the units of the source it learned from**,
    uint8 or not: digits' pixels 0-16 (``load_digits().images[:, None]``), image pixels 0-255 (an
    image folder, a torchvision root, an npz of uint8), which are divided as training divided them
    (the card's ``preprocessing.scale``: by 16, by 255); other arrays as they are. Values far outside
    such a source's range, or all in [0, 1] with fractions (already divided), are a UserError naming
    the range and the division. Then the training standardization, if any. Each network of the
    pipeline's scheme votes, as in training's own evaluation; a model of several members
    (``ensemble``: the fold models of a cross-validated recipe) averages their class probabilities.
    ``classes_[k]`` is the class of column ``k`` of ``predict_proba``.
    """

    def __init__(self, card: ModelCard, pipeline: Pipeline, ensemble: Ensemble, device: torch.device,
                 folder: Path) -> None:
        self.card, self.pipeline, self.ensemble, self.device, self.folder = card, pipeline, ensemble, device, folder
        self.classes_ = np.asarray(card.class_names)

    @property
    def networks(self) -> list[torch.nn.Module]:
        """Every network of the model, member by member."""
        return self.ensemble.networks  # type: ignore[return-value]

    @property
    def preprocessing(self) -> Preprocessing:
        return self.card.preprocessing

    def inputs(self, X: Any) -> Inputs:
        """``X`` as network inputs (see the class docstring)."""
        import pandas as pd

        if isinstance(X, pd.DataFrame):
            return frame_inputs(X, self.preprocessing, "the DataFrame")
        return array_inputs(X, self.preprocessing, "the array")

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (float64, rows sum to 1) of network inputs ``x``."""
        tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        probs = self.ensemble.probabilities(tensor, len(self.classes_), autocast_for(self.device))
        return probs.cpu().numpy().astype(np.float64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Per row of ``X``, the probability of each class in ``classes_``."""
        inputs = self.inputs(X)
        for note in inputs.notes:
            warnings.warn(note, UserWarning, stacklevel=2)
        return self.probabilities(inputs.x)

    def predict(self, X: Any) -> np.ndarray:
        """Per row of ``X``, the most probable class."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy of ``predict(X)`` against the labels ``y`` (weighted by ``sample_weight``), as
        scikit-learn's classifiers score. A label is compared with the class names as text (``"spam"``,
        ``"0.5"``) and, when it is a number and the class names are numbers, by value: ``1``, ``1.0``
        and ``"1"`` all match class ``"1"``. A label that is none of ``classes_`` counts as a wrong
        prediction: the model cannot predict it.

        >>> model.score(frame, frame["label"])      # the share of rows predicted right  # doctest: +SKIP
        0.85
        """
        from automl_noisy.errors import UserValueError

        predicted = self.predict(X)
        given = np.asarray(y)
        if given.ndim != 1 or len(given) != len(predicted) or len(given) == 0:
            raise UserValueError(f"y has shape {given.shape}, X {len(predicted)} row(s); score needs one label "
                                 "per row of X, and at least one row")
        correct = predicted == given.astype(str)
        if given.dtype.kind in "iuf":
            try:
                correct |= predicted.astype(np.float64) == given.astype(np.float64)
            except ValueError:  # class names that are not all numbers: text only
                pass
        return float(np.average(correct, weights=sample_weight))

    def predict_source(self, source: str) -> tuple[Inputs, np.ndarray]:
        """The rows of a ``--data`` source (csv, parquet, npz, an image folder, built-in data) and
        their class probabilities."""
        inputs = read_inputs(source, self.preprocessing, self.pipeline.data)
        return inputs, self.probabilities(inputs.x)

    def __repr__(self) -> str:
        combination = ", ".join(f"{k}={v}" for k, v in self.pipeline.combination().items() if v not in ("none", "single"))
        members = f", {self.ensemble.describe()}" if len(self.ensemble.members) > 1 else ""
        return f"TrainedModel({self.folder}: {len(self.classes_)} classes, {combination}{members})"


def load(folder: str | Path, device: str | torch.device | None = "cpu") -> TrainedModel:
    """The model in ``folder`` (written by ``automl-noisy train -o folder`` or
    :func:`automl_noisy.train_pipeline`), on ``device`` (``"cpu"``; ``None``: a GPU when there is
    one). Nothing in the folder is executed: weights load with ``weights_only=True``, the rest is
    JSON and YAML."""
    resolved = resolve_device(device)
    card, pipeline, ensemble = read_model_folder(folder, resolved)
    return TrainedModel(card, pipeline, ensemble, resolved, Path(folder))
