"""MixMatch as DivideMix trains it: co-refinement, co-guessing and a mixup of both sets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from automl_noisy.components.base import SemiBatch, SemiLoss, SemiSupervised, TrainInfo, hyperparameter
from automl_noisy.components.semi import semis


def sharpen(p: Tensor, temperature: float) -> Tensor:
    """Row-wise ``p_k^(1/T) / sum_c p_c^(1/T)`` (computed in log space)."""
    return torch.softmax(p.clamp_min(1e-12).log() / temperature, dim=1)


@contextmanager
def evaluating(networks: Sequence[nn.Module]) -> Iterator[None]:
    """Put the networks in evaluation mode for the block, then give each its former mode back."""
    modes = [net.training for net in networks]
    try:
        for net in networks:
            net.eval()
        yield
    finally:
        for net, mode in zip(networks, modes):
            net.train(mode)


@semis.register("mixmatch")
@dataclass
class MixMatch(SemiSupervised):
    """The semi-supervised part of DivideMix (Li, Socher & Hoi, ICLR 2020, "DivideMix: Learning
    with Noisy Labels as Semi-supervised Learning"), built on MixMatch (Berthelot et al.,
    NeurIPS 2019).

    For network ``j``: labeled set ``L`` = weight > 0, unlabeled ``U`` = the rest; ``M = 2`` weak
    views ``x', x''`` per sample; ``p_n = (f_n(x') + f_n(x'')) / 2`` (softmax over the first K
    outputs, no gradient, evaluation mode); ``w`` = the selector's clean probability.

    * co-refinement on ``L``: ``y_L = Sharpen(w onehot(y) + (1 - w) p_j, T)``;
    * co-guessing on ``U``: ``y_U = Sharpen(mean_n p_n, T)`` over all networks;
    * ``Sharpen(p, T)_k = p_k^(1/T) / sum_c p_c^(1/T)``;
    * MixMatch: ``lam ~ Beta(a, a)``, ``lam = max(lam, 1 - lam)``; ``(x, t)`` = both views of ``L``
      then of ``U`` with targets ``(y_L, y_L, y_U, y_U)``, mixed with a random permutation of
      itself: ``x~ = lam x + (1 - lam) x[perm]``, same for ``t``; ``q = softmax(f_j(x~))``;
    * ``L_x = -mean_L sum_k t_k log q_k``, ``L_u = mean_U mean_k (q_k - t_k)^2``, prior term
      ``R = sum_k pi_k log(pi_k / mean_batch q_k)`` with uniform ``pi``;
    * loss ``= L_x + R + lambda_u(t) L_u``, ``lambda_u(t) = lambda_u min(1, (t - t0 + 1) / rampup)``
      with ``t0`` the first epoch in which the data is divided (the ramp steps once per epoch;
      DivideMix ramps per iteration).

    Before the selector divides the data (DivideMix's warm-up) the step trains as it is. Labels
    ``>= K`` (extra classes such as AUM's fake class) have no place in ``onehot(y)``: those
    samples join ``U``. Any weight > 0 counts as labeled (``L_x`` is not weighted). A batch
    without labeled samples is left to the step.
    """

    temperature: float = hyperparameter(0.5, 0.1, 1.0)
    alpha: float = hyperparameter(4.0, 0.1, 8.0, log=True)
    lambda_u: float = hyperparameter(25.0, 0.0, 150.0)  # the paper: 0, 25, 50 or 150 by noise level
    rampup_epochs: int = hyperparameter(5, 1, 30)
    _epoch: int = field(default=1, init=False, repr=False, compare=False)
    _start: int | None = field(default=None, init=False, repr=False, compare=False)

    def setup(self, info: TrainInfo) -> None:
        self._epoch, self._start = 1, None

    def on_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch

    def ramped_lambda_u(self, epoch: int) -> float:
        """``lambda_u(t)``: 0 before the data is divided, then a linear ramp to ``lambda_u``."""
        if self._start is None or epoch < self._start:
            return 0.0
        return self.lambda_u * min(1.0, (epoch - self._start + 1) / self.rampup_epochs)

    def targets(self, batch: SemiBatch, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        """Sharpened targets ``(B, K)`` from the two views (co-refined on L, co-guessed on U) and
        the bool mask of L."""
        k = batch.num_classes
        labeled = (batch.weights > 0) & (batch.labels < k)
        with torch.no_grad(), evaluating(batch.networks):
            both = torch.cat([x1, x2])
            probs = [net(both)[:, :k].float().softmax(dim=1).reshape(2, -1, k).mean(dim=0) for net in batch.networks]
        guess = torch.stack(probs).mean(dim=0)
        clean = batch.clean.detach().float().unsqueeze(1)
        given = F.one_hot(batch.labels.clamp(max=k - 1), k).float()  # rows with labels >= K are in U
        refined = clean * given + (1 - clean) * probs[batch.network]
        return sharpen(torch.where(labeled.unsqueeze(1), refined, guess), self.temperature), labeled

    def loss(self, batch: SemiBatch) -> SemiLoss | None:
        if not batch.divided:
            return None
        if self._start is None:
            self._start = self._epoch
        x1, x2 = batch.views.weak(batch.x), batch.views.weak(batch.x)
        targets, labeled = self.targets(batch, x1, x2)
        n_labeled = 2 * int(labeled.sum())
        if n_labeled == 0:
            return None
        unlabeled = ~labeled
        inputs = torch.cat([x1[labeled], x2[labeled], x1[unlabeled], x2[unlabeled]])
        t = torch.cat([targets[labeled], targets[labeled], targets[unlabeled], targets[unlabeled]])
        lam = float(torch.distributions.Beta(self.alpha, self.alpha).sample())
        lam = max(lam, 1.0 - lam)
        perm = torch.randperm(len(inputs), device=inputs.device)
        mixed_x = lam * inputs + (1 - lam) * inputs[perm]
        mixed_t = lam * t + (1 - lam) * t[perm]
        k = batch.num_classes
        log_q = batch.networks[batch.network](mixed_x)[:, :k].float().log_softmax(dim=1)
        q = log_q.exp()
        lx = -(mixed_t[:n_labeled] * log_q[:n_labeled]).sum(dim=1).mean()
        prior = torch.full((k,), 1.0 / k, device=q.device)
        penalty = (prior * (prior.log() - q.mean(dim=0).clamp_min(1e-12).log())).sum()
        lu = ((q[n_labeled:] - mixed_t[n_labeled:]) ** 2).mean() if len(q) > n_labeled else q.sum() * 0
        return SemiLoss(unlabeled=self.ramped_lambda_u(self._epoch) * lu, labeled=lx + penalty)
