"""Meta-Weight-Net (Shu et al., NeurIPS 2019): sample weights from a meta-learned function of the loss."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from automl_noisy.components.base import Lookahead, Selector, TrainInfo, hyperparameter
from automl_noisy.components.selection import selectors


@selectors.register("meta_weight")
@dataclass
class MetaWeightNet(Selector):
    """Meta-Weight-Net (Shu et al., NeurIPS 2019): a tiny network ``V(l; theta)`` maps each
    sample's loss to its weight in (0, 1), learned so that one step on the weighted batch lowers
    the loss of the trusted rows.

    Shu, Xie, Yi, Zhao, Zhou, Xu and Meng, "Meta-Weight-Net: Learning an Explicit Mapping For
    Sample Weighting", NeurIPS 2019; the lookahead is that of Ren, Zeng, Yang and Urtasun,
    "Learning to Reweight Examples for Robust Deep Learning", ICML 2018.

    ``V`` is an MLP ``1 -> hidden -> 1`` (ReLU, then sigmoid). Per batch, with per-sample losses
    ``l_i(w)`` of the network's parameters ``w``:

    * lookahead: ``w'(theta) = w - alpha grad_w sum_i V(l_i; theta) l_i(w) / sum_i V(l_i; theta)``,
      one SGD step at the optimizer's current learning rate ``alpha`` (``V`` sees the losses'
      values, as the paper's gradient ``sum_i V_i grad l_i``), kept in the graph;
    * meta step: ``theta <- theta - beta grad_theta mean_j CE(f(x_j; w'(theta)), y_j)`` over
      ``meta_batch_size`` random trusted rows (labels verified clean), by Adam at ``meta_lr`` with
      ``weight_decay`` (the paper's 1e-3 and 1e-4);
    * weights: ``w_i = V(l_i(w); theta_new)``, detached, and ``w_i = 1`` for a trusted row (its label
      is verified, in the lookahead as in the step); the step trains with ``sum_i w_i l_i / sum_i w_i``.

    Cost: about three forward/backward passes of the network per batch (the lookahead's, the meta
    loss's through the lookahead, second order, and the step's own), per network. For
    ``warmup_epochs`` every weight is 1 and no meta step runs (the paper has none: default 0).
    Suspicion score: ``1 - w_i``, the last weight each sample got (a sample not weighed yet gets
    the median of the others); None before the first meta-learned weight.

    Where it departs from the paper: the lookahead and the step normalize by ``sum_i V_i`` (the
    step's rule for every selector), not by the batch size as the paper does, so the lookahead is
    the step the network takes and only relative weights matter. The lookahead is a plain SGD step
    whatever the optimizer (momentum and Adam's scaling left out, as in the paper's virtual step).
    The trusted rows are training rows too (the paper keeps its meta set apart), at weight 1: ``V``
    weighs only the labels it cannot know to be right (weighed by ``V`` like the rest, the trusted rows
    counted no more than any other row in the step: on digits at 5 % trusted rows it scored below
    training on the trusted rows alone, at symmetric:0.8 and pair:0.4). The meta batch draws them
    without replacement per batch, all of them when there are fewer than ``meta_batch_size``.
    ``replay``: that share of the batch size in trusted rows joins every batch, at weight 1
    (``Component.trusted_replay``; a random batch of 64 holds about three with 5 % of the rows
    trusted). Measured (BENCHMARKS.md "trusted-replay": digits, 5 % trusted, development seeds 10-12,
    medians): at 80 % symmetric noise 0.856 with none, 0.892 at 0.25, 0.886 at 0.5, 0.878 at 1 (the
    trusted rows alone 0.872, plain CE 0.742); at 40 % pair noise 0.914, 0.928, 0.931, 0.922. The
    default, 0.25, is that script's pick.

    The weights are soft, in (0, 1), never 0: nothing is set aside as unlabeled, so the pipeline
    takes no semi-supervised method (``divides``). With input mixing the lookahead sees the mixed
    batch the step trains on. In a two-network scheme each network's ``V`` learns from a lookahead
    of its own network and co-teaching hands its weights to the peer (a combination beyond the
    paper). Needs trusted rows (``--trusted``, ``--trusted-fraction``).
    """

    needs_trusted = True
    needs_lookahead = True
    divides = False

    meta_lr: float = hyperparameter(1e-3, 1e-4, 1e-1, log=True)
    hidden: int = hyperparameter(100, 8, 512, log=True)
    meta_batch_size: int = hyperparameter(100, 16, 512, log=True)
    weight_decay: float = hyperparameter(1e-4, 0.0, 1e-2)
    warmup_epochs: int = hyperparameter(0, 0, 10)
    replay: float = hyperparameter(0.25, 0.0, 1.0)
    _k: int = field(default=0, init=False, repr=False, compare=False)
    _epoch: int = field(default=1, init=False, repr=False, compare=False)
    _net: nn.Module | None = field(default=None, init=False, repr=False, compare=False)
    _optimizer: torch.optim.Optimizer | None = field(default=None, init=False, repr=False, compare=False)
    _last: Tensor | None = field(default=None, init=False, repr=False, compare=False)
    _trusted: Tensor | None = field(default=None, init=False, repr=False, compare=False)
    _batch_trusted: Tensor | None = field(default=None, init=False, repr=False, compare=False)

    def setup(self, info: TrainInfo) -> None:
        trusted = info.trusted_rows("selection meta_weight (Meta-Weight-Net)")
        self._trusted = torch.as_tensor(trusted, dtype=torch.bool, device=info.device)
        self._batch_trusted = None
        self._k, self._epoch = info.num_classes, 1
        with torch.random.fork_rng(devices=[]):  # its own seeded init: the run's random stream is untouched
            torch.manual_seed(info.seed)
            net = nn.Sequential(nn.Linear(1, self.hidden), nn.ReLU(), nn.Linear(self.hidden, 1))
        self._net = net.to(info.device)
        self._optimizer = torch.optim.Adam(self._net.parameters(), lr=self.meta_lr, weight_decay=self.weight_decay)
        self._last = torch.full((info.num_train,), float("nan"), device=info.device)

    def on_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch

    def trusted_replay(self, epoch: int) -> float:
        return self.replay

    def warming_up(self) -> bool:
        return self._epoch <= self.warmup_epochs

    def weight_of(self, losses: Tensor) -> Tensor:
        """``V(l; theta)`` for losses ``(B,)``: weights ``(B,)`` in (0, 1), differentiable in ``theta``."""
        net = self._net
        assert net is not None, "setup first"
        return torch.sigmoid(net(losses.float().unsqueeze(1))).squeeze(1)

    def _trusted_in(self, idx: Tensor) -> Tensor:
        """Which rows of the batch ``idx`` are trusted, a bool mask ``(B,)``."""
        assert self._trusted is not None, "setup first"
        return self._trusted[idx.to(self._trusted.device)]

    def observe(self, logits: Tensor, labels: Tensor, idx: Tensor) -> None:
        self._batch_trusted = self._trusted_in(idx).to(logits.device)  # the batch the lookahead sees next

    def lookahead(self, look: Lookahead) -> None:
        """The meta step: ``theta`` learns from the trusted rows' loss one lookahead step ahead."""
        if self.warming_up():
            return
        if look.trusted is None:
            raise ValueError("meta_weight looks ahead on trusted rows, and the step has none")
        trusted = self._batch_trusted
        if trusted is not None and bool(trusted.all()):
            return  # every row of the batch is trusted: no weight to learn from it
        losses = look.loss(look.params)
        v = self.weight_of(losses.detach())
        if trusted is not None and trusted.shape == v.shape:
            v = torch.where(trusted.to(v.device), torch.ones_like(v), v)
        inner = (v * losses).sum() / v.sum().clamp_min(1e-8)
        grads = torch.autograd.grad(inner, list(look.params.values()), create_graph=True, allow_unused=True)
        x, y = look.trusted(self.meta_batch_size)
        meta = F.cross_entropy(look.logits(look.step(look.params, grads), x)[:, :self._k].float(), y)
        assert self._optimizer is not None and self._net is not None
        self._optimizer.zero_grad(set_to_none=True)
        meta.backward(inputs=list(self._net.parameters()))
        self._optimizer.step()

    def weights(self, per_sample: Tensor, logits: Tensor, labels: Tensor, idx: Tensor,
                candidates: Tensor | None = None) -> Tensor:
        if self.warming_up():
            w = torch.ones_like(per_sample)
        else:
            with torch.no_grad():
                w = self.weight_of(per_sample.detach()).to(per_sample.dtype)
                w = torch.where(self._trusted_in(idx).to(w.device), torch.ones_like(w), w)
            self._last[idx.to(self._last.device)] = w.float().to(self._last.device)  # type: ignore[index,union-attr]
        return w if candidates is None else w * candidates

    def divided(self) -> bool:
        return False  # soft weights: nothing is set aside as unlabeled

    def scores(self) -> np.ndarray | None:
        last = self._last
        if last is None or not bool((seen := ~last.isnan()).any()):
            return None
        return (1.0 - torch.where(seen, last, last[seen].median())).cpu().numpy()
