"""FixMatch (Sohn et al., NeurIPS 2020) on the samples a selector sets aside."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from automl_noisy.components.base import SemiBatch, SemiLoss, SemiSupervised, hyperparameter
from automl_noisy.components.semi import semis


@semis.register("fixmatch")
@dataclass
class FixMatch(SemiSupervised):
    """FixMatch (Sohn et al., NeurIPS 2020, "FixMatch: Simplifying Semi-Supervised Learning with
    Consistency and Confidence"), with ``U`` = the samples of weight 0.

    ``q_i = softmax(f(weak(x_i)))`` over the first K outputs, without gradient;
    ``L_u = 1/|U| sum_{i in U} 1[max_k q_ik >= tau] CE(f(strong(x_i)), argmax_k q_ik)``; the loss
    adds ``lambda_u L_u`` to the step's weighted supervised mean (which stays as it is).

    The pseudo-labels come from the network in its current (training) mode, as in the paper's
    single forward pass; strong views are drawn only for the confident samples (the others add
    nothing). Before the selector divides the data, or when no sample of the batch is unlabeled
    or confident, the step trains as it is.
    """

    tau: float = hyperparameter(0.95, 0.5, 0.99)
    lambda_u: float = hyperparameter(1.0, 0.1, 10.0, log=True)

    def loss(self, batch: SemiBatch) -> SemiLoss | None:
        unlabeled = batch.weights == 0
        if not batch.divided:
            return None
        x_u = batch.x[unlabeled]
        if len(x_u) == 0:
            return None
        k, net = batch.num_classes, batch.networks[batch.network]
        with torch.no_grad():
            q = net(batch.views.weak(x_u))[:, :k].float().softmax(dim=1)
        confidence, pseudo = q.max(dim=1)
        confident = confidence >= self.tau
        if not bool(confident.any()):
            return None
        logits = net(batch.views.strong(x_u[confident]))[:, :k].float()
        lu = F.cross_entropy(logits, pseudo[confident], reduction="sum") / len(x_u)
        return SemiLoss(unlabeled=self.lambda_u * lu)
