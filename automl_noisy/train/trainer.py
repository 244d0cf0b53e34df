"""Train one pipeline on one dataset: the loop that yields an EpochMetrics per epoch."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from automl_noisy.components import build
from automl_noisy.components.base import Classifier, TrainInfo
from automl_noisy.data import NoisyDataset
from automl_noisy.errors import UserError
from automl_noisy.pipeline import Pipeline
from automl_noisy.train.step import Methods, step_loss

EVAL_BATCH = 4096


@dataclass(frozen=True)
class EpochMetrics:
    """What one epoch of a trial reports to the search driver."""

    epoch: int  # 1-based
    train_loss: float  # mean training loss over the epoch's batches
    val_accuracy: float  # on the held-out noisy validation split: the objective
    test_accuracy: float | None  # on the test split, when its labels are known to be clean
    seconds: float  # wall time of the epoch, evaluation included

    def to_dict(self) -> dict:
        return asdict(self)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the trial fails with this as its reason."""


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Trainer:
    """Holds the network, the methods and the data tensors of one training run.

    >>> from automl_noisy.data import DataSpec, load_data
    >>> from automl_noisy.pipeline import ComponentSpec, Pipeline
    >>> p = Pipeline(model=ComponentSpec("mlp", {"width": 32}), epochs=2)
    >>> metrics = list(Trainer(p, load_data(p.data)).epochs())
    >>> [m.epoch for m in metrics]
    [1, 2]
    """

    def __init__(self, pipeline: Pipeline, data: NoisyDataset, device: str | torch.device | None = None,
                 threads: int | None = 1) -> None:
        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(pipeline.seed)
        self.pipeline, self.data = pipeline, data
        self.device = torch.device(device) if device is not None else default_device()
        self.methods = Methods.from_pipeline(pipeline)
        factory = build("model", pipeline.model)
        if not factory.accepts(data.input_shape):
            raise UserError(f"model {factory.name!r} does not fit data of shape {data.input_shape}; "
                            "choose another model in the pipeline")
        self.model: Classifier = factory.build(data.input_shape, data.num_classes).to(self.device)  # type: ignore[attr-defined]
        info = TrainInfo(len(data.y_train), data.num_classes, data.input_shape, pipeline.epochs, self.device)
        for component in self.methods.components():
            component.setup(info)
        self.optimizer = _optimizer(pipeline, self.model)
        self.scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, pipeline.epochs)
                          if pipeline.optimizer.schedule == "cosine" else None)
        self.x_train, self.y_train = self._tensors(data.x_train, data.y_train)
        self.x_val, self.y_val = self._tensors(data.x_val, data.y_val)
        clean_test = data.clean_labels_known and len(data.y_test) > 0
        self.x_test, self.y_test = self._tensors(data.x_test, data.y_test) if clean_test else (None, None)
        self._generator = torch.Generator().manual_seed(pipeline.seed)
        self._autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda"
                          else nullcontext())

    def _tensors(self, x: np.ndarray, y: np.ndarray) -> tuple[Tensor, Tensor]:
        return torch.from_numpy(x).to(self.device), torch.from_numpy(y).to(self.device)

    def epochs(self) -> Iterator[EpochMetrics]:
        """Train epoch by epoch, yielding metrics after each; raises TrainingDiverged on NaN."""
        n, bs, k = len(self.y_train), self.pipeline.batch_size, self.data.num_classes
        for epoch in range(1, self.pipeline.epochs + 1):
            start = time.perf_counter()
            self.model.train()
            order = torch.randperm(n, generator=self._generator).to(self.device)
            total, batches = 0.0, 0
            for begin in range(0, n, bs):
                idx = order[begin:begin + bs]
                if len(idx) < 2 and batches:  # a batch of one breaks batch norm; fold it away
                    continue
                with self._autocast:
                    loss = step_loss(self.model, self.methods, self.x_train[idx], self.y_train[idx], k)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total += loss.detach()
                batches += 1
            mean_loss = float(total) / batches
            if not math.isfinite(mean_loss):
                raise TrainingDiverged(f"non-finite training loss in epoch {epoch}")
            if self.scheduler is not None:
                self.scheduler.step()
            for component in self.methods.components():
                component.on_epoch_end(epoch)
            test = self.accuracy(self.x_test, self.y_test) if self.x_test is not None else None
            yield EpochMetrics(epoch, mean_loss, self.accuracy(self.x_val, self.y_val), test,
                               time.perf_counter() - start)

    @torch.inference_mode()
    def logits(self, x: Tensor) -> Tensor:
        """Logits of the network in evaluation mode, computed in chunks."""
        self.model.eval()
        with self._autocast:
            return torch.cat([self.model(x[i:i + EVAL_BATCH]).float() for i in range(0, len(x), EVAL_BATCH)])

    def accuracy(self, x: Tensor, y: Tensor) -> float:
        if len(y) == 0:
            return float("nan")
        return float((self.logits(x).argmax(dim=1) == y).float().mean())

    def suspicion_scores(self) -> np.ndarray:
        """Per training sample, how suspect its given label is: the loss of that label (higher is
        more suspect)."""
        logits = self.logits(self.x_train)
        return F.cross_entropy(logits, self.y_train, reduction="none").cpu().numpy()

    def predictions(self) -> np.ndarray:
        return self.logits(self.x_train).argmax(dim=1).cpu().numpy()


def _optimizer(pipeline: Pipeline, model: nn.Module) -> torch.optim.Optimizer:
    spec = pipeline.optimizer
    if spec.name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum)
    cls = torch.optim.Adam if spec.name == "adam" else torch.optim.AdamW
    return cls(model.parameters(), lr=spec.lr)


def run_trial(pipeline: Pipeline, data: NoisyDataset, device: str | torch.device | None = None,
              threads: int | None = 1) -> Iterator[EpochMetrics]:
    """Train ``pipeline`` on ``data``, yielding one :class:`EpochMetrics` per epoch."""
    yield from Trainer(pipeline, data, device, threads).epochs()
