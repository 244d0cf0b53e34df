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
from automl_noisy.data.noise_profile import confident_joint


MAX_FORGET_RATE = 0.8


def estimate_noise_rate(probs: np.ndarray, labels: np.ndarray) -> float:
    """The share of off-label samples in the confident joint of Confident Learning (Northcutt, Jiang
    & Chuang, JAIR 2021): class ``j``'s threshold ``t_j`` is the mean ``p_j`` over the samples labelled
    ``j``; a sample counts for the class ``argmax_{j: p_j >= t_j} p_j`` (not at all if no class reaches
    its threshold), and the estimate is the share of counted samples whose class differs from
    their label.

    >>> estimate_noise_rate(np.array([[.9, .1], [.9, .1], [.2, .8], [.9, .1]]), np.array([0, 0, 1, 1]))
    0.25
    """
    joint = confident_joint(probs, labels)
    return float(1 - np.trace(joint) / joint.sum()) if joint.sum() else 0.0


def within_class_quantile(losses: Tensor, labels: Tensor, pool: Tensor) -> Tensor:
    """Each pooled sample's loss rank among the pooled samples of its label, as a share of that
    label's count, ``(rank + 0.5) / n_y`` (``inf`` outside the pool): the smallest ``m`` of these take
    about the same share of every label.

    >>> q = within_class_quantile(torch.tensor([3., 1., 2., 5.]), torch.tensor([0, 0, 0, 1]),
    ...                           torch.tensor([True, True, True, True]))
    >>> [round(v, 3) for v in q.tolist()]
    [0.833, 0.167, 0.5, 0.5]
    """
    out = torch.full_like(losses, float("inf"))
    for label in labels[pool].unique():
        members = (pool & (labels == label)).nonzero().squeeze(1)
        ranks = losses[members].argsort().argsort().to(losses.dtype)
        out[members] = (ranks + 0.5) / len(members)
    return out


@selectors.register("small_loss")
@dataclass
class SmallLoss(Selector):
    """Keep the ``1 - R(t)`` fraction of each batch with the smallest loss (Han et al.,
    NeurIPS 2018): deep networks fit clean labels before noisy ones, so small-loss samples are
    likely clean. ``R(t) = r * min(t / ramp_epochs, 1)`` ramps linearly over the first epochs
    (``T_k`` in the paper). The paper sets ``r`` to the noise rate, which it knows; here, with
    ``estimate_rate``, ``r`` is estimated from the data at the end of each epoch of the ramp (then
    kept): the share of confident off-label samples of a confident joint (Northcutt et al.,
    "Confident Learning", JAIR 2021), see :func:`estimate_noise_rate`, capped at 0.8. Without it
    ``r = forget_rate``. Suspicion score: the sample's loss at the last epoch's end.

    Where it departs from the paper, by default: ``per_class`` ranks each sample's loss among the
    samples of its own label in the batch and keeps the same ``1 - R(t)`` share of every label (as
    many samples in all as the paper keeps), where the paper keeps the smallest losses of the
    whole batch. At high noise the paper's rule feeds on itself: the samples whose label is the
    class the network already leans to have the smallest losses, so the kept set fills with a few
    labels and the network ends predicting those. On digits at 80 % symmetric noise (mlp, 30
    epochs, median of seeds 0-2; BENCHMARKS.md, "methods") the whole-batch rule ends at 0.275 clean
    accuracy, per label at 0.619; co-teaching 0.281 against 0.617, co-teaching+ 0.200 against 0.339,
    MixMatch 0.367 against 0.800; the cnn's co-teaching 0.311 against 0.608. At 40 % noise the cnn
    alone does better with the whole-batch rule (pair 0.833 against 0.756, symmetric 0.950 against
    0.914: easy classes give up clean samples for the noisy ones of hard classes), as does its
    co-teaching (pair 0.903 against 0.822); ``per_class = False`` is the paper's rule, and the
    search tries both. Keeping an equal share of every class is the idea of UNICON's uniform
    selection (Karim et al., CVPR 2022).
    """

    forget_rate: float = hyperparameter(0.2, 0.0, 0.8)
    ramp_epochs: int = hyperparameter(5, 1, 30)
    estimate_rate: bool = hyperparameter(True)
    per_class: bool = hyperparameter(True)
    _epoch: int = field(default=1, init=False, repr=False, compare=False)
    _scores: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _estimate: float = field(default=0.0, init=False, repr=False, compare=False)
    _num_classes: int = field(default=0, init=False, repr=False, compare=False)

    def setup(self, info: TrainInfo) -> None:
        self._epoch, self._scores, self._estimate, self._num_classes = 1, None, 0.0, info.num_classes

    def on_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch

    def rate(self, epoch: int) -> float:
        """R(t): the fraction of each batch forgotten in epoch ``epoch`` (1-based)."""
        target = self._estimate if self.estimate_rate else self.forget_rate
        return target * min((epoch - 1) / self.ramp_epochs, 1.0)

    def weights(self, per_sample: Tensor, logits: Tensor, labels: Tensor, idx: Tensor,
                candidates: Tensor | None = None) -> Tensor:
        pool = torch.ones_like(per_sample, dtype=torch.bool) if candidates is None else candidates
        n_pool = int(pool.sum())
        keep = math.ceil((1.0 - self.rate(self._epoch)) * n_pool)
        w = torch.zeros_like(per_sample)
        if keep > 0:
            order = per_sample.masked_fill(~pool, float("inf"))
            if self.per_class:
                order = within_class_quantile(order, labels, pool)
            w[torch.topk(order, keep, largest=False).indices] = 1.0
        return w

    def on_epoch_end(self, end: EpochEnd) -> None:
        logits = end.logits()
        self._scores = F.cross_entropy(logits, end.labels, reduction="none").cpu().numpy()
        if self.estimate_rate and end.epoch <= self.ramp_epochs:
            probs = logits[:, :self._num_classes].float().softmax(dim=1).cpu().numpy()
            labels = end.labels.cpu().numpy()
            known = labels < self._num_classes  # AUM's fake-class samples have no place in the count
            self._estimate = min(estimate_noise_rate(probs[known], labels[known]), MAX_FORGET_RATE)

    def divided(self) -> bool:
        return self.rate(self._epoch) > 0

    def scores(self) -> np.ndarray | None:
        return self._scores
