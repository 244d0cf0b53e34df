"""One training step, built slot by slot as DESIGN.md section 2 lays out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from automl_noisy.components import FAMILIES, build
from automl_noisy.components.base import (Classifier, Component, LabelCorrection, Lookahead, Mixing, Penalty,
                                          PerSampleLoss, Scheme, SemiBatch, SemiSupervised, Selector,
                                          TargetAdjustment, Views, functional_logits)
from automl_noisy.components.losses import one_hot
from automl_noisy.errors import UserError
from automl_noisy.pipeline import Pipeline


@dataclass
class Methods:
    """One network's built components, one attribute per slot they fill.

    Components that act before the forward pass (``correction``, and input mixing) are shared by
    the scheme's networks: only the first network's Methods holds a correction.
    """

    loss: PerSampleLoss
    correction: LabelCorrection | None = None
    adjustment: TargetAdjustment | None = None
    mixing: Mixing | None = None
    selection: Selector | None = None
    semi: SemiSupervised | None = None
    penalties: tuple[Penalty, ...] = ()

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline, leader: bool = True) -> "Methods":
        def optional(family: str) -> Component | None:
            spec = getattr(pipeline, family)
            return build(family, spec) if spec is not None else None

        return cls(
            loss=build("loss", pipeline.loss),  # type: ignore[arg-type]
            correction=optional("correction") if leader else None,  # type: ignore[arg-type]
            adjustment=optional("adjustment"),  # type: ignore[arg-type]
            mixing=optional("mixing"),  # type: ignore[arg-type]
            selection=optional("selection"),  # type: ignore[arg-type]
            semi=optional("semi"),  # type: ignore[arg-type]
            penalties=tuple(build("penalty", p) for p in pipeline.penalty),  # type: ignore[misc]
        )

    def components(self) -> list[Component]:
        found = [self.correction, self.mixing, self.adjustment, self.loss, self.selection, self.semi,
                 *self.penalties]
        return [c for c in found if c is not None]


def build_scheme(pipeline: Pipeline) -> Scheme:
    """The pipeline's scheme, checked against its selection (and the semi-supervised part's)."""
    scheme: Scheme = build("scheme", pipeline.scheme)  # type: ignore[assignment]
    if scheme.needs_selection and pipeline.selection is None:
        raise UserError(f"scheme {scheme.name!r} exchanges selections between its networks and needs one; "
                        "add e.g. 'selection: small_loss' to the pipeline")
    if pipeline.semi is not None and pipeline.selection is None:
        raise UserError(f"semi {pipeline.semi.name!r} trains on the samples a selector sets aside and needs one; "
                        "add e.g. 'selection: gmm' to the pipeline")
    selection = pipeline.selection.name if pipeline.selection is not None else None
    if pipeline.semi is not None and selection is not None and not selection_divides(selection):
        raise UserError(f"semi {pipeline.semi.name!r} trains on the samples a selector sets aside, and selection "
                        f"{selection!r} sets none aside (its weights are soft, never 0); "
                        "drop the semi part or choose e.g. 'selection: gmm'")
    return scheme


def selection_divides(name: str) -> bool:
    """Whether the selector ``name`` sets samples aside (weight 0) for a semi-supervised method."""
    return bool(FAMILIES["selection"].registry.get(name).divides)


class TrustedRows:
    """Random batches of the trusted training rows: their inputs and verified labels.

    >>> rows = TrustedRows(torch.arange(5.0)[:, None], torch.arange(5), seed=0)
    >>> len(rows), rows(8)[1].tolist()
    (5, [0, 1, 2, 3, 4])
    >>> x, y = rows(2)
    >>> x.shape, bool((x[:, 0].long() == y).all())
    (torch.Size([2, 1]), True)
    """

    def __init__(self, x: Tensor, y: Tensor, seed: int = 0) -> None:
        self.x, self.y = x, y
        self._generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.y)

    def __call__(self, n: int) -> tuple[Tensor, Tensor]:
        """``n`` rows drawn without replacement (all of them when there are no more than ``n``)."""
        if n >= len(self.y):
            return self.x, self.y
        pick = torch.randperm(len(self.y), generator=self._generator)[:n].to(self.y.device)
        return self.x[pick], self.y[pick]


class TrainingStep:
    """The loss of one batch for every network of the scheme.

    Per network ``j``: ``sum(w_j * l_j) / sum(w_j)`` (the weighted mean over the samples its
    weights keep; the plain mean without a selector), or the labeled term of a semi-supervised
    method that owns it, ``+ unlabeled term + feature-mixing loss + sum(penalties)``; the step
    returns the sum over networks, whose parameters are disjoint.

    ``views`` are the model's views of the data (``automl_noisy.components.augment.views_for``). With
    a semi-supervised method the supervised side trains on a weak view of the batch, as DivideMix's
    warm-up and FixMatch's labeled loss do (standard crop-and-flip augmentation on images).

    A selector with ``needs_lookahead`` gets, before the weights are exchanged, a
    :class:`~automl_noisy.components.base.Lookahead` of its own network: ``learning_rate`` gives each
    parameter's current learning rate (the trainer reads its optimizer), ``trusted`` draws the trusted
    rows. The lookahead runs with mixed precision off: second derivatives in bfloat16 are too coarse.
    """

    def __init__(self, scheme: Scheme, methods: list[Methods], networks: list[Classifier], num_classes: int,
                 num_outputs: int, views: Views, learning_rate: Callable[[Tensor], float] | None = None,
                 trusted: TrustedRows | None = None) -> None:
        self.scheme, self.methods, self.networks = scheme, methods, networks
        self.num_classes, self.num_outputs = num_classes, num_outputs
        self.views = views
        self.learning_rate, self.trusted = learning_rate, trusted
        self._looks_ahead = any(m.selection is not None and m.selection.needs_lookahead for m in methods)
        if self._looks_ahead and learning_rate is None:
            raise ValueError("a selector that looks ahead needs the step's learning rates (learning_rate=)")
        self._weak_inputs = any(m.semi is not None for m in methods)
        # soft targets are only built when a component reads or changes them
        self._needs_targets = any(m.correction or m.mixing or m.adjustment for m in methods)

    def components(self) -> list[Component]:
        """Every component, the scheme first, then each network's."""
        return [self.scheme] + [c for m in self.methods for c in m.components()]

    def __call__(self, x: Tensor, labels: Tensor, idx: Tensor) -> Tensor:
        hot = one_hot(labels, self.num_outputs) if self._needs_targets else None  # None: hard labels suffice
        leader = self.methods[0]
        if leader.correction is not None:
            hot = leader.correction.correct(hot, idx)  # type: ignore[arg-type]
        inputs = x
        if self._weak_inputs:
            x = self.views.weak(x)
        if leader.mixing is not None:
            x, hot = leader.mixing.mix_inputs(x, hot)  # type: ignore[arg-type]
        per_sample, logits, extras = [], [], []
        for net, m in zip(self.networks, self.methods):
            features = net.features(x)
            z = net.head(features)
            if m.selection is not None:
                m.selection.observe(z.detach(), labels, idx)
            per_sample.append(self._per_sample(m, z, hot, labels, idx))
            logits.append(z)
            extras.append(m.mixing.feature_loss(features, hot, net.head) if m.mixing is not None else None)  # type: ignore[arg-type]
        if self._looks_ahead:
            self._lookahead(x, hot, labels, idx)
        weights = self.scheme.exchange([m.selection for m in self.methods], per_sample, logits, labels, idx)
        total: Tensor | float = 0.0
        for j, (net, m) in enumerate(zip(self.networks, self.methods)):
            w = weights[j]
            supervised = per_sample[j].mean() if w is None else (w * per_sample[j]).sum() / w.sum().clamp_min(1e-8)
            if m.semi is not None and w is not None:
                terms = m.semi.loss(self._semi_batch(j, w, inputs, labels, idx))
                if terms is not None:
                    supervised = terms.labeled if terms.labeled is not None else supervised
                    total = total + terms.unlabeled
            total = total + supervised
            if extras[j] is not None:
                total = total + extras[j]
            for penalty in m.penalties:
                total = total + penalty(net, logits[j])
        return total  # type: ignore[return-value]

    @staticmethod
    def _per_sample(m: Methods, z: Tensor, hot: Tensor | None, labels: Tensor, idx: Tensor) -> Tensor:
        """The per-sample loss ``(B,)`` of logits ``z``: the adjustment, then the loss."""
        adjusted, t = m.adjustment(z, hot, idx) if m.adjustment is not None else (z, hot)  # type: ignore[arg-type]
        return m.loss(adjusted.float(), t) if t is not None else m.loss.from_labels(adjusted.float(), labels)

    def _lookahead(self, x: Tensor, hot: Tensor | None, labels: Tensor, idx: Tensor) -> None:
        """Hand each selector that looks ahead a Lookahead of its own network at this batch."""
        with torch.autocast(x.device.type, enabled=False):
            for net, m in zip(self.networks, self.methods):
                if m.selection is None or not m.selection.needs_lookahead:
                    continue

                def loss(params: dict[str, Tensor], net: Classifier = net, m: Methods = m) -> Tensor:
                    return self._per_sample(m, functional_logits(net, params, x), hot, labels, idx)

                m.selection.lookahead(Lookahead(net, loss, self.learning_rate, self.trusted))  # type: ignore[arg-type]

    def _semi_batch(self, j: int, w: Tensor, x: Tensor, labels: Tensor, idx: Tensor) -> SemiBatch:
        source = self.methods[self.scheme.source(j)].selection
        assert source is not None  # build_scheme: semi needs a selector
        clean = source.clean_probability(idx)
        return SemiBatch(x=x, labels=labels, idx=idx, weights=w.detach(), clean=w.detach() if clean is None else clean,
                         divided=source.divided(), network=j, networks=self.networks,
                         num_classes=self.num_classes, views=self.views)
