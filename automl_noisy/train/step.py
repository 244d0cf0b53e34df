"""One training step, built slot by slot as DESIGN.md section 2 lays out."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from automl_noisy.components import build
from automl_noisy.components.base import Component, Mixing, Penalty, PerSampleLoss, TargetAdjustment
from automl_noisy.components.losses import one_hot
from automl_noisy.pipeline import Pipeline


@dataclass
class Methods:
    """The built components of a pipeline, one attribute per slot they fill."""

    loss: PerSampleLoss
    adjustment: TargetAdjustment | None = None
    mixing: Mixing | None = None
    penalties: tuple[Penalty, ...] = ()

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline) -> "Methods":
        return cls(
            loss=build("loss", pipeline.loss),  # type: ignore[arg-type]
            adjustment=build("adjustment", pipeline.adjustment) if pipeline.adjustment else None,  # type: ignore[arg-type]
            mixing=build("mixing", pipeline.mixing) if pipeline.mixing else None,  # type: ignore[arg-type]
            penalties=tuple(build("penalty", p) for p in pipeline.penalty),  # type: ignore[misc]
        )

    def components(self) -> list[Component]:
        found = [self.mixing, self.adjustment, self.loss, *self.penalties]
        return [c for c in found if c is not None]


def step_loss(model: nn.Module, methods: Methods, x: Tensor, y: Tensor, num_classes: int) -> Tensor:
    """The scalar loss of one batch: targets -> mixing -> forward -> adjustment -> loss -> penalties.

    ``loss = mean(per_sample) + sum(penalties)``; later slots (sample weights, an unlabeled term)
    enter here as ``mean(w * per_sample) + lambda_u * unlabeled``.
    """
    targets = one_hot(y, num_classes)
    if methods.mixing is not None:
        x, targets = methods.mixing(x, targets)
    logits = model(x)
    if methods.adjustment is not None:
        logits, targets = methods.adjustment(logits, targets)
    loss = methods.loss(logits.float(), targets).mean()
    for penalty in methods.penalties:
        loss = loss + penalty(model, logits)
    return loss
