"""mixup (Zhang et al., ICLR 2018)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from automl_noisy.components.base import Mixing, hyperparameter
from automl_noisy.components.mixing import mixings


@mixings.register("mixup")
@dataclass
class Mixup(Mixing):
    """mixup (Zhang et al., ICLR 2018), which slows the memorization of wrong labels.

    ``lam ~ Beta(alpha, alpha)``; ``x' = lam x + (1 - lam) x[perm]``, same for the targets.
    """

    alpha: float = hyperparameter(1.0, 0.1, 32.0, log=True)  # the paper's label-noise runs: up to 32

    def mix_inputs(self, x: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        lam = float(torch.distributions.Beta(self.alpha, self.alpha).sample())
        perm = torch.randperm(x.shape[0], device=x.device)
        return lam * x + (1 - lam) * x[perm], lam * targets + (1 - lam) * targets[perm]
