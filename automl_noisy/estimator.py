"""NoisyLabelSearch: the search, export and training of the command line as a scikit-learn estimator.

``fit(X, y, trusted=None)`` holds the data (and any trusted rows) in memory (:mod:`automl_noisy.data.sources.memory`), runs
:func:`automl_noisy.search.controller.search` on it, takes the pipeline of the trial ``export``'s
rule picks, trains it with :func:`automl_noisy.train_pipeline` into a model folder and loads that folder
(:func:`automl_noisy.load`): the same code as ``automl-noisy search``, ``export`` and ``train``.

>>> from sklearn.datasets import make_classification
>>> X, y = make_classification(n_samples=300, n_features=8, n_informative=4, n_classes=3, random_state=0)
>>> model = NoisyLabelSearch(trials=2, space="quick", executor="local", portfolio=False, verbose=0).fit(X, y)
>>> model.predict(X[:3]).shape, sorted(model.label_issues_.columns)[:2]
((3,), ['given_label', 'index'])
"""

from __future__ import annotations

import numbers
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from automl_noisy.errors import UserError, UserValueError
from automl_noisy.final_model import DEFAULT_FINAL_MODEL, FINAL_MODELS

#: The validation share of a holdout split, as ``--val-fraction``'s default; raised on small data
#: so that the split holds one row of each class.
VAL_FRACTION = 0.1


@contextmanager
def _value_errors() -> Iterator[None]:
    """A :class:`UserError` raised inside comes out as a :class:`UserValueError` (the same message
    and traceback): scikit-learn expects a ``ValueError`` for bad input."""
    try:
        yield
    except UserError as e:
        if isinstance(e, ValueError):
            raise
        raise UserValueError(str(e)).with_traceback(e.__traceback__) from None


