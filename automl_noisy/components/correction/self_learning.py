"""Label correction by class prototypes of Deep Self-Learning (Han, Luo & Wang, ICCV 2019)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from automl_noisy.components.base import EpochEnd, LabelCorrection, TrainInfo, hyperparameter
from automl_noisy.components.correction import corrections


def density_peaks(sim: Tensor, top_fraction: float = 0.4) -> tuple[Tensor, Tensor, Tensor]:
    """Density ``rho``, distinctiveness ``eta`` and the density ranking of the samples of one class
    from their cosine similarity matrix ``sim`` (m, m).

    ``S_c`` is the value ranked ``top_fraction`` from the top among the off-diagonal similarities,
    ``rho_i = sum_{j != i} sign(S_ij - S_c)``, ``eta_i = max_{j denser than i} S_ij`` and
    ``min_j S_ij`` for the densest sample. Samples of equal ``rho`` are ranked by their summed
    similarity (then by position), so "denser" is a strict order.
    """
    m = len(sim)
    off = ~torch.eye(m, dtype=torch.bool, device=sim.device)
    if m > 1:
        upper = sim[torch.triu(off, diagonal=1)]
        s_c = torch.quantile(upper, 1.0 - top_fraction, interpolation="nearest")
        rho = (torch.sign(sim - s_c) * off).sum(dim=1)
    else:
        rho = torch.zeros(m, device=sim.device)
    by_sum = torch.argsort((sim * off).sum(dim=1), descending=True, stable=True)
    order = by_sum[torch.argsort(rho[by_sum], descending=True, stable=True)]
    rank = torch.empty_like(order)
    rank[order] = torch.arange(m, device=sim.device)
    denser = rank[None, :] < rank[:, None]  # denser[i, j]: j ranks before i
    eta = sim.masked_fill(~denser, float("-inf")).amax(dim=1)
    eta[order[:1]] = sim[order[:1]].min()
    return rho, eta, order


def select_prototypes(sim: Tensor, count: int, top_fraction: float = 0.4, max_eta: float = 0.95) -> Tensor:
    """Positions (into ``sim``'s rows) of the ``count`` densest samples with ``eta < max_eta``,
    filled up with the densest of the others when too few qualify."""
    _, eta, order = density_peaks(sim, top_fraction)
    qualifies = eta[order] < max_eta
    ranked = order[torch.argsort((~qualifies).to(torch.int8), stable=True)]
    return ranked[:count]


@corrections.register("self_learning")
@dataclass
class SelfLearning(LabelCorrection):
    """Deep Self-Learning (Han, Luo & Wang, ICCV 2019, "Deep Self-Learning From Noisy Labels").

    After ``warmup_epochs`` on the given labels, and every ``refresh_epochs`` epochs after that,
    class prototypes are picked in the space of L2-normalized features ``f``. Per class ``c`` a
    seeded subset of at most ``samples_per_class`` samples labeled ``c`` gives the cosine
    similarities ``S``; ``S_c`` is the value ranked top 40% among them,
    ``rho_i = sum_j sign(S_ij - S_c)`` and ``eta_i = max_{j: rho_j > rho_i} S_ij`` (``min_j S_ij``
    for the densest; equal ``rho`` is ranked by summed similarity). The prototypes are the
    ``prototypes`` densest samples with ``eta_i < 0.95`` (the densest others if too few qualify).
    Each training sample gets ``y_hat = argmax_c mean_{p in P_c} cos(f, p)`` and the loss is
    ``(1 - alpha) CE(y) + alpha CE(y_hat)``: since CE is linear in its target, ``correct``
    returns ``(1 - alpha) t + alpha one_hot(y_hat)`` on the K classes. Extra outputs (another
    component's fake class) keep their target; the blended one-hot is scaled by the row's mass on
    the K classes, so rows still sum to 1 and a row labeled with an extra class is left unchanged.
    Labels >= K are left out of the prototype search; classes with no sample get no prototype.
    """

    top_fraction: ClassVar[float] = 0.4
    max_eta: ClassVar[float] = 0.95
    warmup_epochs: int = hyperparameter(3, 1, 30)
    refresh_epochs: int = hyperparameter(2, 1, 10)
    samples_per_class: int = hyperparameter(256, 32, 1280, log=True)
    prototypes: int = hyperparameter(8, 1, 16)
    alpha: float = hyperparameter(0.5, 0.0, 1.0)
    _info: TrainInfo | None = field(default=None, init=False, repr=False, compare=False)
    _pseudo: Tensor | None = field(default=None, init=False, repr=False, compare=False)
    _chosen: list[Tensor] = field(default_factory=list, init=False, repr=False, compare=False)

    def setup(self, info: TrainInfo) -> None:
        self._info, self._pseudo, self._chosen = info, None, []

    def refreshes_at(self, epoch: int) -> bool:
        """Whether the prototypes and pseudo-labels are recomputed at the end of ``epoch``."""
        return epoch >= self.warmup_epochs and (epoch - self.warmup_epochs) % self.refresh_epochs == 0

    def on_epoch_end(self, end: EpochEnd) -> None:
        if not self.refreshes_at(end.epoch):
            return
        info = self._info
        assert info is not None, "setup() first"
        feats = F.normalize(end.features().float(), dim=1)
        labels = end.labels.to(feats.device)
        rng = np.random.default_rng([info.seed, end.epoch])
        chosen, centers = [], []
        for c in range(info.num_classes):
            members = torch.nonzero(labels == c).flatten()
            if len(members) > self.samples_per_class:
                pick = np.sort(rng.choice(len(members), self.samples_per_class, replace=False))
                members = members[torch.as_tensor(pick, device=members.device)]
            if len(members) == 0:
                chosen.append(members)
                centers.append(torch.zeros(feats.shape[1], device=feats.device))
                continue
            sub = feats[members]
            picked = members[select_prototypes(sub @ sub.T, self.prototypes, self.top_fraction, self.max_eta)]
            chosen.append(picked)
            centers.append(feats[picked].mean(dim=0))  # mean cosine to P_c == cosine-sum with their mean
        empty = torch.tensor([len(p) == 0 for p in chosen], device=feats.device)
        if bool(empty.all()):
            return
        scores = (feats @ torch.stack(centers).T).masked_fill(empty, float("-inf"))
        self._pseudo = scores.argmax(dim=1).to(info.device)
        self._chosen = [p.to(info.device) for p in chosen]

    def pseudo_labels(self) -> Tensor | None:
        """Per training sample, the label of its nearest class prototypes (None before the first refresh)."""
        return self._pseudo

    def prototypes_of(self, c: int) -> Tensor:
        """Training-sample indices of class ``c``'s prototypes (empty before the first refresh)."""
        return self._chosen[c] if c < len(self._chosen) else torch.empty(0, dtype=torch.long)

    def correct(self, targets: Tensor, idx: Tensor) -> Tensor:
        if self._pseudo is None or self.alpha == 0:
            return targets
        k = self._info.num_classes  # type: ignore[union-attr]
        given = targets[:, :k]
        mass = given.sum(dim=1, keepdim=True)
        pseudo = F.one_hot(self._pseudo[idx.to(self._pseudo.device)].to(targets.device), k).to(targets.dtype)
        out = targets.clone()
        out[:, :k] = (1.0 - self.alpha) * given + self.alpha * mass * pseudo
        return out
