"""Small-loss selection (Han et al., NeurIPS 2018, "Co-teaching")."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from automl_noisy.components.base import EpochEnd, Selector, TrainInfo, hyperparameter
from automl_noisy.components.selection import selectors


@selectors.register("small_loss")
@dataclass
class SmallLoss(Selector):
    """Keep the ``1 - R(t)`` fraction of each batch with the smallest loss (Han et al.,
    NeurIPS 2018): deep networks fit clean labels before noisy ones, so small-loss samples are
    likely clean. ``R(t) = forget_rate * min(t / ramp_epochs, 1)`` ramps linearly over the first
    epochs (``T_k`` in the paper). Suspicion score: the sample's loss at the last epoch's end.
    """

    forget_rate: float = hyperparameter(0.2, 0.0, 0.8)
    ramp_epochs: int = hyperparameter(5, 1, 30)
    _epoch: int = field(default=1, init=False, repr=False, compare=False)
    _scores: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def setup(self, info: TrainInfo) -> None:
        self._epoch, self._scores = 1, None

    def on_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch

    def rate(self, epoch: int) -> float:
        """R(t): the fraction of each batch forgotten in epoch ``epoch`` (1-based)."""
        return self.forget_rate * min((epoch - 1) / self.ramp_epochs, 1.0)

    def weights(self, per_sample: Tensor, logits: Tensor, labels: Tensor, idx: Tensor,
                candidates: Tensor | None = None) -> Tensor:
        pool = torch.ones_like(per_sample, dtype=torch.bool) if candidates is None else candidates
        n_pool = int(pool.sum())
        keep = math.ceil((1.0 - self.rate(self._epoch)) * n_pool)
        w = torch.zeros_like(per_sample)
        if keep > 0:
            masked = per_sample.masked_fill(~pool, float("inf"))
            w[torch.topk(masked, keep, largest=False).indices] = 1.0
        return w

    def on_epoch_end(self, end: EpochEnd) -> None:
        logits = end.logits()
        self._scores = F.cross_entropy(logits, end.labels, reduction="none").cpu().numpy()

    def divided(self) -> bool:
        return self.rate(self._epoch) > 0

    def scores(self) -> np.ndarray | None:
        return self._scores
