"""Trusted rows as the labeled set: every other label is set aside, for a semi-supervised method."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from automl_noisy.components.base import EpochEnd, Selector, TrainInfo
from automl_noisy.components.selection import selectors


@selectors.register("trusted")
@dataclass
class TrustedOnly(Selector):
    """Keep the trusted rows' labels and set every other label aside: ``w_i = 1`` if row ``i`` is
    trusted, else 0. Learning from noisy labels becomes semi-supervised learning with the trusted
    rows as the labeled set and the rest of the pool as unlabeled data, the setting in which
    FixMatch (Sohn et al., NeurIPS 2020) and MixMatch (Berthelot et al., NeurIPS 2019) learn from
    a few labels per class.

    With a semi-supervised part (``semi: fixmatch`` or ``mixmatch``) the untrusted rows train as
    unlabeled samples; without one the network trains on the trusted rows alone (a batch without
    a trusted row then adds no supervised term). It ignores the untrusted labels altogether, so it
    pays where they carry little (heavy symmetric noise) and costs where they carry much (a method
    that corrects them, e.g. ``adjustment: glc``, uses both). No hyperparameter: which rows are
    trusted is data (``--trusted``, ``--trusted-fraction``), and it needs some. In a two-network
    scheme both networks keep the same rows.

    Suspicion score: the cross-entropy of each row's given label under the network at the last
    epoch's end, 0 for a trusted row (its label is verified); None before the first epoch ends.
    """

    needs_trusted = True

    _trusted: Tensor | None = field(default=None, init=False, repr=False, compare=False)
    _scores: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def setup(self, info: TrainInfo) -> None:
        self._trusted = torch.as_tensor(info.trusted_rows("selection trusted"), dtype=torch.bool, device=info.device)
        self._scores = None

    def weights(self, per_sample: Tensor, logits: Tensor, labels: Tensor, idx: Tensor,
                candidates: Tensor | None = None) -> Tensor:
        assert self._trusted is not None, "setup first"
        w = self._trusted[idx.to(self._trusted.device)].to(per_sample.device, per_sample.dtype)
        return w if candidates is None else w * candidates

    def on_epoch_end(self, end: EpochEnd) -> None:
        assert self._trusted is not None
        losses = F.cross_entropy(end.logits().float(), end.labels, reduction="none")
        self._scores = losses.masked_fill(self._trusted.to(losses.device), 0.0).cpu().numpy()

    def divided(self) -> bool:
        return True  # the trusted rows are known before the first batch

    def scores(self) -> np.ndarray | None:
        return self._scores
