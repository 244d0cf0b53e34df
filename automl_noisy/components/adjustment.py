"""Family ``adjustment`` (slot *targets*): soften or correct targets after the forward pass."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from automl_noisy.components.base import EpochEnd, TargetAdjustment, TrainInfo, hyperparameter
from automl_noisy.registry import Registry

adjustments: Registry[type[TargetAdjustment]] = Registry("adjustment")


@adjustments.register("label_smoothing")
@dataclass
class LabelSmoothing(TargetAdjustment):
    """Label smoothing (Szegedy et al., CVPR 2016), which also resists label noise
    (Lukasik et al., ICML 2020): ``t' = (1 - eps) t + eps / K``.
    """

    epsilon: float = hyperparameter(0.1, 0.0, 0.5)

    def __call__(self, logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        return logits, targets * (1.0 - self.epsilon) + self.epsilon / targets.shape[1]


@adjustments.register("bootstrap_soft")
@dataclass
class SoftBootstrapping(TargetAdjustment):
    """Soft bootstrapping (Reed et al., ICLR 2015 workshop, "Training deep neural networks on
    noisy labels with bootstrapping"): ``t' = beta t + (1 - beta) p``, ``p = softmax(logits)``
    over all the logits' columns (the distribution the loss compares with).

    ``p`` keeps its gradient, as in the paper's objective: with CE the loss is then
    ``beta CE + (1 - beta) H(p)``, i.e. minimum-entropy regularization.
    """

    beta: float = hyperparameter(0.95, 0.5, 1.0)

    def __call__(self, logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        p = logits.float().softmax(dim=1)
        return logits, self.beta * targets + (1.0 - self.beta) * p


@adjustments.register("bootstrap_hard")
@dataclass
class HardBootstrapping(TargetAdjustment):
    """Hard bootstrapping (Reed et al., ICLR 2015 workshop): ``t' = beta t + (1 - beta) z`` with
    ``z = one_hot(argmax_k p_k)``, the network's own predicted class (no gradient through z).
    """

    beta: float = hyperparameter(0.8, 0.5, 1.0)

    def __call__(self, logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        z = F.one_hot(logits.detach().argmax(dim=1), logits.shape[1]).to(targets.dtype)
        return logits, self.beta * targets + (1.0 - self.beta) * z


@adjustments.register("forward")
@dataclass
class ForwardCorrection(TargetAdjustment):
    """Forward loss correction (Patrini et al., CVPR 2017): the loss compares the noisy targets
    with ``p' = T^T p``, the prediction pushed through the noise ``T[i, j] = P(noisy j | true i)``;
    the returned logits are ``log(p @ T)``, valid logits for any softmax-based loss.

    In two stages: a network trains on the noisy labels without correction for ``warmup_epochs``
    epochs (the paper trains it to convergence; here the stage is a share of one budget, so the
    search tunes its length); ``T`` is then estimated once from its eval-mode predictions on the
    training samples: row ``i`` is ``p(. | x_i)`` at the anchor ``x_i``, the sample at the
    ``percentile``-th percentile of ``p(i | x)`` (the paper's robust anchor; 100 is the argmax).

    Where it departs from the paper, by default: the same network goes on with the correction for
    the remaining epochs, where the paper trains a new one (``retrain``, which the search may
    choose; ``restart_after``). Measured on digits (mlp, 30 epochs, 10 warm-up epochs, seeds 0-1):
    a new network trained through an estimated ``T`` collapses at 80 % symmetric noise (0.10 clean
    accuracy: ``T`` estimated from a network trained on such labels is close to uniform, so the
    corrected loss hardly depends on the prediction; even the true ``T``, ``a I + b 11^T`` with
    ``a = 0.11``, ``b = 0.089``, makes the loss ``-log(a p_y + b)``, whose gradient with respect to
    the logits is MAE's times ``a / (2 (a p_y + b))``, between 0.28 and 0.63: MAE's dynamics, which
    collapse the same way on this mlp, see ``mae``; measured with the true ``T`` put in place of the
    estimate, seeds 0-2: 0.10 median, 0.10-0.12), while the same network keeps what it learned
    (0.43-0.53); at 40 % symmetric and pair noise the two are within a few points. Extra outputs
    (columns beyond K) keep their probabilities; only the K classes are corrected.
    """

    warmup_epochs: int = hyperparameter(10, 1, 30)
    percentile: float = hyperparameter(97.0, 90.0, 100.0)
    retrain: bool = hyperparameter(False)
    _k: int | None = field(default=None, init=False, repr=False, compare=False)
    _t: Tensor | None = field(default=None, init=False, repr=False, compare=False)
    _estimated: bool = field(default=False, init=False, repr=False, compare=False)

    def setup(self, info: TrainInfo) -> None:
        self._k = info.num_classes
        self._t = torch.eye(info.num_classes, device=info.device)
        self._estimated = False

    @property
    def transition(self) -> Tensor | None:
        """The current ``T`` (K, K), rows summing to 1; the identity until estimated."""
        return self._t

    def estimate(self, probs: Tensor) -> Tensor:
        """``T`` from class probabilities ``(N, K)`` of the training samples (anchor rows)."""
        n = probs.shape[0]
        rank = round(self.percentile / 100.0 * (n - 1))
        anchors = probs.argsort(dim=0)[rank]  # per class i, the sample at that rank of p(i | x)
        t = probs[anchors]
        return t / t.sum(dim=1, keepdim=True)

    def restart_after(self) -> int | None:
        return self.warmup_epochs if self.retrain else None

    def on_epoch_end(self, end: EpochEnd) -> None:
        if end.epoch == self.warmup_epochs and self._t is not None:
            probs = end.logits()[:, : self._k].float().softmax(dim=1)
            self._t = self.estimate(probs).to(self._t.device)
            self._estimated = True

    def __call__(self, logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        if not self._estimated or self._t is None:
            return logits, targets
        k = self._t.shape[0]
        with torch.autocast(logits.device.type, enabled=False):
            log_p = logits.float().log_softmax(dim=1)
            corrected = (log_p[:, :k].exp() @ self._t).clamp_min(1e-12).log()
            return torch.cat([corrected, log_p[:, k:]], dim=1), targets
