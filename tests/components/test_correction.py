"""Defining properties of the label corrections (Deep Self-Learning's class prototypes)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from automl_noisy.components import build
from automl_noisy.components.base import TrainInfo
from automl_noisy.components.correction.self_learning import SelfLearning, density_peaks, select_prototypes
from automl_noisy.components.losses import one_hot
from automl_noisy.data import DataSpec, load_data
from automl_noisy.pipeline import ComponentSpec, Pipeline
from automl_noisy.train import Trainer

CPU = torch.device("cpu")


def _info(n: int, k: int, seed: int = 0) -> TrainInfo:
    return TrainInfo(num_train=n, num_classes=k, input_shape=(4,), epochs=20, device=CPU, feature_dim=8, seed=seed)


@dataclass
class FakeEnd:
    """An EpochEnd made by hand; counts how often the features are asked for."""

    epoch: int
    labels: torch.Tensor
    given_features: torch.Tensor
    calls: list = field(default_factory=list)

    def logits(self) -> torch.Tensor:
        raise AssertionError("self-learning needs no logits")

    def features(self) -> torch.Tensor:
        self.calls.append(self.epoch)
        return self.given_features


def _clusters(per_class: int, k: int, dim: int, spread: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian clusters around orthogonal centers of norm 5: features and true classes."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(k).repeat_interleave(per_class)
    x = 5.0 * torch.eye(dim)[y] + spread * torch.randn(len(y), dim, generator=g)
    return x, y


def _flip_half(y: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Half of each class's labels moved uniformly to the other classes."""
    rng = np.random.default_rng(seed)
    noisy = y.clone()
    for c in range(k):
        members = torch.nonzero(y == c).flatten().numpy()
        flip = rng.choice(members, len(members) // 2, replace=False)
        noisy[flip] = torch.as_tensor((c + rng.integers(1, k, len(flip))) % k)
    return noisy


def test_prototype_pseudo_labels_recover_true_classes_under_half_flipped_labels():
    k = 3
    x, y = _clusters(200, k, 8, 1.0, seed=0)
    noisy = _flip_half(y, k, seed=1)
    assert (noisy == y).float().mean() == pytest.approx(0.5)
    sl = SelfLearning(warmup_epochs=1)
    sl.setup(_info(len(y), k))
    sl.on_epoch_end(FakeEnd(1, noisy, x))
    pseudo = sl.pseudo_labels()
    assert pseudo is not None and pseudo.shape == y.shape
    assert (pseudo == y).float().mean() >= 0.99
    for c in range(k):  # most prototypes of class c lie in c's true cluster (the paper's eta rule
        # may also pick the peak of a minority cluster that the noise put in c)
        assert (y[sl.prototypes_of(c)] == c).float().mean() > 0.5


def test_density_picks_cluster_cores_not_outliers():
    g = torch.Generator().manual_seed(0)
    core = torch.tensor([8.0] + [0.0] * 15) + torch.randn(60, 16, generator=g)
    outliers = torch.randn(10, 16, generator=g)
    f = F.normalize(torch.cat([core, outliers]), dim=1)
    rho, _, order = density_peaks(f @ f.T)
    assert rho[60:].max() <= rho[:60].min() and rho[60:].mean() < rho[:60].mean()
    assert (order[:60] < 60).all()  # ties broken by summed similarity: outliers rank last
    chosen = select_prototypes(f @ f.T, 8)
    assert len(chosen) == 8 and (chosen < 60).all()

    # Two tight sub-clusters: near-duplicates of a chosen prototype (eta >= 0.95) are skipped, so
    # the second prototype is the peak of the other sub-cluster, not the next sample of the first.
    a = torch.tensor([5.0, 0, 0, 0]) + 0.05 * torch.randn(60, 4, generator=g)
    b = torch.tensor([0, 5.0, 0, 0]) + 0.05 * torch.randn(30, 4, generator=g)
    f = F.normalize(torch.cat([a, b]), dim=1)
    chosen = select_prototypes(f @ f.T, 2)
    assert (chosen < 60).sum() == 1 and (chosen >= 60).sum() == 1
    assert chosen[0] < 60  # the larger (denser) sub-cluster first


def test_targets_unchanged_in_warmup_then_blended_with_pseudo_labels():
    k, alpha = 3, 0.3
    x, y = _clusters(20, k, 8, 0.5, seed=2)
    given = (y + 1) % k  # every given label wrong
    sl = build("correction", ComponentSpec("self_learning", {"warmup_epochs": 2, "alpha": alpha}))
    sl.setup(_info(len(y), k))
    idx = torch.tensor([0, 5, 21, 44, 59, 33])
    targets = one_hot(given[idx], k)
    sl.on_epoch_end(FakeEnd(1, given, x))
    assert torch.equal(sl.correct(targets, idx), targets) and sl.pseudo_labels() is None
    sl.on_epoch_end(FakeEnd(2, given, x))
    pseudo = sl.pseudo_labels()
    assert torch.equal(pseudo, given)  # clean clusters: each (shifted) label set is one cluster
    corrected = sl.correct(targets, idx)
    assert torch.allclose(corrected, (1 - alpha) * targets + alpha * one_hot(pseudo[idx], k))
    assert torch.allclose(corrected.sum(dim=1), torch.ones(len(idx)))

    # An extra output (a fake class): the K-class part is blended in proportion to its mass, the
    # extra column keeps its target, rows still sum to 1.
    sl.on_epoch_end(FakeEnd(4, y, x))  # now pseudo == y
    extended = torch.cat([one_hot(given[idx], k), torch.zeros(len(idx), 1)], dim=1)
    extended[0] = torch.tensor([0.0, 0.0, 0.0, 1.0])
    extended[1] = torch.tensor([0.2, 0.0, 0.0, 0.8])
    out = sl.correct(extended, idx)
    assert torch.equal(out[0], extended[0])
    assert torch.allclose(out[:, k], extended[:, k])
    assert torch.allclose(out[1, :k], (1 - alpha) * extended[1, :k] + alpha * 0.2 * one_hot(y[idx[1:2]], k)[0])
    assert torch.allclose(out.sum(dim=1), torch.ones(len(idx)))


def test_refresh_every_refresh_epochs_after_warmup_and_labels_beyond_k_ignored():
    k = 3
    x, y = _clusters(30, k, 8, 0.5, seed=3)
    sl = SelfLearning(warmup_epochs=2, refresh_epochs=3)
    sl.setup(_info(len(y), k))
    calls: list[int] = []
    seen = []
    for epoch in range(1, 12):
        labels = (y + epoch) % k  # a different labelling each epoch: a refresh shows in the pseudo-labels
        labels[:5] = k  # another component's fake class: left out of the prototypes
        end = FakeEnd(epoch, labels, x, calls)
        sl.on_epoch_end(end)
        seen.append(sl.pseudo_labels())
        if sl.pseudo_labels() is not None:
            assert all(not torch.isin(sl.prototypes_of(c), torch.arange(5)).any() for c in range(k))
    assert calls == [2, 5, 8, 11]
    assert seen[0] is None
    for epoch in (2, 5, 8, 11):
        assert torch.equal(seen[epoch - 1][5:], ((y + epoch) % k)[5:])
        if epoch + 1 <= 11:
            assert torch.equal(seen[epoch], seen[epoch - 1])  # kept until the next refresh


def test_refresh_is_deterministic_in_seed_and_epoch():
    k = 2
    x, y = _clusters(300, k, 8, 2.0, seed=4)
    runs = []
    for _ in range(2):
        sl = SelfLearning(warmup_epochs=1, samples_per_class=40)
        sl.setup(_info(len(y), k, seed=7))
        sl.on_epoch_end(FakeEnd(1, y, x))
        runs.append([sl.prototypes_of(c) for c in range(k)])
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_end_to_end_pseudo_labels_beat_the_noisy_labels():
    spec = DataSpec(source="synthetic", noise="symmetric:0.4", options={"samples": 400, "features": 8, "classes": 3})
    data = load_data(spec)
    pipeline = Pipeline(model=ComponentSpec("mlp", {"width": 32, "depth": 1}),
                        correction=ComponentSpec("self_learning", {"warmup_epochs": 2, "refresh_epochs": 1}),
                        epochs=5, data=spec)
    trainer = Trainer(pipeline, data, device="cpu")
    metrics = list(trainer.epochs())
    assert all(np.isfinite(m.train_loss) for m in metrics)
    pseudo = trainer.step.methods[0].correction.pseudo_labels()
    assert pseudo is not None
    clean = data.y_train_clean
    assert (pseudo.cpu().numpy() == clean).mean() > (data.y_train == clean).mean() + 0.1
