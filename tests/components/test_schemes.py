"""Defining properties of small-loss selection and the two-network schemes."""

from __future__ import annotations

import math

import torch

from automl_noisy.components.base import TrainInfo
from automl_noisy.components.schemes import CoTeaching, CoTeachingPlus, Single
from automl_noisy.components.selection.small_loss import SmallLoss
from automl_noisy.pipeline import ComponentSpec, Pipeline
from automl_noisy.train import Trainer

INFO = TrainInfo(num_train=100, num_classes=3, input_shape=(4,), epochs=10, device=torch.device("cpu"))


def _selector(**kw) -> SmallLoss:
    s = SmallLoss(**kw)
    s.setup(INFO)
    return s


def test_small_loss_keeps_the_smallest_fraction_with_a_linear_ramp():
    s = _selector(forget_rate=0.5, ramp_epochs=4, estimate_rate=False, per_class=False)
    assert [s.rate(e) for e in (1, 2, 3, 5, 9)] == [0.0, 0.125, 0.25, 0.5, 0.5]
    losses = torch.tensor([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4])
    idx, dummy = torch.arange(8), torch.zeros(8, 3)
    s.on_epoch_start(5)
    w = s.weights(losses, dummy, idx, idx)
    assert w.tolist() == [0, 1, 0, 1, 0, 1, 0, 1]  # the 4 smallest of 8
    s.on_epoch_start(2)
    assert int(s.weights(losses, dummy, idx, idx).sum()) == math.ceil(0.875 * 8)


def test_small_loss_selects_only_among_candidates():
    for per_class in (False, True):
        s = _selector(forget_rate=0.5, ramp_epochs=1, estimate_rate=False, per_class=per_class)
        s.on_epoch_start(3)
        losses = torch.tensor([0.1, 0.2, 0.9, 0.8, 0.7, 0.6])
        only = torch.tensor([False, False, True, True, True, True])
        labels = torch.tensor([0, 0, 0, 0, 1, 1])
        w = s.weights(losses, torch.zeros(6, 3), labels, torch.arange(6), candidates=only)
        assert w.tolist() == ([0, 0, 0, 0, 1, 1] if not per_class else [0, 0, 0, 1, 0, 1])


def test_per_class_small_loss_keeps_the_same_share_of_every_label():
    # label 0's losses are all smaller than label 1's: the whole-batch rule keeps only label 0,
    # the per-class rule keeps the smaller half of each label, as many samples in all
    losses = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.9, 0.6, 0.8, 0.5])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    idx, dummy = torch.arange(8), torch.zeros(8, 3)
    kept = {}
    for per_class in (False, True):
        s = _selector(forget_rate=0.5, ramp_epochs=1, estimate_rate=False, per_class=per_class)
        s.on_epoch_start(2)
        kept[per_class] = s.weights(losses, dummy, labels, idx).tolist()
    assert kept[False] == [1, 1, 1, 1, 0, 0, 0, 0]
    assert kept[True] == [1, 1, 0, 0, 0, 1, 0, 1]


def test_single_trains_each_network_with_its_own_selection():
    s = _selector(forget_rate=0.5, ramp_epochs=1, estimate_rate=False)
    s.on_epoch_start(2)
    (w,) = Single().exchange([s], [torch.tensor([0.1, 0.9])], [torch.zeros(2, 3)], torch.zeros(2), torch.arange(2))
    assert w.tolist() == [1, 0]
    assert Single().exchange([None], [torch.rand(2)], [torch.zeros(2, 3)], torch.zeros(2), torch.arange(2)) == [None]


def test_coteaching_swaps_the_selections():
    a, b = _selector(forget_rate=0.5, ramp_epochs=1, estimate_rate=False), _selector(forget_rate=0.5, ramp_epochs=1, estimate_rate=False)
    for s in (a, b):
        s.on_epoch_start(2)
    loss_0, loss_1 = torch.tensor([0.1, 0.9, 0.2, 0.8]), torch.tensor([0.9, 0.1, 0.8, 0.2])
    w0, w1 = CoTeaching().exchange([a, b], [loss_0, loss_1], [torch.zeros(4, 3)] * 2, torch.zeros(4), torch.arange(4))
    assert w0.tolist() == [0, 1, 0, 1]  # network 0 learns from what network 1 finds clean
    assert w1.tolist() == [1, 0, 1, 0]


def test_coteaching_plus_selects_among_disagreements_after_init_epochs():
    a, b = _selector(forget_rate=0.5, ramp_epochs=1, estimate_rate=False), _selector(forget_rate=0.5, ramp_epochs=1, estimate_rate=False)
    scheme = CoTeachingPlus(init_epochs=2)
    logits_0 = torch.tensor([[5.0, 0, 0], [5.0, 0, 0], [0, 5.0, 0], [0, 5.0, 0]])
    logits_1 = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 5.0, 0], [5.0, 0, 0]])  # disagree on 1 and 3
    losses = torch.tensor([0.1, 0.5, 0.2, 0.4])
    for epoch, expected_pool in ((2, 4), (3, 2)):
        for s in (a, b, scheme):
            s.on_epoch_start(epoch)
        w0, w1 = scheme.exchange([a, b], [losses, losses], [logits_0, logits_1], torch.zeros(4), torch.arange(4))
        assert int(w0.sum()) == math.ceil(0.5 * expected_pool)
    assert w0.tolist() == [0, 0, 0, 1]  # among the disagreements {1, 3}, the smaller loss


def test_coteaching_trains_two_networks_that_stay_different(tiny_spec, tiny_data):
    pipeline = Pipeline(model=ComponentSpec("mlp", {"width": 32, "depth": 1}), scheme=ComponentSpec("coteaching"),
                        selection=ComponentSpec("small_loss", {"forget_rate": 0.3, "ramp_epochs": 2, "estimate_rate": False}), epochs=4,
                        data=tiny_spec)
    trainer = Trainer(pipeline, tiny_data)
    *_, last = trainer.epochs()
    a, b = trainer.networks
    assert len(trainer.networks) == 2 and last.test_accuracy > 0.5
    assert not torch.equal(a.head.weight, b.head.weight)
    assert set(trainer.model.state_dict()) >= {"0.head.weight", "1.head.weight"}
    scores = trainer.suspicion_scores()
    assert scores[tiny_data.noise_mask].mean() > scores[~tiny_data.noise_mask].mean()