class NoisyLabelSearch(ClassifierMixin, BaseEstimator):
    """Search combinations of noisy-label methods on ``(X, y)``, train the best, and predict.

    ``X`` is a NumPy array (vectors ``(n, d)``, or images ``(n, C, H, W)`` as floats in [0, 1] or
    uint8) or a pandas DataFrame (numeric columns, and text columns one-hot encoded); ``y`` holds the
    (noisy) labels. Parameters mirror ``automl-noisy search`` and ``train``:

    - ``trials``, ``space``, ``cv``, ``portfolio``, ``random_state`` (the search's ``--seed``),
      ``executor`` (``"ray"`` or ``"local"``), ``workers``, ``ray_address``;
    - ``storage`` (an Optuna storage URL, with the pretrained encoders kept beside it as the CLI keeps
      them; None keeps the study in memory) and ``study_name`` (None: one named after the data, the
      space and the seed, which a later fit on the same data resumes);
    - ``device`` and ``threads`` for training the best pipeline; ``model_dir`` keeps its model folder
      (None: a temporary one, removed after ``fit``; the model stays loaded);
    - ``final_model``: with K >= 2 folds, what ``fit`` trains and ``predict`` uses: ``"ensemble"``
      (the K fold models, their class probabilities averaged) or ``"refit"`` (one more model on all
      rows), as ``train --ensemble`` / ``--refit``; with a holdout split there is one model either way
      (the default: :data:`~automl_noisy.final_model.DEFAULT_FINAL_MODEL`);
    - ``rule``: which trial is trained, as ``export --rule``: ``"one-se"`` (the simplest trial within
      one paired standard error of the best, the default), ``"ce-guard"`` (plain CE when it is within one
      paired standard error of the best, else the best) or ``"best"`` (the highest value);
    - ``verbose``: 0 silent, 1 the search's progress bar and a summary line, 2 also training epochs.

    Bad input or a bad parameter raises :class:`~automl_noisy.errors.UserValueError`: a
    ``ValueError``, as scikit-learn expects, and the project's ``UserError``. Each class of ``y``
    needs two rows (one to train on, one to validate); on small data the validation split grows
    from 10 % to one row of each class.

    After ``fit``: ``classes_``, ``n_features_in_`` (and ``feature_names_in_`` for a DataFrame),
    ``best_pipeline_`` (:class:`~automl_noisy.Pipeline`), ``study_`` (the Optuna study),
    ``label_issues_`` (a DataFrame like ``label_issues.csv``: ``index`` is the row of ``X``, most
    suspect first), ``effects_`` (a DataFrame of the choices' effects against plain CE, with
    intervals), ``metrics_`` (``metrics.json``) and ``model_`` (:class:`~automl_noisy.TrainedModel`).
    """

    def __init__(self, trials: int = 20, space: str = "default", cv: int | None = None, portfolio: bool = True,
                 storage: str | None = None, study_name: str | None = None, executor: str = "ray",
                 workers: int | None = None, ray_address: str | None = None, random_state: int = 0,
                 device: str | None = None, threads: int = 1, model_dir: str | None = None,
                 final_model: str = DEFAULT_FINAL_MODEL, rule: str = "one-se", verbose: int = 1) -> None:
        self.trials = trials
        self.space = space
        self.cv = cv
        self.portfolio = portfolio
        self.storage = storage
        self.study_name = study_name
        self.executor = executor
        self.workers = workers
        self.ray_address = ray_address
        self.random_state = random_state
        self.device = device
        self.threads = threads
        self.model_dir = model_dir
        self.final_model = final_model
        self.rule = rule
        self.verbose = verbose

    def fit(self, X: Any, y: Any, trusted: Mapping[int, Any] | None = None) -> NoisyLabelSearch:
        """Search, export the pipeline of the trial ``rule`` picks and train it on ``(X, y)`` (as ``final_model`` says).

        ``trusted`` maps rows of ``X`` (0-based positions) to their verified labels (values of ``y``),
        as ``--trusted`` does: those labels replace the rows' labels in ``y``, and the trusted set is
        part of the data's identity (a stored study resumed with another set is refused). The trusted
        training rows feed the adjustment ``glc``, which the default space then offers (where every
        training split has a trusted row of every class); from 50 trusted rows on, the study's noise
        profile is measured on them. They do not rank trials yet.
        """
        with _value_errors():
            self._fit(X, y, trusted)
        return self

    def _fit(self, X: Any, y: Any, trusted: Mapping[int, Any] | None = None) -> None:
        import torch

        from automl_noisy.data import DataSpec
        from automl_noisy.data.sources.memory import hold, hold_trusted, release

        self._check_params()
        features, labels = self._validated(X, y)
        options = {} if trusted is None else {"trusted": hold_trusted(*self._trusted(trusted, len(labels)))}
        spec = DataSpec(source=hold(features, labels), label_column=self._label_column(features),
                        seed=int(self.random_state), val_fraction=self._val_fraction(labels), options=options)
        threads = torch.get_num_threads()  # training sets its own; the caller's comes back after
        try:
            with tempfile.TemporaryDirectory(prefix="automl-noisy-fit-") as tmp:
                self._search_and_train(spec, Path(tmp))
        finally:
            release(spec.source)
            if options:
                release(options["trusted"])
            torch.set_num_threads(threads)

    def _trusted(self, trusted: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``fit``'s ``trusted`` (a mapping of rows of ``X`` to values of ``y``) as row ids and class ids
        (positions in ``classes_``)."""
        if not isinstance(trusted, Mapping):
            raise UserValueError(f"trusted must be a mapping of rows of X to their verified labels, e.g. "
                                 f"{{3: {self.classes_.tolist()[0]!r}}}, or None; got {type(trusted).__name__}")
        if not trusted:
            raise UserValueError("trusted is empty; pass None, or at least one row of X with its verified label")
        index = {c: i for i, c in enumerate(self.classes_.tolist())}
        rows, labels = [], []
        for row, label in trusted.items():
            if isinstance(row, (bool, np.bool_)) or not isinstance(row, numbers.Integral) or not 0 <= row < n:
                raise UserValueError(f"trusted names row {row!r}, which is not a row of X; rows are 0..{n - 1}")
            value = label.item() if isinstance(label, np.generic) else label
            try:
                known = value in index
            except TypeError:  # unhashable
                known = False
            if not known:
                raise UserValueError(f"trusted label {label!r} of row {row} is not a class of y; classes: "
                                     f"{', '.join(map(repr, self.classes_.tolist()))}")
            rows.append(int(row))
            labels.append(index[value])
        return np.array(rows, dtype=np.int64), np.array(labels, dtype=np.int64)

    def _search_and_train(self, spec: Any, tmp: Path) -> None:
        import pandas as pd

        from automl_noisy.search.controller import SearchOptions, search
        from automl_noisy.search.export import best_pipeline
        from automl_noisy.search.study_analysis import load_or_compute
        from automl_noisy.train.final import train_pipeline
        from automl_noisy.trained import load

        from automl_noisy.search.encoders import encoder_folder

        storage = self.storage or "sqlite:///:memory:"
        # pretrained encoders: beside a stored study (a later fit resumes with them, as the CLI does), else
        # for this fit only
        stored = encoder_folder(self.storage) if self.storage else None
        encoders = str(stored if stored is not None else tmp / "encoders")
        whole = lambda value: None if value is None else int(value)  # noqa: E731 - numpy integers too
        options = SearchOptions(data=spec, space=self.space, trials=int(self.trials), storage=storage,
                                study=self.study_name, executor=self.executor, workers=whole(self.workers),
                                ray_address=self.ray_address, seed=int(self.random_state), progress=self.verbose > 0,
                                cv=whole(self.cv), encoders=encoders, portfolio="default" if self.portfolio else None)
        study = search(options)
        pipeline, provenance = best_pipeline(study, storage, self.rule)
        out = Path(self.model_dir) if self.model_dir else tmp / "model"

        def report(m: Any, stage: str) -> None:
            print(f"{stage} epoch {m.epoch:>3}/{pipeline.stop_epoch}: loss {m.train_loss:.4f}", file=sys.stderr)

        self.metrics_ = train_pipeline(pipeline, out, threads=int(self.threads), device=self.device,
                                       on_epoch=report if self.verbose > 1 else None, encoders=encoders,
                                       final_model=self.final_model, kept=provenance.get("fold_models"))
        self.model_ = load(out, device=self.device)  # None: a GPU when there is one, as in training
        names = dict(zip(self.model_.classes_.tolist(), self.classes_.tolist(), strict=True))
        issues = pd.read_csv(out / "label_issues.csv", dtype={"given_label": str, "predicted_label": str})
        for column in ("given_label", "predicted_label"):
            issues[column] = issues[column].map(names)
        self.label_issues_ = issues
        analysis = load_or_compute(study)
        self.effects_ = pd.DataFrame([asdict(row) for row in analysis.effects.rows])
        self.best_pipeline_, self.study_ = pipeline, study
        if self.verbose > 0:
            print(f"NoisyLabelSearch: of {len(study.trials)} trials, {provenance['selection']}; trained it: "
                  f"{self.metrics_['model']}, val_accuracy {self.metrics_['val_accuracy']:.4f} "
                  f"({self.metrics_['validation']})", file=sys.stderr)

    def _check_params(self) -> None:
        """The numeric parameters, each an integer (a Python or NumPy one) in its range; the search
        checks the others (``space``, ``executor``, ``storage``, ``device`` ...)."""
        for name, low, optional in (("trials", 1, False), ("random_state", 0, False), ("threads", 1, False),
                                    ("verbose", 0, False), ("cv", 1, True), ("workers", 1, True)):
            value = getattr(self, name)
            if optional and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise UserValueError(f"{name} must be an integer of at least {low}{' or None' if optional else ''}, "
                                     f"got {value!r}")
        if not isinstance(self.portfolio, (bool, np.bool_)):
            raise UserValueError(f"portfolio must be True or False, got {self.portfolio!r}")
        if self.rule not in ("one-se", "ce-guard", "best"):
            raise UserValueError(f"rule must be 'one-se', 'ce-guard' or 'best', got {self.rule!r}")
        if not isinstance(self.final_model, str) or self.final_model not in FINAL_MODELS:
            raise UserValueError(f"final_model must be one of {', '.join(map(repr, FINAL_MODELS))}, "
                                 f"got {self.final_model!r}")

    def _validated(self, X: Any, y: Any) -> tuple[Any, np.ndarray]:
        """``X`` (a DataFrame with a plain index, or a numeric array) and ``y`` as a 1-D array the
        data sources read; sets ``classes_``, ``n_features_in_`` and ``feature_names_in_``."""
        import pandas as pd
        from sklearn.utils.validation import check_consistent_length, validate_data

        y = self._labels(y)
        if isinstance(X, pd.DataFrame):
            X = X.reset_index(drop=True).rename(columns=str)
            validate_data(self, X, skip_check_array=True)  # n_features_in_, feature_names_in_
        else:
            X = validate_data(self, X, allow_nd=True, dtype="numeric")
        check_consistent_length(X, y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise UserValueError(f"y holds only one class ({self.classes_.tolist()[0]!r}); a classifier needs "
                                 "at least two")
        return X, (y.astype(str) if y.dtype.kind == "O" else y)

    @staticmethod
    def _labels(y: Any) -> np.ndarray:
        """``y`` as a 1-D array of class labels, checked as scikit-learn's classifiers check it. An
        object array must hold labels of one kind (strings, say): labels that mix numbers and strings
        have no order (nor, so, ``classes_``), and a missing label (None, NaN) is no class."""
        import pandas as pd
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import column_or_1d

        def kind_of(value: Any) -> str:
            if isinstance(value, str):
                return "strings"
            if value is None or value is pd.NA or (isinstance(value, numbers.Real) and value != value):
                return "missing"
            return "numbers" if isinstance(value, numbers.Number) else type(value).__name__

        y = column_or_1d(np.asarray(y), warn=True)
        if y.dtype.kind == "O":
            examples: dict[str, Any] = {}
            missing = 0
            for value in y:
                kind = kind_of(value)
                missing += kind == "missing"
                examples.setdefault(kind, value)
            if missing:
                raise UserValueError(f"y has {missing} missing label(s) (None or NaN); drop those rows or give "
                                     "them a label")
            if len(examples) > 1:
                first, second = sorted(examples)[:2]
                raise UserValueError(f"y mixes {first} and {second} as labels (e.g. {examples[first]!r} and "
                                     f"{examples[second]!r}); pass labels of one kind, e.g. "
                                     "numpy.asarray(y, dtype=str)")
        check_classification_targets(y)
        return y

    @staticmethod
    def _val_fraction(y: np.ndarray) -> float:
        """The validation share of the holdout split: ``VAL_FRACTION``, or just enough for one row of
        each class on small data. Every class needs two rows: one to train on, one to validate."""
        classes, counts = np.unique(y, return_counts=True)
        if counts.min() < 2:
            rare = classes[counts < 2]
            raise UserValueError(f"class {rare.tolist()[0]!r} has only one row in y ({len(rare)} class(es) do); "
                                 "NoisyLabelSearch needs two rows of each class, one to train on and one "
                                 "to validate: add rows or drop the class")
        if len(y) * VAL_FRACTION >= len(classes):
            return VAL_FRACTION
        return (len(classes) - 0.5) / len(y)  # the split holds out ceil(fraction * n) rows: exactly one per class

    @staticmethod
    def _label_column(features: Any) -> str:
        """A name for the label column that no feature column has."""
        taken = set(getattr(features, "columns", ()))
        name = "label"
        while name in taken:
            name += "_"
        return name

    def _fitted(self) -> Any:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "model_")
        return self.model_

    def _inputs(self, X: Any) -> Any:
        """``X`` checked as scikit-learn checks new rows. A model fit on a DataFrame takes a DataFrame
        as it is (its feature columns are found by name, in any order; others are ignored) or an
        array of its columns in training order; a model fit on an array takes finite numbers with the
        training number of features."""
        import pandas as pd
        from sklearn.utils.validation import validate_data

        if hasattr(self, "feature_names_in_"):
            return X if isinstance(X, pd.DataFrame) else validate_data(self, X, reset=False, skip_check_array=True)
        return validate_data(self, X, reset=False, allow_nd=True, dtype="numeric")

    def predict_proba(self, X: Any) -> np.ndarray:
        """Per row of ``X``, the probability of each class of ``classes_``."""
        model = self._fitted()
        with _value_errors():
            return model.predict_proba(self._inputs(X))

    def predict(self, X: Any) -> np.ndarray:
        """Per row of ``X``, the most probable class (a value of ``y``)."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]
