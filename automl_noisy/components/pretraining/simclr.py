"""SimCLR (Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of Visual
Representations", ICML 2020)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from automl_noisy.components.base import Pretraining, hyperparameter
from automl_noisy.components.pretraining import pretrainings


@pretrainings.register("simclr")
@dataclass
class SimCLR(Pretraining):
    """Contrastive pretraining with the NT-Xent loss, as in Contrast to Divide (Zheltonozhskii et
    al., WACV 2022) under DivideMix.

    For a batch of ``B`` inputs the two views give ``2B`` projections ``z``, normalized to the unit
    sphere; with ``s_ij = z_i . z_j / tau`` and ``p(i)`` the other view of input ``i``,
    ``loss = mean_i -log( exp(s_i,p(i)) / sum_{k != i} exp(s_ik) )``: each view must pick out its
    partner among the other ``2B - 1``. The defaults follow the paper's small-batch setting
    (temperature 0.5) with AdamW in place of LARS (batches of hundreds, not thousands).
    """

    temperature: float = hyperparameter(0.5, 0.05, 2.0, log=True)

    def loss(self, z1: Tensor, z2: Tensor) -> Tensor:
        z = F.normalize(torch.cat([z1, z2]), dim=1)
        b = len(z1)
        sim = z @ z.T / self.temperature
        sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
        partner = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
        return F.cross_entropy(sim, partner)
