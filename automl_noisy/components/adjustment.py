"""Family ``adjustment`` (slot *targets*): soften or correct targets after the forward pass."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from automl_noisy.components.base import EpochEnd, TargetAdjustment, TrainInfo, hyperparameter
from automl_noisy.errors import UserError
from automl_noisy.registry import Registry

adjustments: Registry[type[TargetAdjustment]] = Registry("adjustment")


@adjustments.register("label_smoothing")
@dataclass
class LabelSmoothing(TargetAdjustment):
    """Label smoothing (Szegedy et al., CVPR 2016), which also resists label noise
    (Lukasik et al., ICML 2020): ``t' = (1 - eps) t + eps / K``.
    """

    epsilon: float = hyperparameter(0.1, 0.0, 0.5)

    def __call__(self, logits: Tensor, targets: Tensor, idx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return logits, targets * (1.0 - self.epsilon) + self.epsilon / targets.shape[1]


@adjustments.register("bootstrap_soft")
@dataclass
class SoftBootstrapping(TargetAdjustment):
    """Soft bootstrapping (Reed et al., ICLR 2015 workshop, "Training deep neural networks on
    noisy labels with bootstrapping"): ``t' = beta t + (1 - beta) p``, ``p = softmax(logits)``
    over all the logits' columns (the distribution the loss compares with).

    ``p`` keeps its gradient, as in the paper's objective: with CE the loss is then
    ``beta CE + (1 - beta) H(p)``, i.e. minimum-entropy regularization.
    """

    beta: float = hyperparameter(0.95, 0.5, 1.0)

    def __call__(self, logits: Tensor, targets: Tensor, idx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        p = logits.float().softmax(dim=1)
        return logits, self.beta * targets + (1.0 - self.beta) * p


@adjustments.register("bootstrap_hard")
@dataclass
class HardBootstrapping(TargetAdjustment):
    """Hard bootstrapping (Reed et al., ICLR 2015 workshop): ``t' = beta t + (1 - beta) z`` with
    ``z = one_hot(argmax_k p_k)``, the network's own predicted class (no gradient through z).
    """

    beta: float = hyperparameter(0.8, 0.5, 1.0)

    def __call__(self, logits: Tensor, targets: Tensor, idx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z = F.one_hot(logits.detach().argmax(dim=1), logits.shape[1]).to(targets.dtype)
        return logits, self.beta * targets + (1.0 - self.beta) * z


@adjustments.register("forward")
@dataclass
class ForwardCorrection(TargetAdjustment):
    """Forward loss correction (Patrini et al., CVPR 2017): the loss compares the noisy targets
    with ``p' = T^T p``, the prediction pushed through the noise ``T[i, j] = P(noisy j | true i)``;
    the returned logits are ``log(p @ T)``, valid logits for any softmax-based loss.

    In two stages: a network trains on the noisy labels without correction for ``warmup_epochs``
    epochs (the paper trains it to convergence; here the stage is a share of one budget, so the
    search tunes its length); ``T`` is then estimated once from its eval-mode predictions on the
    training samples: row ``i`` is ``p(. | x_i)`` at the anchor ``x_i``, the sample at the
    ``percentile``-th percentile of ``p(i | x)`` (the paper's robust anchor; 100 is the argmax).

    Where it departs from the paper, by default: the same network goes on with the correction for
    the remaining epochs, where the paper trains a new one (``retrain``, which the search may
    choose; ``restart_after``). Measured on digits (mlp, 30 epochs, 10 warm-up epochs, seeds 0-1):
    a new network trained through an estimated ``T`` collapses at 80 % symmetric noise (0.10 clean
    accuracy: ``T`` estimated from a network trained on such labels is close to uniform, so the
    corrected loss hardly depends on the prediction; even the true ``T``, ``a I + b 11^T`` with
    ``a = 0.11``, ``b = 0.089``, makes the loss ``-log(a p_y + b)``, whose gradient with respect to
    the logits is MAE's times ``a / (2 (a p_y + b))``, between 0.28 and 0.63: MAE's dynamics, which
    collapse the same way on this mlp, see ``mae``; measured with the true ``T`` put in place of the
    estimate, seeds 0-2: 0.10 median, 0.10-0.12), while the same network keeps what it learned
    (0.43-0.53); at 40 % symmetric and pair noise the two are within a few points. Extra outputs
    (columns beyond K) keep their probabilities; only the K classes are corrected.
    """

    warmup_epochs: int = hyperparameter(10, 1, 30)
    percentile: float = hyperparameter(97.0, 90.0, 100.0)
    retrain: bool = hyperparameter(False)
    _k: int | None = field(default=None, init=False, repr=False, compare=False)
    _t: Tensor | None = field(default=None, init=False, repr=False, compare=False)
    _estimated: bool = field(default=False, init=False, repr=False, compare=False)

    def setup(self, info: TrainInfo) -> None:
        self._k = info.num_classes
        self._t = torch.eye(info.num_classes, device=info.device)
        self._estimated = False

    @property
    def transition(self) -> Tensor | None:
        """The current ``T`` (K, K), rows summing to 1; the identity until estimated."""
        return self._t

    def estimate(self, probs: Tensor) -> Tensor:
        """``T`` from class probabilities ``(N, K)`` of the training samples (anchor rows)."""
        n = probs.shape[0]
        rank = round(self.percentile / 100.0 * (n - 1))
        anchors = probs.argsort(dim=0)[rank]  # per class i, the sample at that rank of p(i | x)
        t = probs[anchors]
        return t / t.sum(dim=1, keepdim=True)

    def restart_after(self) -> int | None:
        return self.warmup_epochs if self.retrain else None

    def on_epoch_end(self, end: EpochEnd) -> None:
        if end.epoch == self.warmup_epochs and self._t is not None:
            probs = end.logits()[:, : self._k].float().softmax(dim=1)
            self._t = self.estimate(probs).to(self._t.device)
            self._estimated = True

    def __call__(self, logits: Tensor, targets: Tensor, idx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if not self._estimated or self._t is None:
            return logits, targets
        return _through(logits, self._t), targets


def _through(logits: Tensor, t: Tensor) -> Tensor:
    """``log(softmax(logits)[:, :K] @ t)``, the prediction pushed through the noise ``t`` (K, K),
    beside the log-probabilities of the extra outputs (columns beyond K), which keep theirs."""
    k = t.shape[0]
    with torch.autocast(logits.device.type, enabled=False):
        log_p = logits.float().log_softmax(dim=1)
        corrected = (log_p[:, :k].exp() @ t).clamp_min(1e-12).log()
        return torch.cat([corrected, log_p[:, k:]], dim=1)


@adjustments.register("glc")
@dataclass
class GoldLossCorrection(TargetAdjustment):
    """Gold Loss Correction (Hendrycks et al., NeurIPS 2018): forward correction through a
    corruption matrix estimated on the trusted rows, ``C[i, j] = mean p(noisy j | x)`` over the
    trusted ``x`` of clean class ``i``; the second stage's loss is ``CE(softmax(z) @ C, y)`` on
    the untrusted rows, plain ``CE(softmax(z), y)`` on the trusted ones.

    Hendrycks, Mazeika, Wilson and Gimpel, "Using trusted data to train deep networks on labels
    corrupted by severe noise", NeurIPS 2018.

    In two stages, as the paper: for ``warmup_epochs`` epochs a network trains on the untrusted
    rows alone (the trusted rows' logits are detached, so they give no gradient; the batch mean
    still counts them. A network fitted to them would predict their clean labels and push ``C``
    towards the identity); ``C`` is then estimated from its eval-mode predictions ``p(. | x)`` on
    the trusted training rows, grouped by their (clean) labels, and the networks train with the
    correction for the remaining epochs (with ``warmup_epochs`` at or past the last epoch, the run
    is the first stage alone). Every class needs a trusted training row, for its row of ``C``:
    ``setup`` refuses a training split whose trusted rows miss a class (when given its labels;
    ``estimate`` alone gives such a class the identity row, taking its labels as they are), and a
    search leaves glc out for data where one would. The loss applied to the returned logits is the
    pipeline's (CE in the paper); extra outputs (columns beyond K) keep their probabilities. Needs
    trusted rows (``--trusted``, ``--trusted-fraction``); with input mixing a row counts as trusted
    by its first sample.

    Where it departs from the paper, by default: the first stage's network goes on with the
    correction, where the paper trains a new one (``retrain``, which the search may choose; the
    networks then start over, ``restart_after``, as ``forward``'s do). Measured on digits with 5 % of
    the rows trusted (the default space's baseline: mlp, SGD at 0.05, 20 epochs, 10 warm-up epochs;
    last epoch, seeds 0-2): a new network scored 0.18, 0.42, 0.58 at 80 % symmetric noise, where
    ``C`` is nearly flat (the corrected loss's gradient is a small fraction of CE's, the collapse
    ``forward`` describes) and the trusted rows are about three per batch, against 0.55, 0.61, 0.67
    for the network that goes on; at 40 % pair noise 0.947, 0.939, 0.931 against 0.972, 0.956,
    0.944. The paper's MNIST runs train with Adam, whose per-parameter scaling undoes the small
    gradient: with Adam at 1e-3 a new network scored 0.86, 0.91, 0.89 at 80 % symmetric noise (plain
    CE 0.76 with either optimizer). These are the benchmark's own tasks, so the default leans on them.

    Also beyond the paper, ``replay``: in the second stage that share of the batch size in trusted
    rows joins every batch (``Component.trusted_replay``), where a random batch of 64 holds about three
    of them with 5 % of the rows trusted, and a nearly flat ``C`` leaves them most of what is learned.
    Measured (BENCHMARKS.md "trusted-replay": digits, 5 % trusted, development seeds 10-12, medians):
    at 80 % symmetric noise 0.578 with none, 0.842 at 0.25, 0.847 at 0.5 and at 1 (the trusted rows
    alone 0.872, plain CE 0.742); at 40 % pair noise 0.956, 0.956, 0.950, 0.947. The default, 0.25,
    is that script's pick.
    """

    needs_trusted = True
    needs_trusted_per_class = True

    warmup_epochs: int = hyperparameter(10, 1, 30)
    retrain: bool = hyperparameter(False)
    replay: float = hyperparameter(0.25, 0.0, 1.0)
    _k: int | None = field(default=None, init=False, repr=False, compare=False)
    _trusted: Tensor | None = field(default=None, init=False, repr=False, compare=False)
    _c: Tensor | None = field(default=None, init=False, repr=False, compare=False)

    def setup(self, info: TrainInfo) -> None:
        trusted = info.trusted_rows("adjustment glc (gold loss correction)")
        missing = info.untrusted_classes()
        if missing:
            from automl_noisy.data.trusted import classes_text

            raise UserError(f"adjustment glc (gold loss correction) needs a trusted training row of every class, for "
                            f"its row of the corruption matrix; this training split has none of "
                            f"{classes_text(missing)}: add trusted rows of each class (--trusted FILE), raise "
                            "--trusted-fraction, or use fewer folds (--cv)")
        self._k = info.num_classes
        self._trusted = torch.as_tensor(trusted, dtype=torch.bool, device=info.device)
        self._c = None

    @property
    def corruption(self) -> Tensor | None:
        """The estimated ``C`` (K, K), rows summing to 1; None before the end of the first stage."""
        return self._c

    def estimate(self, probs: Tensor, labels: Tensor) -> Tensor:
        """``C`` from class probabilities ``(N, K)`` of the trusted rows and their clean labels ``(N,)``:
        row ``i`` is the mean of ``probs`` over the rows labelled ``i``, the identity row where none is."""
        k = probs.shape[1]
        keep = labels < k  # a label beyond the K classes (e.g. AUM's fake class) is not a class
        probs, labels = probs[keep], labels[keep]
        sums = torch.zeros(k, k, dtype=probs.dtype, device=probs.device).index_add_(0, labels, probs)
        counts = torch.bincount(labels, minlength=k).to(probs.dtype)
        eye = torch.eye(k, dtype=probs.dtype, device=probs.device)
        c = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], eye)
        return c / c.sum(dim=1, keepdim=True)

    def restart_after(self) -> int | None:
        return self.warmup_epochs if self.retrain else None

    def trusted_replay(self, epoch: int) -> float:
        return self.replay if epoch > self.warmup_epochs else 0.0  # the first stage detaches them anyway

    def on_epoch_end(self, end: EpochEnd) -> None:
        if end.epoch == self.warmup_epochs and self._trusted is not None:
            rows = self._trusted.nonzero().squeeze(1)
            probs = end.logits()[rows, : self._k].float().softmax(dim=1)
            self._c = self.estimate(probs, end.labels[rows].to(rows.device))

    def __call__(self, logits: Tensor, targets: Tensor, idx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if idx is None or self._trusted is None:
            raise ValueError("glc needs the batch's sample indices and a setup with trusted rows")
        trusted = self._trusted[idx.to(self._trusted.device)].to(logits.device)[:, None]
        if self._c is None:  # first stage: the untrusted rows alone train the network
            return torch.where(trusted, logits.detach(), logits), targets
        corrected = _through(logits, self._c.to(logits.device))
        return torch.where(trusted, logits.float(), corrected), targets
