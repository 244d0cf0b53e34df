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

from automl_noisy.data import DataSpec, NoisyDataset, load_data
from automl_noisy.errors import UserError
from automl_noisy.pipeline import Pipeline
from automl_noisy.train.trainer import EpochMetrics, Trainer, detection_quality


def train_pipeline(pipeline: Pipeline, out_dir: str | Path, data: DataSpec | NoisyDataset | None = None,
                   threads: int | None = 1, device: str | None = None,
                   on_epoch: Callable[[EpochMetrics], None] | None = None) -> dict[str, Any]:
    """Train ``pipeline`` (on its own data spec unless ``data`` is given) and write to ``out_dir``:

    - ``model.pt``: the network's ``state_dict`` (load with ``torch.load(..., weights_only=True)``)
    - ``label_issues.csv``: one row per training sample, most suspect first
    - ``metrics.json``: ``val_accuracy``, ``test_accuracy`` (when clean labels are known), and more
    - ``pipeline.yaml``: the pipeline that was trained

    With the pipeline's seed and the same thread count, the validation accuracy of the search
    trial is reproduced. Returns the metrics.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} exists and is not a folder; pass -o with a folder")
    if data is None or isinstance(data, DataSpec):
        dataset = load_data(data or pipeline.data)
    else:
        dataset = data
    pipeline = pipeline.with_data(dataset.spec)
    trainer = Trainer(pipeline, dataset, device=device, threads=threads)
    last = None
    for last in trainer.epochs():
        if on_epoch is not None:
            on_epoch(last)
    assert last is not None  # epochs >= 1
    out.mkdir(parents=True, exist_ok=True)
    torch.save(trainer.model.state_dict(), out / "model.pt")
    scores = trainer.suspicion_scores()
    _write_label_issues(out / "label_issues.csv", dataset, scores, trainer.predictions())
    metrics: dict[str, Any] = {
        "val_accuracy": last.val_accuracy,
        "test_accuracy": last.test_accuracy,
        "train_loss": last.train_loss,
        "epochs": last.epoch,
        "noise_rate": dataset.noise_rate,
        "data_fingerprint": dataset.fingerprint,
        **detection_quality(dataset, scores),  # its AUROC is the last epoch's label_issue_auroc
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    (out / "pipeline.yaml").write_text(pipeline.to_yaml(), encoding="utf-8")
    return metrics


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
