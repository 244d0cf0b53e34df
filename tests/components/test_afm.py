"""Attentive feature mixup (mixing ``afm``): grouping, attention, suppression, and training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from automl_noisy.components import build
from automl_noisy.components.base import TrainInfo
from automl_noisy.components.losses import one_hot
from automl_noisy.components.mixing import AttentiveFeatureMixup, mixings
from automl_noisy.components.mixing.afm import class_targets, make_groups
from automl_noisy.data import DataSpec, load_data
from automl_noisy.pipeline import ComponentSpec, Pipeline
from automl_noisy.train import Trainer

K, D = 3, 5
SPEC = DataSpec(source="synthetic", noise="symmetric:0.3", options={"samples": 300, "features": 8, "classes": 3})


def _afm(**params) -> AttentiveFeatureMixup:
    component = build("mixing", ComponentSpec("afm", params))
    component.setup(TrainInfo(num_train=50, num_classes=K, input_shape=(4,), epochs=1, device=torch.device("cpu"),
                              feature_dim=D))
    return component  # type: ignore[return-value]


class _FixedAttention(nn.Module):
    """Weight 1e-6 for members whose first feature is ``low``, 1 for the others."""

    def __init__(self, low: float) -> None:
        super().__init__()
        self.low = low

    def forward(self, members, labels):
        return torch.where(members[..., 0] == self.low, 1e-6, 1.0)


def test_registered_with_its_hyperparameters():
    assert "afm" in mixings
    assert set(AttentiveFeatureMixup.hyperparameters()) == {"group_size", "mix_alpha", "weight"}


@pytest.mark.parametrize("group_size", [2, 3, 4])
def test_groups_hold_one_class_and_have_the_right_size(group_size):
    torch.manual_seed(group_size)
    labels = torch.randint(0, K + 1, (61,))  # label K: no class, joins no group
    groups = make_groups(labels, group_size, K)
    assert groups.shape[1] == group_size
    assert (labels[groups] == labels[groups[:, :1]]).all()
    assert (labels[groups] < K).all()
    assert groups.unique().numel() == groups.numel()
    counts = torch.bincount(labels, minlength=K + 1)[:K]
    assert len(groups) == int((counts // group_size).sum())
    # grouping is random within a class
    assert any(not torch.equal(make_groups(labels, group_size, K), groups) for _ in range(5))


def test_grouping_uses_the_first_k_columns_of_soft_targets():
    targets = torch.tensor([[0.7, 0.3, 0.0, 0.0],  # class 0
                            [0.0, 0.2, 0.0, 0.8],  # class 1 among the K, despite the extra column
                            [0.0, 0.0, 0.0, 1.0]])  # only the extra column: no class
    t, labels = class_targets(targets, K)
    assert labels.tolist() == [0, 1, K]
    assert torch.allclose(t[:2].sum(dim=1), torch.ones(2))
    batch = _afm().mix_features(torch.randn(4, D), torch.cat([targets, targets[1:2]]))
    assert batch is not None and batch.groups.shape == (1, 2)
    assert sorted(batch.groups[0].tolist()) == [1, 3]
    assert torch.allclose(batch.group_targets, torch.tensor([[0.0, 1.0, 0.0]]))


def test_attention_is_in_unit_interval_and_learns_from_feature_loss():
    torch.manual_seed(0)
    afm = _afm(group_size=3)
    for p in afm.attention.parameters():
        nn.init.normal_(p, std=2.0)
    features = torch.randn(30, D, requires_grad=True)
    targets = one_hot(torch.arange(30) % K, K)
    batch = afm.mix_features(features, targets)
    assert batch is not None and batch.alpha.shape == batch.groups.shape
    assert ((batch.alpha > 0) & (batch.alpha < 1)).all()
    assert len(batch.pairs) > 0 and (batch.group_features.shape, batch.mixed_features.shape) == (
        (len(batch.groups), D), (len(batch.pairs), D))
    head = nn.Linear(D, K + 1)  # an extra output (e.g. another component's) is ignored
    loss = afm.feature_loss(features, targets, head)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    assert afm.modules() == [afm.attention]
    for p in afm.attention.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert features.grad.abs().sum() > 0 and head.weight.grad.abs().sum() > 0


def test_low_attention_member_is_suppressed_in_group_feature_and_mixed_target():
    afm = _afm()
    features = torch.arange(4, dtype=torch.float32).unsqueeze(1).repeat(1, D) + 1.0  # f_i = i + 1
    targets = torch.tensor([[1.0, 0.0, 0.0],
                            [0.6, 0.0, 0.4],  # class 0 (argmax), soft mass on class 2; gets ~0 attention
                            [0.0, 1.0, 0.0],
                            [0.0, 1.0, 0.0]])
    afm.attention = _FixedAttention(low=2.0)
    batch = afm.mix_features(features, targets)
    assert batch is not None and len(batch.groups) == 2 and len(batch.pairs) == 2
    by_class = {int(targets[g[0]].argmax()): i for i, g in enumerate(batch.groups)}
    g0 = by_class[0]
    assert torch.allclose(batch.group_features[g0], features[0], atol=1e-4)
    assert batch.group_targets[g0, 2] < 1e-5
    for (a, _), lam, mixed in zip(batch.pairs.tolist(), batch.lam, batch.mixed_targets):
        assert mixed[2] < 1e-5  # the low-attention member's label hardly enters the mixed target
        share0 = lam if a == g0 else 1 - lam  # weight of the class-0 group in the pair
        expected = share0 / (share0 + 2 * (1 - share0))  # one live member against two
        assert torch.isclose(mixed[0], expected, atol=1e-4)
        assert torch.isclose(mixed.sum(), torch.tensor(1.0), atol=1e-5)


def test_batch_without_a_complete_group_adds_nothing():
    afm = _afm(group_size=3)
    features = torch.randn(5, D, requires_grad=True)
    targets = one_hot(torch.tensor([0, 1, 2, 0, 1]), K)  # at most two per class
    assert afm.feature_loss(features, targets, nn.Linear(D, K)) is None
    assert afm.feature_loss(features[:0], targets[:0], nn.Linear(D, K)) is None


def test_single_class_batch_has_group_loss_but_no_pairs():
    afm = _afm()
    features = torch.randn(6, D)
    targets = one_hot(torch.zeros(6, dtype=torch.long), K)
    batch = afm.mix_features(features, targets)
    assert len(batch.groups) == 3 and len(batch.pairs) == 0
    assert torch.isfinite(afm.feature_loss(features, targets, nn.Linear(D, K)))


def test_trains_end_to_end_and_learns_to_suppress_mislabeled_samples():
    data = load_data(SPEC)
    pipeline = Pipeline(model=ComponentSpec("mlp", {"width": 32, "depth": 1}), mixing=ComponentSpec("afm"),
                        epochs=5, data=SPEC)
    trainer = Trainer(pipeline, data)
    afm = trainer.step.methods[0].mixing
    assert isinstance(afm, AttentiveFeatureMixup)
    in_optimizer = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert all(id(p) in in_optimizer for p in afm.attention.parameters())
    before = [p.detach().clone() for p in afm.attention.parameters()]
    metrics = list(trainer.epochs())
    assert all(torch.isfinite(torch.tensor(m.train_loss)) for m in metrics)
    assert any(not torch.equal(b, p) for b, p in zip(before, afm.attention.parameters()))

    # mislabeled members get less attention than the clean members of their groups
    features = trainer.outputs(trainer.x_train, 0, features=True)
    noisy = torch.from_numpy(data.y_train != data.y_train_clean)
    _, labels = class_targets(one_hot(trainer.y_train, K), K)
    torch.manual_seed(0)
    with torch.no_grad():
        groups = torch.cat([make_groups(labels, 2, K) for _ in range(10)])
        alpha = afm.attention(features[groups], labels[groups[:, 0]])
    assert alpha[noisy[groups]].mean() < alpha[~noisy[groups]].mean()
    one_noisy = noisy[groups].sum(dim=1) == 1
    noisy_lower = alpha[one_noisy][noisy[groups][one_noisy]] < alpha[one_noisy][~noisy[groups][one_noisy]]
    assert noisy_lower.float().mean() > 0.7
