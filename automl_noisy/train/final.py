"""Train an exported pipeline to the end and save what a user keeps: weights, metrics and
per-sample label-issue scores."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from automl_noisy.data import DataSpec, NoisyDataset, load_data
from automl_noisy.data.folds import fold_split, pool_dataset, pool_folds
from automl_noisy.errors import UserError, shorten
from automl_noisy.final_model import DEFAULT_FINAL_MODEL, ENSEMBLE, FINAL_MODELS, REFIT, estimate_note
from automl_noisy.outputs import data_files, refuse_inputs, write_text
from automl_noisy.pipeline import Pipeline
from automl_noisy.train.ensemble import Ensemble
from automl_noisy.train.kept import kept_fold_models
from automl_noisy.train.model_folder import CARD, PIPELINE, WEIGHTS, write_model_folder
from automl_noisy.train.pretrain import PRETRAIN_THREADS, Encoder, EncoderCache, EncoderRequest, make_encoder
from automl_noisy.train.trainer import (EpochMetrics, Trainer, autocast_for, check_fits, check_trusted,
                                        detection_quality, resolve_device, saved_module)


#: the files :func:`train_pipeline` writes into its output folder
OUTPUT_FILES = (WEIGHTS, CARD, PIPELINE, "metrics.json", "label_issues.csv")


def train_pipeline(pipeline: Pipeline, out_dir: str | Path, data: DataSpec | NoisyDataset | None = None,
                   threads: int | None = 1, device: str | torch.device | None = None,
                   on_epoch: Callable[[EpochMetrics, str], None] | None = None,
                   encoders: str | Path | None = None, on_event: Callable[[str], None] | None = None,
                   inputs: dict[str, str | None] | None = None, final_model: str | None = None,
                   encoder_threads: int = PRETRAIN_THREADS, kept: str | Path | None = None) -> dict[str, Any]:
    """Train ``pipeline`` (on its own data spec unless ``data`` is given) up to its ``stop_epoch``
    (the search's best epoch, when exported) and write to ``out_dir``:

    - ``model.pt``: the model's ``state_dict``, every member's networks, a pretrained body included
      (load with ``torch.load(..., weights_only=True)``)
    - ``model.json``: class names, the fitted preprocessing, the members and more, so that the
      folder alone predicts (:mod:`automl_noisy.train.model_folder`; ``automl_noisy.load`` reads it)
    - ``label_issues.csv``: one row per training sample, most suspect first
    - ``metrics.json``: ``model`` (what ships, in words), ``val_accuracy`` and what it estimates,
      ``test_accuracy`` of the model that ships (when clean labels are known), and more
    - ``pipeline.yaml``: the pipeline that was trained

    With a holdout split (``data.folds`` 1) one model trains on the training split and the
    validation accuracy of the search trial is reproduced (same seed and thread count). With K folds
    the recipe trains once per fold, each fold model scoring the rows it did not see (so every row of
    the pool gets an out-of-fold suspicion score, and ``val_accuracy`` is the trial's out-of-fold
    accuracy; on the trusted rows alone when they ranked the search's trials, with the noisy one as
    ``noisy_val_accuracy``). Then ``final_model`` (None: :data:`~automl_noisy.final_model.DEFAULT_FINAL_MODEL`)
    decides what ships: ``"ensemble"`` the K fold models as one model that averages their class
    probabilities (what was validated; nothing more trains), ``"refit"`` one more model trained on
    the whole pool (more rows, but not validated itself; in its metrics ``ensemble_test_accuracy`` is
    the fold models', for comparison). See :mod:`automl_noisy.final_model` for the trade-off.
    ``on_epoch`` hears each epoch with what it belongs to (``"fold 2/3"`` or ``"model"``). Returns
    the metrics.

    A pretrained start takes its encoder from the folder ``encoders`` (the search's, which export
    names) when it is there, else pretrains it again with the pipeline's seed and ``encoder_threads``
    threads (bit-identical on a CPU with as many threads as the search's, which export records) and
    stores it there; ``on_event`` hears which.

    No file written may be one of the data's files or of ``inputs`` (``{what: path}``, e.g. the
    pipeline file), and the folder must be writable: both are UserErrors before anything is trained.
    """
    out = Path(out_dir)
    final_model = final_model or DEFAULT_FINAL_MODEL
    if final_model not in FINAL_MODELS:
        raise UserError(f"unknown final model {final_model!r}; choose one of: {', '.join(FINAL_MODELS)}")
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} exists and is not a folder; pass -o with a folder")
    spec = data.spec if isinstance(data, NoisyDataset) else data or pipeline.data
    refuse_inputs([out / name for name in OUTPUT_FILES], {**data_files(spec), **(inputs or {})})
    _check_writable(out)
    device = resolve_device(device)  # a device this machine lacks is one line before any training
    if data is None or isinstance(data, DataSpec):
        dataset = load_data(data or pipeline.data)
    else:
        dataset = data
    pipeline = pipeline.with_data(dataset.spec)
    check_fits(pipeline, dataset.input_shape)  # before an encoder is pretrained for it
    check_trusted(pipeline, dataset)  # a method that needs trusted rows of every class, data that lacks them
    folds = dataset.spec.folds
    encoder = None
    if pipeline.start.pretrained:
        request = EncoderRequest.of(pipeline, dataset)
        encoder = (EncoderCache(encoders).obtain(request, dataset, on_event, encoder_threads) if encoders is not None
                   else make_encoder(request, dataset, threads=encoder_threads))
    extra: dict[str, Any] = {}
    if folds > 1:
        saved = kept_fold_models(kept, pipeline, pipeline.best_epoch, folds, dataset.fingerprint)
        if saved is not None:
            if on_event:
                on_event(f"the search's {folds} fold models, kept in {kept}, are this recipe at epoch "
                         f"{pipeline.best_epoch} on this data: not trained again")
            fold_models, log_probs, ends = _loaded_fold_models(pipeline, dataset, saved, device, encoder)
            extra["fold_models_kept_by_the_search"] = str(kept)
        else:
            fold_models, log_probs, ends = _fold_models(pipeline, dataset, threads, device, on_epoch, encoder)
        scored = pool_dataset(dataset)  # the rows that get a score: the whole pool, in pool order
        y = torch.from_numpy(scored.y_train)
        scores = F.nll_loss(log_probs, y, reduction="none").numpy()  # -log p(given label), out of fold
        predicted = log_probs.argmax(dim=1).numpy()
        right = (log_probs.argmax(dim=1) == y).numpy()
        val_accuracy = float(right.mean())
        if dataset.trusted_objective:  # the trusted rows ranked the trials: they score the model too
            extra["noisy_val_accuracy"], val_accuracy = val_accuracy, float(right[scored.trusted_train].mean())
        if final_model == ENSEMBLE:
            model, shipped = fold_models, f"ensemble of {folds} fold models"
            # the fold models' mean, as a trial's curve has it (unknown for models the search kept)
            train_loss = sum(m.train_loss for m in ends) / folds if ends else None
            note = estimate_note(folds, ENSEMBLE)
        else:
            refit = Trainer(pipeline, scored, device=device, threads=threads, encoder=encoder)
            train_loss = _trained(refit, on_epoch).train_loss
            model, shipped = Ensemble.single(refit.networks), f"refit on all {len(y)} rows"
            note = estimate_note(folds, REFIT)
            extra["ensemble_test_accuracy"] = _test_accuracy(fold_models, dataset, device)
    else:
        scored = dataset
        trainer = Trainer(pipeline, dataset, device=device, threads=threads, encoder=encoder)
        last = _trained(trainer, on_epoch)
        scores, predicted, val_accuracy = trainer.suspicion_scores(), trainer.predictions(), last.val_accuracy
        if last.noisy_val_accuracy is not None:
            extra["noisy_val_accuracy"] = last.noisy_val_accuracy
        model, train_loss = Ensemble.single(trainer.networks), last.train_loss
        shipped = f"one model trained on the {len(dataset.y_train)} rows of the training split"
        note = estimate_note(1, validation_rows=len(dataset.y_val), trusted_rows=(
            int(dataset.trusted_val.sum()) if dataset.trusted_objective else None))  # type: ignore[union-attr]
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_model_folder(out, pipeline, scored, model)
        _write_label_issues(out / "label_issues.csv", scored, scores, predicted)
    except OSError as e:
        raise UserError(f"cannot write the model folder {out}: {e.strerror or e}") from None
    metrics: dict[str, Any] = {
        "model": shipped,
        "val_accuracy": val_accuracy,
        "validation": (f"{folds}-fold out-of-fold" if folds > 1 else "holdout")
        + (" on the trusted rows" if dataset.trusted_objective else ""),
        "val_accuracy_note": note,
        "test_accuracy": _test_accuracy(model, dataset, device),
        **extra,
        "train_loss": train_loss,
        "epochs": pipeline.stop_epoch,
        "noise_rate": dataset.noise_rate,
        "data_fingerprint": dataset.fingerprint,
        **detection_quality(scored, scores),  # with a holdout, its AUROC is the last epoch's label_issue_auroc
    }
    write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def _check_writable(out: Path) -> None:
    """A UserError now, before any training, when the output folder (or the folder it will be made
    in) cannot be written; nothing is left behind."""
    import tempfile

    existing = out.absolute()
    while not existing.exists():
        existing = existing.parent
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise UserError(f"cannot write the model folder {out}: {e.strerror or e} in {existing}") from None


def _trained(trainer: Trainer, on_epoch: Callable[[EpochMetrics, str], None] | None,
             stage: str = "model") -> EpochMetrics:
    """Train ``trainer`` to the end (``on_epoch`` hears each epoch as part of ``stage``); its last epoch."""
    last = None
    for last in trainer.epochs():
        if on_epoch is not None:
            on_epoch(last, stage)
    assert last is not None  # epochs >= 1
    return last


def _fold_models(pipeline: Pipeline, data: NoisyDataset, threads: int | None, device: str | torch.device | None,
                 on_epoch: Callable[[EpochMetrics, str], None] | None,
                 encoder: Encoder | None) -> tuple[Ensemble, torch.Tensor, list[EpochMetrics]]:
    """The K fold models of ``pipeline`` as one :class:`Ensemble` (member ``i`` held out fold
    ``i + 1``), per pool row (train rows, then validation rows) the log class probabilities of the
    fold model that did not train on it, and each fold model's last epoch, after
    ``pipeline.stop_epoch`` epochs."""
    folds, k = pool_folds(data), data.spec.folds
    out = torch.empty(len(folds), data.num_classes)
    members, ends = [], []
    for i in range(k):
        trainer = Trainer(pipeline, fold_split(data, i), device=device, threads=threads, encoder=encoder)
        ends.append(_trained(trainer, on_epoch, f"fold {i + 1}/{k}"))
        out[torch.from_numpy(folds == i)] = trainer.log_probs(trainer.x_val).cpu()
        for net in trainer.networks:
            net.zero_grad(set_to_none=True)  # kept to predict, never to train again
        members.append(trainer.networks)
    return Ensemble(members, held_out=range(1, k + 1)), out, ends


def _loaded_fold_models(pipeline: Pipeline, data: NoisyDataset, paths: list[Path], device: str | torch.device | None,
                        encoder: Encoder | None) -> tuple[Ensemble, torch.Tensor, list[EpochMetrics]]:
    """:func:`_fold_models` from the weights a search kept (``paths``, fold by fold): the same
    ensemble and out-of-fold predictions, nothing trained (no epochs to report)."""
    folds, k = pool_folds(data), data.spec.folds
    out = torch.empty(len(folds), data.num_classes)
    members = []
    for i, path in enumerate(paths):
        trainer = Trainer(pipeline, fold_split(data, i), device=device, threads=1, encoder=encoder)
        try:
            state = torch.load(path, map_location=trainer.device, weights_only=True)
            saved_module(trainer.networks).load_state_dict(state)
        except Exception as e:  # noqa: BLE001 - a damaged file: one line, and the user trains without it
            raise UserError(f"cannot load the kept fold model {path}: {shorten(e, 200)}; delete the folder "
                            f"{path.parent} to train them again") from None
        out[torch.from_numpy(folds == i)] = trainer.log_probs(trainer.x_val).cpu()
        members.append(trainer.networks)
    return Ensemble(members, held_out=range(1, k + 1)), out, []


def _test_accuracy(model: Ensemble, data: NoisyDataset, device: str | torch.device | None) -> float | None:
    """The accuracy of ``model`` on the test split, when its labels are known to be clean; else None."""
    if not data.clean_labels_known or len(data.y_test) == 0:
        return None
    device = resolve_device(device)
    x, y = torch.from_numpy(data.x_test).to(device), torch.from_numpy(data.y_test).to(device)
    return model.accuracy(x, y, data.num_classes, autocast_for(device))


def _write_label_issues(path: Path, data: NoisyDataset, scores: np.ndarray, predicted: np.ndarray) -> None:
    mask = data.noise_mask
    header = ["index", "given_label", "predicted_label", "suspicion"] + (["label_is_wrong"] if mask is not None else [])
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i in np.argsort(-scores, kind="stable"):
            row = [int(data.train_index[i]), data.class_names[data.y_train[i]], data.class_names[predicted[i]],
                   f"{scores[i]:.6g}"]
            writer.writerow(row + ([int(mask[i])] if mask is not None else []))
