"""Defining properties of the semi-supervised methods (DivideMix's MixMatch, FixMatch)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from automl_noisy.components.augment import VectorViews
from automl_noisy.components.base import Classifier, SemiBatch, Selector, TrainInfo
from automl_noisy.components.losses import CrossEntropy
from automl_noisy.components.schemes import Single
from automl_noisy.components.semi.fixmatch import FixMatch
from automl_noisy.components.semi.mixmatch import MixMatch, sharpen
from automl_noisy.data import DataSpec, load_data
from automl_noisy.pipeline import ComponentSpec, Pipeline
from automl_noisy.train import Trainer
from automl_noisy.train.step import Methods, TrainingStep

K = 3
INFO = TrainInfo(num_train=100, num_classes=K, input_shape=(K,), epochs=10, device=torch.device("cpu"))


class StubViews:
    """Deterministic views: the weak view is the input, the strong one a fixed transform of it."""

    def weak(self, x: Tensor) -> Tensor:
        return x

    def strong(self, x: Tensor) -> Tensor:
        return x.flip(dims=(1,)) * 0.5


def _linear_net(head: Tensor, dropout: float = 0.0) -> Classifier:
    """logits = dropout(x) @ head.T: known predictions (dropout makes training mode visible)."""
    net = Classifier(nn.Dropout(dropout), head.shape[1], head.shape[0])
    with torch.no_grad():
        net.head.weight.copy_(head)
        net.head.bias.zero_()
    return net


def _batch(x, labels, weights, networks, clean=None, network=0, views=None, divided=True) -> SemiBatch:
    return SemiBatch(x=x, labels=labels, idx=torch.arange(len(x)), weights=weights,
                     clean=weights.clone() if clean is None else clean, divided=divided, network=network,
                     networks=networks, num_classes=K, views=views or StubViews())


def _mixmatch(**kw) -> MixMatch:
    m = MixMatch(**kw)
    m.setup(INFO)
    return m


def _entropy(p: Tensor) -> Tensor:
    return -(p * p.clamp_min(1e-30).log()).sum(dim=-1)


@settings(max_examples=60, deadline=None)
@given(p=st.lists(st.floats(1e-3, 1.0), min_size=2, max_size=8), t=st.floats(0.05, 0.99))
def test_sharpening_lowers_entropy(p, t):
    probs = torch.tensor(p, dtype=torch.float64).unsqueeze(0)
    probs = probs / probs.sum()
    sharp = sharpen(probs, t)
    assert torch.allclose(sharp.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert _entropy(sharp) <= _entropy(probs) + 1e-9
    assert probs[0, sharp.argmax()] >= probs.max() - 1e-12  # the mode stays the mode


def test_co_guessing_averages_every_network_over_both_views_in_eval_mode():
    a = _linear_net(torch.eye(K), dropout=0.9)
    b = _linear_net(torch.tensor([[0.0, 2, 0], [0, 0, 2], [2, 0, 0]]), dropout=0.9)  # a different head
    x1, x2 = torch.randn(4, K), torch.randn(4, K)
    batch = _batch(x1, torch.zeros(4, dtype=torch.long), torch.zeros(4), [a, b], network=0)
    targets, labeled = _mixmatch(temperature=0.5).targets(batch, x1, x2)
    assert not labeled.any()
    p = [(x1 @ n.head.weight.T).softmax(1) / 2 + (x2 @ n.head.weight.T).softmax(1) / 2 for n in (a, b)]
    assert torch.allclose(targets, sharpen((p[0] + p[1]) / 2, 0.5), atol=1e-6)
    assert not torch.allclose(targets, sharpen(p[0], 0.5), atol=1e-3)  # the peer counts
    assert a.training and b.training  # modes restored


def test_co_refinement_blends_the_label_with_the_own_prediction():
    a = _linear_net(torch.eye(K))
    b = _linear_net(torch.tensor([[0.0, 3, 0], [0, 0, 3], [3, 0, 0]]))
    x = torch.randn(6, K)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    own = (x @ b.head.weight.T).softmax(1)  # network 1 refines with its own prediction
    m = _mixmatch(temperature=0.5)
    for clean, expected in ((1.0, F.one_hot(labels, K).float()), (0.0, sharpen(own, 0.5)),
                            (0.3, sharpen(0.3 * F.one_hot(labels, K) + 0.7 * own, 0.5))):
        batch = _batch(x, labels, torch.ones(6), [a, b], clean=torch.full((6,), clean), network=1)
        targets, labeled = m.targets(batch, x, x)
        assert labeled.all()
        assert torch.allclose(targets, expected, atol=1e-6)
    # a label beyond the K classes (e.g. AUM's fake class) is treated as unlabeled: it gets the guess
    extra = labels.clone()
    extra[0] = K
    targets, labeled = m.targets(_batch(x, extra, torch.ones(6), [a, b], network=1), x, x)
    guess = ((x @ a.head.weight.T).softmax(1) + own) / 2
    assert labeled.tolist() == [False] + [True] * 5
    assert torch.allclose(targets[0], sharpen(guess, 0.5)[0], atol=1e-6)


def _loss_and_grads(m, batch, seed=0):
    torch.manual_seed(seed)
    net = batch.networks[batch.network]
    net.zero_grad()
    out = m.loss(batch)
    (out.labeled + out.unlabeled).backward()
    return out, [p.grad.clone() for p in net.parameters()]


def test_mixmatch_weight_zero_labels_never_reach_the_loss():
    torch.manual_seed(1)
    nets = [Classifier(nn.Sequential(nn.Linear(K, 16), nn.ReLU()), 16, K) for _ in range(2)]
    x, labels = torch.randn(12, K), torch.randint(0, K, (12,))
    weights = (torch.arange(12) % 3 != 0).float()
    clean = torch.rand(12)
    m = _mixmatch()
    m.on_epoch_start(2)
    base, grads = _loss_and_grads(m, _batch(x, labels, weights, nets, clean, 1, VectorViews()))
    changed = torch.where(weights == 0, (labels + 1) % K, labels)
    same, same_grads = _loss_and_grads(m, _batch(x, changed, weights, nets, clean, 1, VectorViews()))
    assert torch.equal(base.labeled, same.labeled) and torch.equal(base.unlabeled, same.unlabeled)
    assert all(torch.equal(g, h) for g, h in zip(grads, same_grads))
    flipped = labels.clone()
    flipped[1] = (labels[1] + 1) % K  # a labeled sample: its label does count
    other, _ = _loss_and_grads(m, _batch(x, flipped, weights, nets, clean, 1, VectorViews()))
    assert not torch.equal(base.labeled, other.labeled)


def test_mixmatch_lambda_u_ramps_linearly_from_the_first_divided_epoch():
    net = Classifier(nn.Sequential(nn.Linear(K, 8), nn.ReLU()), 8, K)
    x = torch.randn(8, K)
    weights = torch.tensor([1.0, 0, 1, 0, 1, 0, 1, 0])
    m = _mixmatch(lambda_u=12.0, rampup_epochs=3)
    m.on_epoch_start(1)
    assert m.loss(_batch(x, torch.zeros(8, dtype=torch.long), weights, [net], divided=False)) is None
    unlabeled = []
    for epoch in range(2, 7):
        m.on_epoch_start(epoch)
        torch.manual_seed(0)
        unlabeled.append(float(m.loss(_batch(x, torch.zeros(8, dtype=torch.long), weights, [net])).unlabeled.detach()))
    assert [m.ramped_lambda_u(e) for e in range(1, 7)] == [0.0, 4.0, 8.0, 12.0, 12.0, 12.0]
    assert np.allclose(np.array(unlabeled) / unlabeled[0], [1, 2, 3, 3, 3])


def test_mixmatch_edge_batches():
    net = Classifier(nn.Sequential(nn.Linear(K, 8), nn.ReLU()), 8, K)
    x, labels = torch.randn(4, K), torch.tensor([0, 1, 2, 0])
    m = _mixmatch()
    assert m.loss(_batch(x, labels, torch.zeros(4), [net])) is None  # nothing labeled
    out = m.loss(_batch(x, labels, torch.ones(4), [net]))  # nothing unlabeled
    assert float(out.unlabeled.detach()) == 0 and out.unlabeled.requires_grad and torch.isfinite(out.labeled)


def test_fixmatch_uses_only_confident_pseudo_labels_on_the_strong_view():
    net = _linear_net(torch.eye(K))  # logits = x
    x = torch.tensor([[9.0, 0, 0], [0, 1, 0], [0, 0, 9], [1, 2, 3], [0, 9, 0]])
    weights = torch.tensor([0.0, 0, 0, 0, 1])  # the last is labeled: never pseudo-labeled
    fm = FixMatch(tau=0.95, lambda_u=2.0)
    out = fm.loss(_batch(x, torch.zeros(5, dtype=torch.long), weights, [net]))
    assert out.labeled is None
    strong = StubViews().strong(x)
    confident = torch.tensor([0, 2])  # max softmax >= 0.95 among the unlabeled
    expected = 2.0 * F.cross_entropy(strong[confident], x[confident].argmax(1), reduction="sum") / 4
    assert torch.allclose(out.unlabeled, expected)
    on_weak = 2.0 * F.cross_entropy(x[confident], x[confident].argmax(1), reduction="sum") / 4
    assert not torch.allclose(out.unlabeled, on_weak)
    assert FixMatch(tau=0.99999).loss(_batch(x, torch.zeros(5, dtype=torch.long), weights, [net])) is None


def test_both_return_none_before_division_or_without_unlabeled():
    net = _linear_net(torch.eye(K))
    x, labels = torch.randn(4, K) * 10, torch.tensor([0, 1, 2, 0])
    for method in (_mixmatch(), FixMatch(tau=0.5)):
        assert method.loss(_batch(x, labels, torch.tensor([1.0, 0, 1, 0]), [net], divided=False)) is None
    assert FixMatch(tau=0.5).loss(_batch(x, labels, torch.ones(4), [net])) is None


class FixedSelector(Selector):
    """Weights fixed per sample index (and already dividing the data)."""

    def __init__(self, keep: Tensor) -> None:
        self.keep = keep

    def weights(self, per_sample, logits, labels, idx, candidates=None):
        return self.keep[idx]

    def scores(self):
        return np.zeros(len(self.keep))


@pytest.mark.parametrize("tau", [0.5, 0.99])
def test_fixmatch_step_ignores_weight_zero_labels(tau):
    torch.manual_seed(0)
    net = Classifier(nn.Sequential(nn.Linear(K, 16), nn.ReLU()), 16, K)
    keep = (torch.arange(10) % 2).float()
    step = TrainingStep(Single(), [Methods(loss=CrossEntropy(), selection=FixedSelector(keep),
                                           semi=FixMatch(tau=tau))], [net], K, K,
                        VectorViews(weak_noise=0.0))  # the weak view is the batch itself
    x, labels, idx = 10 * torch.randn(10, K), torch.randint(0, K, (10,)), torch.arange(10)  # some confident
    losses = []
    for y in (labels, torch.where(keep == 0, (labels + 1) % K, labels)):
        torch.manual_seed(1)
        losses.append(step(x, y, idx))
    assert torch.equal(losses[0], losses[1])
    supervised = F.cross_entropy(net(x)[keep == 1], labels[keep == 1])
    if tau == 0.99:  # masked off: only the weighted mean over the kept samples
        assert torch.isclose(losses[0], supervised)
    else:
        assert losses[0] > supervised + 1e-4


TINY_NOISY = DataSpec(source="synthetic", noise="symmetric:0.4", options={"samples": 300, "features": 8, "classes": 3})


@pytest.mark.parametrize("scheme,selection,semi", [
    ("coteaching", ComponentSpec("gmm", {"warmup_epochs": 1}), "mixmatch"),
    ("single", ComponentSpec("small_loss"), "fixmatch"),
])
def test_end_to_end_training(scheme, selection, semi):
    data = load_data(TINY_NOISY)
    pipeline = Pipeline(model=ComponentSpec("mlp", {"width": 32, "depth": 1}), scheme=ComponentSpec(scheme),
                        selection=selection, semi=ComponentSpec(semi), epochs=3, data=TINY_NOISY)
    trainer = Trainer(pipeline, data, device="cpu")
    metrics = list(trainer.epochs())
    assert all(math.isfinite(m.train_loss) for m in metrics)
    assert metrics[-1].test_accuracy is not None and metrics[-1].test_accuracy > 0.5  # 3 classes: chance is 1/3
    if semi == "mixmatch":
        assert all(m.semi._start == 2 for m in trainer.step.methods)  # divided after the 1-epoch warm-up
