"""Barlow Twins (Zbontar, Jing, Misra, LeCun & Deny, "Barlow Twins: Self-Supervised Learning via
Redundancy Reduction", ICML 2021)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from automl_noisy.components.base import Pretraining, hyperparameter
from automl_noisy.components.pretraining import pretrainings


@pretrainings.register("barlow_twins")
@dataclass
class BarlowTwins(Pretraining):
    """Non-contrastive pretraining: no negative pairs, the projections' cross-correlation is pushed
    to the identity.

    With each dimension of ``z1`` and ``z2`` standardized over the batch, ``C = z1^T z2 / B`` (``D x D``)
    and ``loss = sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2``: the diagonal makes the two views
    agree, the off-diagonal term decorrelates the dimensions (which prevents the collapse to a
    constant). The paper's projector is three layers with batch norm; its ``lambda`` = 0.0051 is for
    D = 8192 projections, about 42/D; the default keeps that ratio for the default D = 512.
    """

    projection_dim: int = hyperparameter(512, 16, 8192, log=True)
    redundancy_weight: float = hyperparameter(0.08, 1e-4, 1.0, log=True)  # lambda

    def projector(self, feature_dim: int) -> nn.Module:
        d = self.projection_dim
        return nn.Sequential(nn.Linear(feature_dim, d, bias=False), nn.BatchNorm1d(d), nn.ReLU(),
                             nn.Linear(d, d, bias=False), nn.BatchNorm1d(d), nn.ReLU(),
                             nn.Linear(d, d, bias=False))

    def loss(self, z1: Tensor, z2: Tensor) -> Tensor:
        b = len(z1)
        z1 = (z1 - z1.mean(0)) / z1.std(0).clamp_min(1e-6)
        z2 = (z2 - z2.mean(0)) / z2.std(0).clamp_min(1e-6)
        c = z1.T @ z2 / b
        on = (torch.diagonal(c) - 1).pow(2).sum()
        off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
        return on + self.redundancy_weight * off
