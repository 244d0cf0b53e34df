"""Family ``loss`` (slot *per-sample loss*): robust losses on soft targets ``t`` (B, K).

Every loss returns one value per sample; ``p = softmax(logits)``. With one-hot targets each
reduces to its usual form in the label ``y``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from automl_noisy.components.base import PerSampleLoss, hyperparameter
from automl_noisy.registry import Registry

losses: Registry[type[PerSampleLoss]] = Registry("loss")


@losses.register("ce")
@dataclass
class CrossEntropy(PerSampleLoss):
    """Cross entropy, the baseline: ``-sum_k t_k log p_k`` (``-log p_y`` for a hard label)."""

    def __call__(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits, targets, reduction="none")

    def from_labels(self, logits: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(logits, labels, reduction="none")


@losses.register("mae")
@dataclass
class MeanAbsoluteError(PerSampleLoss):
    """Mean absolute error, symmetric hence noise-tolerant (Ghosh, Kumar & Sastry, AAAI 2017).

    ``sum_k |p_k - t_k|``, which is ``2 (1 - p_y)`` for a hard label. Its gradient with respect to
    the logits carries a factor ``p_y (1 - p_y)``, so it learns slowly from samples the network is
    unsure of and underfits short budgets (Zhang & Sabuncu, NeurIPS 2018, who propose ``gce`` for
    this reason; on digits with 30 epochs it reaches 0.56 at 40 % symmetric noise where CE reaches
    0.92): a property of the loss, kept as published.

    The same factor makes it unstable at high noise: a sample counts in proportion to ``p_y``, so
    samples of the classes the network already leans to pull hardest and the rest fall silent. At
    80 % symmetric noise (a label is right 20 % of the time, each wrong class 8.9 %) the mlp of the
    methods benchmark ends its first epoch predicting one or two classes and stays there, at every
    learning rate tried (0.01 to 2.0, with and without momentum); the cnn does not collapse. The
    heavy passive term of ``nce_rce`` (``beta = 10``, RCE being a scaled MAE) collapses the same way.
    What tips it is a lean shared by every input: digits' pixels lie in [0, 1], not centred, so the
    untrained mlp ranks the same two or three classes first for most inputs, and MAE's weighting
    turns that into the answer. Not the initialization's lean alone: with the head initialized at
    zero, every input starting from the uniform prediction, it collapses too (seeds 0-2: 0.10
    median, 0.10-0.19), the weighting amplifying whatever lean the first updates make. With inputs
    centred per pixel (seeds 0-2) MAE reaches 0.36 at 80 % and 0.95 at 40 % symmetric noise, but
    plain CE falls (0.56 to 0.29, 0.92 to 0.78: it memorizes faster), so the data are left as they
    are; Adam (lr 1e-3) also avoids the collapse (0.37).
    Wang et al. ("IMAE for Noise-Robust Learning", arXiv:1903.12141) describe the same weighting
    by ``p_y`` as the cause of MAE's underfitting; their remedy changes the loss, so it is not MAE.
    """

    def __call__(self, logits: Tensor, targets: Tensor) -> Tensor:
        return (logits.softmax(dim=1) - targets).abs().sum(dim=1)


@losses.register("gce")
@dataclass
class GeneralizedCrossEntropy(PerSampleLoss):
    """Generalized cross entropy, L_q (Zhang & Sabuncu, NeurIPS 2018).

    ``sum_k t_k (1 - p_k^q) / q``: tends to CE as q -> 0 and equals MAE / 2 at q = 1.
    """

    q: float = hyperparameter(0.7, 0.05, 1.0)

    def __call__(self, logits: Tensor, targets: Tensor) -> Tensor:
        p = logits.softmax(dim=1).clamp_min(1e-12)
        return (targets * (1.0 - p.pow(self.q))).sum(dim=1) / self.q


@losses.register("sce")
@dataclass
class SymmetricCrossEntropy(PerSampleLoss):
    """Symmetric cross entropy (Wang et al., ICCV 2019): ``alpha CE + beta RCE``.

    Reverse CE swaps the roles of prediction and target, ``RCE = -sum_k p_k log t_k`` with
    ``log 0`` set to the paper's constant ``A = -4`` (every ``log t_k`` is bounded below by ``A``), so
    for a hard label ``RCE = -A (1 - p_y)``, a scaled MAE.
    """

    alpha: float = hyperparameter(0.1, 0.01, 1.0, log=True)
    beta: float = hyperparameter(1.0, 0.1, 10.0, log=True)

    def __call__(self, logits: Tensor, targets: Tensor) -> Tensor:
        ce = F.cross_entropy(logits, targets, reduction="none")
        return self.alpha * ce + self.beta * reverse_cross_entropy(logits, targets)


@losses.register("nce_rce")
@dataclass
class NormalizedCrossEntropyReverse(PerSampleLoss):
    """Active-passive loss NCE+RCE (Ma et al., ICML 2020, "Normalized loss functions for deep
    learning with noisy labels"): ``alpha NCE + beta RCE``.

    ``NCE = sum_k t_k (-log p_k) / sum_k (-log p_k)`` lies in [0, 1] and sums to 1 over the K
    possible labels (hence noise-robust); RCE is the reverse CE of ``sce`` (``log 0 = A = -4``).

    Default ``alpha = 10, beta = 1``, not the paper's CIFAR-10 setting ``1, 1``: the paper raises
    the active term's weight for harder tasks (``alpha = 10`` on CIFAR-100), and a short budget is one
    (digits gets ~600 SGD steps, the paper's CIFAR-10 runs ~47,000). On the methods benchmark's mlp,
    ``1, 1`` stayed at 0.22 at 80 % symmetric noise (one seed at chance) and ``10, 1`` reached 0.41;
    a heavy passive term (``beta = 10``) collapses to one class at every noise, as MAE does.
    """

    alpha: float = hyperparameter(10.0, 0.1, 100.0, log=True)
    beta: float = hyperparameter(1.0, 0.1, 10.0, log=True)

    def __call__(self, logits: Tensor, targets: Tensor) -> Tensor:
        nll = -logits.log_softmax(dim=1)
        nce = (targets * nll).sum(dim=1) / nll.sum(dim=1)
        return self.alpha * nce + self.beta * reverse_cross_entropy(logits, targets)


#: ``log 0`` in the reverse cross entropy (Wang et al., ICCV 2019, section 3.3: A = -4)
LOG_ZERO = -4.0


def reverse_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """``RCE = -sum_k p_k max(log t_k, A)`` per sample, ``p = softmax(logits)``, ``A = LOG_ZERO``."""
    log_t = targets.clamp_min(math.exp(LOG_ZERO)).log()
    return -(logits.softmax(dim=1) * log_t).sum(dim=1)


def one_hot(labels: Tensor, num_classes: int) -> Tensor:
    """Hard labels (B,) -> float one-hot targets (B, K)."""
    return F.one_hot(labels, num_classes).to(torch.float32)
