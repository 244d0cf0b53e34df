"""Attentive Feature Mixup (Peng et al., ECCV 2020): grouping, self-attention, feature mixing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from automl_noisy.components.base import Mixing, TrainInfo, hyperparameter
from automl_noisy.components.mixing import mixings


def class_targets(targets: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """The targets over the K classes, renormalized, and each row's label (their argmax).

    A row with no mass on the K classes (e.g. a target on an extra output) gets label K: no class.
    """
    t = targets[:, :num_classes].float()
    mass = t.sum(dim=1, keepdim=True)
    labels = t.argmax(dim=1).masked_fill(mass.squeeze(1) <= 1e-6, num_classes)
    return t / mass.clamp_min(1e-6), labels


def make_groups(labels: Tensor, group_size: int, num_classes: int) -> Tensor:
    """Random groups of ``group_size`` samples sharing a label: ``(groups, group_size)`` indices.

    The samples of each class are shuffled and chunked; a class's leftover (fewer than
    ``group_size`` samples) and samples labeled ``num_classes`` (no class) join no group.
    """
    n = labels.numel()
    shuffle = torch.randperm(n, device=labels.device)
    order = shuffle[torch.sort(labels[shuffle], stable=True).indices]  # by class, random within
    counts = torch.bincount(labels, minlength=num_classes + 1)
    starts = counts.cumsum(0) - counts
    sorted_labels = labels[order]
    rank = torch.arange(n, device=labels.device) - starts[sorted_labels]  # position within class
    usable = counts // group_size * group_size
    usable[num_classes:] = 0
    return order[rank < usable[sorted_labels]].view(-1, group_size)


class GroupAttention(nn.Module):
    """Attention of each member ``f_i`` of a group of label ``y``:
    ``alpha_i = sigmoid(w^T [f_i ; mean_j f_j] + u_y^T f_i + b)`` in (0, 1).

    ``u_y`` (one learned vector per class) scores how well a member fits its group's label.
    Zero-initialized, so training starts from plain group averages (every ``alpha_i = 1/2``).
    """

    def __init__(self, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(2 * feature_dim, 1)
        self.label_fit = nn.Embedding(num_classes, feature_dim)
        for p in self.parameters():
            nn.init.zeros_(p)

    def forward(self, members: Tensor, labels: Tensor) -> Tensor:
        """``(groups, G, d)`` member features and ``(groups,)`` labels -> ``(groups, G)`` weights."""
        context = members.mean(dim=1, keepdim=True).expand_as(members)
        z = self.fc(torch.cat([members, context], dim=-1)).squeeze(-1)
        z = z + (members * self.label_fit(labels).unsqueeze(1)).sum(dim=-1)
        return z.float().sigmoid()


class AFMBatch(NamedTuple):
    """What attentive feature mixup builds from one batch."""

    groups: Tensor  # (n, G) sample indices, one class per group
    alpha: Tensor  # (n, G) attention weights in (0, 1)
    group_features: Tensor  # (n, d) attention-weighted group means
    group_targets: Tensor  # (n, K)
    pairs: Tensor  # (p, 2) indices of two groups of different classes
    lam: Tensor  # (p,)
    mixed_features: Tensor  # (p, d)
    mixed_targets: Tensor  # (p, K)


def _soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    log_p = F.log_softmax(logits[:, :targets.shape[1]].float(), dim=1)
    return -(targets * log_p).sum(dim=1).mean()


@mixings.register("afm")
@dataclass
class AttentiveFeatureMixup(Mixing):
    """Attentive Feature Mixup (Peng et al., ECCV 2020, "Suppressing Mislabeled Data via Grouping
    and Self-Attention"): mix features with learned attention that suppresses mislabeled samples.

    The batch is split at random into groups of ``group_size`` samples sharing a (noisy) label
    ``y``. A small learnable module weighs each member ``f_i`` in the context of its group,
    ``alpha_i = sigmoid(w^T [f_i ; mean_j f_j] + u_y^T f_i + b)`` in (0, 1).
    Intra-group: ``g = sum_i alpha_i f_i / sum_i alpha_i``; loss ``CE(head(g), y_group)``.
    Inter-group: groups A and B of different classes, ``lam ~ Beta(mix_alpha, mix_alpha)``,
    member weights ``v = (lam alpha_A, (1 - lam) alpha_B) / sum(...)``; ``f' = sum_i v_i f_i``,
    ``y' = sum_i v_i y_i``; loss ``CE(head(f'), y')``. A member with low attention (likely
    mislabeled) contributes little to both the mixed feature and the mixed target.
    ``feature_loss = weight * (intra + inter)``; the per-sample loss on the individual samples,
    the third term of the paper's objective, is the step's own (the pipeline's ``loss``).
    Only the first K target columns count (renormalized); their argmax is the grouping label.
    """

    group_size: int = hyperparameter(2, 2, 4)
    mix_alpha: float = hyperparameter(1.0, 0.1, 8.0, log=True)
    weight: float = hyperparameter(1.0, 0.1, 10.0, log=True)
    attention: GroupAttention | None = field(default=None, init=False, repr=False, compare=False)
    _num_classes: int = field(default=0, init=False, repr=False, compare=False)

    def setup(self, info: TrainInfo) -> None:
        if info.feature_dim <= 0:
            raise ValueError("afm needs the network's feature width (TrainInfo.feature_dim)")
        self._num_classes = info.num_classes
        self.attention = GroupAttention(info.feature_dim, info.num_classes).to(info.device)

    def modules(self) -> list[nn.Module]:
        return [self.attention] if self.attention is not None else []

    def mix_features(self, features: Tensor, targets: Tensor) -> AFMBatch | None:
        """Groups, attention, and intra- and inter-group mixtures; None without a full group."""
        if self.attention is None:
            raise RuntimeError("afm: call setup(info) before mixing features")
        t, labels = class_targets(targets, self._num_classes)
        groups = make_groups(labels, self.group_size, self._num_classes)
        if len(groups) == 0:
            return None
        members, member_targets = features[groups].float(), t[groups]  # (n, G, d), (n, G, K)
        group_labels = labels[groups[:, 0]]
        alpha = self.attention(members, group_labels)
        v = alpha / alpha.sum(dim=1, keepdim=True).clamp_min(1e-12)
        group_features = (v.unsqueeze(-1) * members).sum(dim=1)
        group_targets = (v.unsqueeze(-1) * member_targets).sum(dim=1)

        partner = torch.randperm(len(groups), device=groups.device)
        first = torch.nonzero(group_labels != group_labels[partner]).squeeze(1)
        pairs = torch.stack([first, partner[first]], dim=1)
        concentration = torch.tensor(float(self.mix_alpha), device=features.device)
        lam = torch.distributions.Beta(concentration, concentration).sample((len(first),)).unsqueeze(1)
        a, b = pairs[:, 0], pairs[:, 1]
        w = torch.cat([lam * alpha[a], (1 - lam) * alpha[b]], dim=1)
        w = w / w.sum(dim=1, keepdim=True).clamp_min(1e-12)
        mixed_features = (w.unsqueeze(-1) * torch.cat([members[a], members[b]], dim=1)).sum(dim=1)
        mixed_targets = (w.unsqueeze(-1) * torch.cat([member_targets[a], member_targets[b]], dim=1)).sum(dim=1)
        return AFMBatch(groups, alpha, group_features, group_targets, pairs, lam.squeeze(1),
                        mixed_features, mixed_targets)

    def feature_loss(self, features: Tensor, targets: Tensor, head: nn.Module) -> Tensor | None:
        batch = self.mix_features(features, targets)
        if batch is None:
            return None  # no full group: nothing to add (the step skips None)
        loss = _soft_cross_entropy(head(batch.group_features.to(features.dtype)), batch.group_targets)
        if len(batch.pairs):
            loss = loss + _soft_cross_entropy(head(batch.mixed_features.to(features.dtype)), batch.mixed_targets)
        return self.weight * loss
