"""Family ``scheme`` (slot *forward*, networks): one network, or two that teach each other."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from automl_noisy.components.base import Scheme, Selector, hyperparameter
from automl_noisy.registry import Registry

schemes: Registry[type[Scheme]] = Registry("scheme")


@schemes.register("single")
@dataclass
class Single(Scheme):
    """One network trained with its own selection (if any): the standard setting."""


@schemes.register("coteaching")
@dataclass
class CoTeaching(Scheme):
    """Co-teaching (Han et al., NeurIPS 2018): two networks, each trains on the samples its peer
    selects (``w_0 = select_1(l_1)``, ``w_1 = select_0(l_0)``), so the errors one network's
    selection lets through are not the errors it reinforces in itself.
    """

    networks = 2
    needs_selection = True

    def source(self, network: int) -> int:
        return 1 - network

    def exchange(self, selectors: list[Selector | None], per_sample: list[Tensor], logits: list[Tensor],
                 labels: Tensor, idx: Tensor) -> list[Tensor | None]:
        own = [s.weights(l.detach(), z.detach(), labels, idx)  # type: ignore[union-attr]
               for s, l, z in zip(selectors, per_sample, logits)]
        return [own[1], own[0]]


@schemes.register("coteaching_plus")
@dataclass
class CoTeachingPlus(CoTeaching):
    """Co-teaching+ (Yu et al., ICML 2019): after ``init_epochs`` of co-teaching, each network
    selects for its peer only among the samples the two *disagree* on
    (``argmax f_0(x) != argmax f_1(x)``), which keeps the networks from converging to one another.
    With fewer than two disagreements in a batch the whole batch is the candidate pool.
    """

    init_epochs: int = hyperparameter(2, 0, 20)
    _epoch: int = field(default=1, init=False, repr=False, compare=False)

    def on_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch

    def exchange(self, selectors: list[Selector | None], per_sample: list[Tensor], logits: list[Tensor],
                 labels: Tensor, idx: Tensor) -> list[Tensor | None]:
        candidates = None
        if self._epoch > self.init_epochs:
            disagree = logits[0].argmax(dim=1) != logits[1].argmax(dim=1)
            if int(disagree.sum()) >= 2:
                candidates = disagree
        own = [s.weights(l.detach(), z.detach(), labels, idx, candidates)  # type: ignore[union-attr]
               for s, l, z in zip(selectors, per_sample, logits)]
        return [own[1], own[0]]

