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
from automl_noisy.errors import UserError
from automl_noisy.outputs import data_files, refuse_inputs, write_text
from automl_noisy.pipeline import Pipeline
from automl_noisy.train.model_folder import CARD, PIPELINE, WEIGHTS, write_model_folder
from automl_noisy.train.pretrain import Encoder, EncoderCache, EncoderRequest, make_encoder
from automl_noisy.train.trainer import EpochMetrics, Trainer, check_fits, detection_quality, resolve_device


#: the files :func:`train_pipeline` writes into its output folder
OUTPUT_FILES = (WEIGHTS, CARD, PIPELINE, "metrics.json", "label_issues.csv")


def train_pipeline(pipeline: Pipeline, out_dir: str | Path, data: DataSpec | NoisyDataset | None = None,
                   threads: int | None = 1, device: str | torch.device | None = None,
                   on_epoch: Callable[[EpochMetrics, str], None] | None = None,
                   encoders: str | Path | None = None, on_event: Callable[[str], None] | None = None,
                   inputs: dict[str, str | None] | None = None) -> dict[str, Any]:
    """Train ``pipeline`` (on its own data spec unless ``data`` is given) up to its ``stop_epoch``
    (the search's best epoch, when exported) and write to ``out_dir``:

    - ``model.pt``: the whole network's ``state_dict``, a pretrained body included (load with
      ``torch.load(..., weights_only=True)``)
    - ``model.json``: class names, the fitted preprocessing and more, so that the folder alone
      predicts (:mod:`automl_noisy.train.model_folder`; ``automl_noisy.load`` reads it)
    - ``label_issues.csv``: one row per training sample, most suspect first
    - ``metrics.json``: ``val_accuracy``, ``test_accuracy`` (when clean labels are known), and more
    - ``pipeline.yaml``: the pipeline that was trained

    With a holdout split (``data.folds`` 1) the model trains on the training split and the
    validation accuracy of the search trial is reproduced (same seed and thread count). With K folds
    the recipe trains once per fold, each fold model scoring the rows it did not see (so every row of
    the pool gets an out-of-fold suspicion score, and ``val_accuracy`` is the trial's out-of-fold
    accuracy), then once more on the whole pool: that final model is the one saved. ``on_epoch``
    hears each epoch with what it belongs to (``"fold 2/3"`` or ``"model"``). Returns the metrics.

    A pretrained start takes its encoder from the folder ``encoders`` (the search's, which export
    names) when it is there, else pretrains it again with the pipeline's seed (bit-identical on a
    CPU) and stores it there; ``on_event`` hears which.

    No file written may be one of the data's files or of ``inputs`` (``{what: path}``, e.g. the
    pipeline file), and the folder must be writable: both are UserErrors before anything is trained.
    """
    out = Path(out_dir)
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
    folds = dataset.spec.folds
    encoder = None
    if pipeline.start.pretrained:
        request = EncoderRequest.of(pipeline, dataset)
        encoder = (EncoderCache(encoders).obtain(request, dataset, on_event) if encoders is not None
                   else make_encoder(request, dataset))
    if folds > 1:
        log_probs = _out_of_fold_log_probs(pipeline, dataset, threads, device, on_epoch, encoder)
        scored = pool_dataset(dataset)  # the rows that get a score: the whole pool, in pool order
        y = torch.from_numpy(scored.y_train)
        scores = F.nll_loss(log_probs, y, reduction="none").numpy()  # -log p(given label), out of fold
        predicted = log_probs.argmax(dim=1).numpy()
        val_accuracy = float((log_probs.argmax(dim=1) == y).float().mean())
        trainer = Trainer(pipeline, scored, device=device, threads=threads, encoder=encoder)
    else:
        scored, trainer = dataset, Trainer(pipeline, dataset, device=device, threads=threads, encoder=encoder)
    last = None
    for last in trainer.epochs():
        if on_epoch is not None:
            on_epoch(last, "model")
    assert last is not None  # epochs >= 1
    if folds == 1:
        scores, predicted, val_accuracy = trainer.suspicion_scores(), trainer.predictions(), last.val_accuracy
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_model_folder(out, pipeline, scored, trainer.networks)
        _write_label_issues(out / "label_issues.csv", scored, scores, predicted)
    except OSError as e:
        raise UserError(f"cannot write the model folder {out}: {e.strerror or e}") from None
    metrics: dict[str, Any] = {
        "val_accuracy": val_accuracy,
        "validation": f"{folds}-fold out-of-fold" if folds > 1 else "holdout",
        "test_accuracy": last.test_accuracy,
        "train_loss": last.train_loss,
        "epochs": last.epoch,
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


def _out_of_fold_log_probs(pipeline: Pipeline, data: NoisyDataset, threads: int | None, device: str | torch.device | None,
                           on_epoch: Callable[[EpochMetrics, str], None] | None,
                           encoder: Encoder | None) -> torch.Tensor:
    """Per pool row (train rows, then validation rows), the log class probabilities of the fold
    model that did not train on it, after ``pipeline.stop_epoch`` epochs."""
    folds = pool_folds(data)
    out = torch.empty(len(folds), data.num_classes)
    for i in range(data.spec.folds):
        trainer = Trainer(pipeline, fold_split(data, i), device=device, threads=threads, encoder=encoder)
        for metrics in trainer.epochs():
            if on_epoch is not None:
                on_epoch(metrics, f"fold {i + 1}/{data.spec.folds}")
        out[torch.from_numpy(folds == i)] = trainer.log_probs(trainer.x_val).cpu()
    return out


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
