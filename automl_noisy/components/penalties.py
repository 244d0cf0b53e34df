"""Family ``penalty`` (slot *penalties*): scalar terms added to the loss. Several may combine."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from automl_noisy.components.base import Penalty, hyperparameter
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
