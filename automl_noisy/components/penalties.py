"""Family ``penalty`` (slot *penalties*): scalar terms added to the loss. Several may combine."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from automl_noisy.components.base import Penalty, TrainInfo, hyperparameter
from automl_noisy.registry import Registry

penalties: Registry[type[Penalty]] = Registry("penalty")


def _weights(model: nn.Module) -> list[Tensor]:
    """The weight matrices and kernels; biases and normalization scales are not penalized."""
    return [p for p in model.parameters() if p.ndim > 1]


@penalties.register("l1")
@dataclass
class L1(Penalty):
    """L1 penalty on the weights, ``coef * sum |w|``: sparse weights fit fewer noisy labels."""

    coef: float = hyperparameter(1e-5, 1e-7, 1e-3, log=True)

    def __call__(self, model: nn.Module, logits: Tensor) -> Tensor:
        return self.coef * sum(w.abs().sum() for w in _weights(model))


@penalties.register("weight_decay")
@dataclass
class WeightDecay(Penalty):
    """L2 weight decay (Krogh & Hertz, NeurIPS 1991), ``coef / 2 * sum w^2``.

    Its gradient ``coef * w`` is what SGD's ``weight_decay`` adds, here as an explicit term.
    """

    coef: float = hyperparameter(5e-4, 1e-6, 1e-2, log=True)

    def __call__(self, model: nn.Module, logits: Tensor) -> Tensor:
        return 0.5 * self.coef * sum(w.pow(2).sum() for w in _weights(model))


@penalties.register("confidence_penalty")
@dataclass
class ConfidencePenalty(Penalty):
    """Confidence penalty (Pereyra et al., ICLR 2017 workshop, "Regularizing neural networks by
    penalizing confident output distributions"), DivideMix's warm-up term for asymmetric noise.

    The paper's term is ``-beta H(p)``; here it is ``beta (log K - H(p))``, averaged over the batch:
    shifted by the constant ``log K`` (same gradient) so that it is >= 0, zero at the uniform
    distribution. Uses the first K logits only. With ``warmup_only`` it is 0 after ``warmup_epochs``.
    """

    beta: float = hyperparameter(0.1, 0.01, 1.0, log=True)
    warmup_only: bool = hyperparameter(False)
    warmup_epochs: int = hyperparameter(3, 1, 30)
    _k: int | None = field(default=None, init=False, repr=False, compare=False)
    _epoch: int = field(default=1, init=False, repr=False, compare=False)

    def setup(self, info: TrainInfo) -> None:
        self._k, self._epoch = info.num_classes, 1

    def on_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch

    def __call__(self, model: nn.Module, logits: Tensor) -> Tensor:
        if self.warmup_only and self._epoch > self.warmup_epochs:
            return logits.new_zeros((), dtype=torch.float32)
        z = logits[:, : self._k or logits.shape[1]].float()
        neg_entropy = (z.softmax(dim=1) * z.log_softmax(dim=1)).sum(dim=1)
        return self.beta * (neg_entropy + math.log(z.shape[1])).mean().clamp_min(0.0)
