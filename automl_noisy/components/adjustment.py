"""Family ``adjustment`` (slot *targets*): soften or correct targets after the forward pass."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from automl_noisy.components.base import TargetAdjustment, hyperparameter
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
