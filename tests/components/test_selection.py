"""Defining properties of the sample selectors (AUM, GMM co-divide, density curriculum)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from automl_noisy.components.base import TrainInfo
from automl_noisy.components.selection.aum import AreaUnderMargin, margins
from automl_noisy.components.selection.curriculum import HARD, SEMI_HARD, EASY, DensityCurriculum, local_density
from automl_noisy.components.selection.gmm import GaussianMixtureSplit
from automl_noisy.components.selection.small_loss import estimate_noise_rate
from automl_noisy.data import DataSpec, load_data
from automl_noisy.pipeline import ComponentSpec, Pipeline
from automl_noisy.train import Trainer

CPU = torch.device("cpu")


def _info(n: int, k: int, seed: int = 0, epochs: int = 10) -> TrainInfo:
    return TrainInfo(num_train=n, num_classes=k, input_shape=(4,), epochs=epochs, device=CPU, feature_dim=4, seed=seed)


@dataclass
class FakeEnd:
    """An EpochEnd made by hand."""

    epoch: int
    labels: torch.Tensor
    given_logits: torch.Tensor | None = None
    given_features: torch.Tensor | None = None

    def logits(self) -> torch.Tensor:
        return self.given_logits

    def features(self) -> torch.Tensor:
        return self.given_features


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    """Three separable Gaussian blobs with 30% symmetric noise: which labels flipped is known."""
    rng = np.random.default_rng(0)
    y = np.arange(900) % 3
    x = (rng.normal(size=(3, 10))[y] * 2.0 + rng.normal(size=(900, 10))).astype(np.float32)
    path = tmp_path_factory.mktemp("blobs") / "blobs.npz"
    np.savez(path, X=x, y=y)
    return load_data(DataSpec(source=f"npz:{path}", noise="symmetric:0.3"))


def _train(data, selection: ComponentSpec, epochs: int) -> Trainer:
    pipeline = Pipeline(model=ComponentSpec("mlp", {"width": 64, "depth": 1}), selection=selection,
                        epochs=epochs, batch_size=32, data=data.spec)
    trainer = Trainer(pipeline, data, device="cpu")
    for _ in trainer.epochs():
        pass
    return trainer


# ---- aum ---------------------------------------------------------------------------------------

def test_aum_margin_is_assigned_logit_minus_largest_other():
    logits = torch.tensor([[3.0, 1.0, 0.0, -1.0], [0.0, 2.0, 5.0, 1.0], [1.0, 1.0, 0.0, 4.0]])
    labels = torch.tensor([0, 1, 3])
    assert torch.allclose(margins(logits, labels), torch.tensor([2.0, -3.0, 3.0]))
    aum = AreaUnderMargin()
    aum.setup(_info(5, 3))
    idx = torch.tensor([4, 0, 2])
    aum.observe(logits, labels, idx)
    aum.observe(torch.zeros(3, 4).index_fill_(1, torch.tensor([0]), 1.0), torch.zeros(3, dtype=torch.long), idx)
    # AUM averages the margins of the epochs a sample was seen in: (2 + 1) / 2, (-3 + 1) / 2, (3 + 1) / 2
    assert torch.allclose(aum.aum()[idx], torch.tensor([1.5, -1.0, 2.0]))
    assert aum.aum()[1] == 0 and aum.aum()[3] == 0


def test_aum_threshold_samples_get_the_fake_class_only_while_identifying():
    n, k = 200, 4
    aum = AreaUnderMargin(warmup_epochs=2)
    aum.setup(_info(n, k, seed=7))
    labels = torch.arange(n) % k
    during = aum.labels_for_epoch(labels, 1)
    fake = during == k
    assert int(fake.sum()) == n // (k + 1)
    assert torch.equal(during[~fake], labels[~fake]) and torch.equal(labels, torch.arange(n) % k)
    assert torch.equal(aum.labels_for_epoch(labels, 2), during)
    assert torch.equal(aum.labels_for_epoch(labels, 3), labels)
    again = AreaUnderMargin(warmup_epochs=2)
    again.setup(_info(n, k, seed=7))
    assert torch.equal(again.labels_for_epoch(labels, 1), during)  # same subset in every instance
    other = AreaUnderMargin(warmup_epochs=2)
    other.setup(_info(n, k, seed=8))
    assert not torch.equal(other.labels_for_epoch(labels, 1), during)


def _logits_with_margins(m: torch.Tensor, labels: torch.Tensor, outputs: int) -> torch.Tensor:
    """Logits whose margin for ``labels`` is exactly ``m`` (the other logits are 0)."""
    return torch.zeros(len(m), outputs).scatter(1, labels[:, None], m[:, None])


def test_aum_flags_samples_below_the_threshold_samples_percentile():
    n, k = 400, 3
    aum = AreaUnderMargin(warmup_epochs=2, percentile=90.0)
    aum.setup(_info(n, k))
    assert aum.scores() is None
    g = torch.Generator().manual_seed(0)
    real = torch.arange(n) % k
    per_epoch = [torch.randn(n, generator=g) * 3 for _ in range(2)]
    for epoch in (1, 2):
        aum.on_epoch_start(epoch)
        labels = aum.labels_for_epoch(real, epoch)
        for idx in torch.randperm(n, generator=g).split(32):
            aum.observe(_logits_with_margins(per_epoch[epoch - 1][idx], labels[idx], k + 1), labels[idx], idx)
            assert torch.equal(aum.weights(torch.rand(len(idx)), None, labels[idx], idx), torch.ones(len(idx)))
        aum.on_epoch_end(FakeEnd(epoch, labels))
    threshold = labels == k
    expected_aum = (per_epoch[0] + per_epoch[1]) / 2
    cutoff = torch.quantile(expected_aum[threshold], 0.9)
    expected = (expected_aum < cutoff) & ~threshold
    assert 0 < int(expected.sum()) < n - int(threshold.sum())
    assert torch.equal(aum.flagged(), expected)
    aum.on_epoch_start(3)
    everyone = torch.arange(n)
    assert torch.equal(aum.weights(torch.rand(n), None, real, everyone), (~expected).float())
    assert (aum.weights(torch.rand(n), None, real, everyone)[threshold] == 1).all()
    some = torch.rand(n, generator=g) < 0.5
    assert (aum.weights(torch.rand(n), None, real, everyone, candidates=some)[~some] == 0).all()
    scores = aum.scores()
    assert np.allclose(scores[~threshold.numpy()], -expected_aum[~threshold].numpy(), atol=1e-5)


def test_aum_never_flags_inside_the_identification_phase():
    aum = AreaUnderMargin(warmup_epochs=5)
    aum.setup(_info(40, 3))
    labels = aum.labels_for_epoch(torch.arange(40) % 3, 1)
    idx = torch.arange(40)
    aum.observe(torch.randn(40, 4) * 5, labels, idx)
    aum.on_epoch_end(FakeEnd(1, labels))
    assert not aum.flagged().any()
    assert np.isfinite(aum.scores()).all()


def test_aum_in_training_flags_mostly_flipped_labels(blobs):
    trainer = _train(blobs, ComponentSpec("aum", {"warmup_epochs": 4}), epochs=6)
    assert trainer.networks[0].head.out_features == blobs.num_classes + 1
    aum = trainer.step.methods[0].selection
    flagged, noisy = aum.flagged().numpy(), blobs.noise_mask
    assert flagged.sum() > 0.3 * noisy.sum()
    assert noisy[flagged].mean() > 2 * blobs.noise_rate  # precision well above the noise rate
    assert roc_auc_score(noisy, trainer.suspicion_scores()) > 0.8


# ---- small loss --------------------------------------------------------------------------------

def test_confident_joint_estimates_the_noise_rate():
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 4, 4000)
    flipped = rng.random(4000) < 0.35
    noisy = np.where(flipped, (clean + rng.integers(1, 4, 4000)) % 4, clean)
    probs = np.full((4000, 4), 0.1 / 3)
    probs[np.arange(4000), clean] = 0.9  # a model that has learned the classes, not the flips
    assert abs(estimate_noise_rate(probs, noisy) - 0.35) < 0.03


def test_small_loss_forgets_the_estimated_noise_rate(blobs):
    trainer = _train(blobs, ComponentSpec("small_loss", {"ramp_epochs": 3}), epochs=4)
    selector = trainer.step.methods[0].selection
    assert abs(selector.rate(4) - blobs.noise_rate) < 0.1  # 0.3 injected; a fixed default would forget 0.2
    fixed = _train(blobs, ComponentSpec("small_loss", {"ramp_epochs": 3, "estimate_rate": False}), epochs=1)
    assert fixed.step.methods[0].selection.rate(4) == 0.2


# ---- gmm ---------------------------------------------------------------------------------------

def _bimodal_end(epoch: int, n_low: int = 150, n_high: int = 50, seed: int = 0) -> tuple[FakeEnd, np.ndarray]:
    """Two-class logits whose cross-entropy on label 0 has a low and a high mode."""
    rng = np.random.default_rng(seed)
    b = np.concatenate([rng.normal(-3.0, 0.5, n_low), rng.normal(2.0, 0.5, n_high)])
    logits = torch.tensor(np.stack([np.zeros_like(b), b], axis=1), dtype=torch.float32)
    losses = np.log1p(np.exp(b))  # cross-entropy of label 0
    return FakeEnd(epoch, torch.zeros(len(b), dtype=torch.long), logits), losses


def test_gmm_keeps_the_low_loss_mode():
    end, losses = _bimodal_end(epoch=1)
    n = len(losses)
    gmm = GaussianMixtureSplit(warmup_epochs=2)
    gmm.setup(_info(n, 2))
    everyone = torch.arange(n)
    gmm.on_epoch_end(end)  # before warm-up ends: no fit
    assert gmm.scores() is None
    assert torch.equal(gmm.clean_probability(everyone), torch.ones(n))
    assert torch.equal(gmm.weights(torch.rand(n), None, end.labels, everyone), torch.ones(n))
    gmm.on_epoch_end(FakeEnd(2, end.labels, end.given_logits))
    prob = gmm.clean_probability(everyone).numpy()
    low = np.arange(n) < 150
    assert (prob[low] > 0.9).all() and (prob[~low] < 0.1).all()
    assert spearmanr(prob, losses).statistic < -0.9
    assert np.allclose(gmm.scores(), 1 - prob)
    w = gmm.weights(torch.rand(n), None, end.labels, everyone)
    assert torch.equal(w, torch.from_numpy(prob > 0.5).float())
    assert torch.equal(w, torch.from_numpy(low).float())


def test_per_class_gmm_keeps_the_clean_part_of_a_hard_class():
    """Class 1 is harder than class 0 (its clean losses are nearer class 0's noisy ones than its clean
    ones): the global GMM sets it aside, one GMM per given label keeps each class's low-loss mode."""
    rng = np.random.default_rng(0)
    margins = {(0, "clean"): rng.normal(-4.0, 0.3, 120), (0, "noisy"): rng.normal(3.5, 0.3, 40),
               (1, "clean"): rng.normal(2.5, 0.3, 120), (1, "noisy"): rng.normal(6.0, 0.3, 40)}
    labels = torch.tensor([k for (k, _), b in margins.items() for _ in b])
    b = torch.tensor(np.concatenate(list(margins.values())), dtype=torch.float32)
    other = torch.stack([torch.zeros_like(b), b], dim=1)  # CE of label 0 = log(1 + e^b)
    logits = torch.where(labels[:, None] == 0, other, other.flip(1))
    clean = torch.tensor([part == "clean" for (_, part), m in margins.items() for _ in m])
    kept = {}
    for per_class in (False, True):
        gmm = GaussianMixtureSplit(warmup_epochs=1, per_class=per_class)
        gmm.setup(_info(len(b), 2))
        gmm.on_epoch_end(FakeEnd(1, labels, logits))
        kept[per_class] = gmm.weights(torch.rand(len(b)), None, labels, torch.arange(len(b))).bool()
    hard_clean = clean & (labels == 1)
    assert kept[False][hard_clean].float().mean() < 0.5
    for k in (0, 1):
        mine = labels == k
        assert kept[True][mine & clean].float().mean() > 0.9 and kept[True][mine & ~clean].float().mean() < 0.1


def test_gmm_weights_follow_tau():
    end, losses = _bimodal_end(epoch=1, n_low=100, n_high=100, seed=3)
    end.given_logits[:, 1] = torch.linspace(-4.0, 3.0, 200)  # a ramp: posteriors strictly between modes
    everyone = torch.arange(200)
    kept = []
    for tau in (0.1, 0.5, 0.95):
        gmm = GaussianMixtureSplit(tau=tau, warmup_epochs=1)
        gmm.setup(_info(200, 2))
        gmm.on_epoch_end(end)
        prob = gmm.clean_probability(everyone)
        w = gmm.weights(torch.rand(200), None, end.labels, everyone)
        assert torch.equal(w, (prob > tau).float())
        kept.append(int(w.sum()))
    assert kept[0] > kept[1] > kept[2]


def test_gmm_in_training_ranks_flipped_labels_high(blobs):
    trainer = _train(blobs, ComponentSpec("gmm", {"warmup_epochs": 1}), epochs=4)
    assert roc_auc_score(blobs.noise_mask, trainer.suspicion_scores()) > 0.8
    gmm = trainer.step.methods[0].selection
    kept = gmm.clean_probability(torch.arange(len(blobs.y_train))).numpy() > gmm.tau
    assert blobs.noise_mask[kept].mean() < blobs.noise_rate / 2


# ---- curriculum --------------------------------------------------------------------------------

def _cored_classes(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Per class: a dense core (60), a looser ring (30) and far outliers (12); returns the group."""
    rng = np.random.default_rng(seed)
    feats, labels, group = [], [], []
    for c in range(2):
        centre = np.full(4, 10.0 * c)
        for g, (count, spread) in enumerate(((60, 0.1), (30, 1.0), (12, 6.0))):
            feats.append(centre + rng.normal(size=(count, 4)) * spread)
            labels += [c] * count
            group += [g] * count
    return (torch.tensor(np.concatenate(feats), dtype=torch.float32), torch.tensor(labels), np.array(group))


def test_local_density_counts_neighbours_within_the_percentile_cutoff():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(1))
    d = torch.cdist(x, x)
    off = ~torch.eye(50, dtype=torch.bool)
    d_c = torch.quantile(d[off], 0.6)
    expected = ((d < d_c) & off).sum(dim=1).float()
    assert torch.equal(local_density(x, 60.0, 2000, np.random.default_rng(0)), expected)
    capped = local_density(x, 60.0, 20, np.random.default_rng(0))  # 20 reference rows
    assert capped.shape == (50,) and capped.max() <= 20


def test_curriculum_cores_are_easy_and_outliers_hard():
    features, labels, group = _cored_classes()
    n = len(labels)
    cur = DensityCurriculum(warmup_epochs=1)
    cur.setup(_info(n, 2))
    assert cur.scores() is None
    cur.on_epoch_end(FakeEnd(1, labels, given_features=features))
    level = cur.levels().numpy()
    assert (level[group == 0] == EASY).all()
    assert (level[group == 2] == HARD).all()
    assert (level == SEMI_HARD).any()
    scores = cur.scores()
    assert scores[group == 2].min() > scores[group == 0].max()
    for lvl, base in ((EASY, 0.0), (SEMI_HARD, 0.5), (HARD, 1.0)):  # the level, refined by inverse density
        assert ((scores[level == lvl] >= base) & (scores[level == lvl] <= base + 0.25)).all()


def test_curriculum_stage_weights_by_epoch():
    features, labels, _ = _cored_classes(seed=2)
    n = len(labels)
    cur = DensityCurriculum(warmup_epochs=2, stage_epochs=2)
    cur.setup(_info(n, 2, epochs=9))
    everyone = torch.arange(n)

    def weights(epoch: int) -> torch.Tensor:
        cur.on_epoch_start(epoch)
        return cur.weights(torch.rand(n), None, labels, everyone)

    for epoch in (1, 2):
        assert torch.equal(weights(epoch), torch.ones(n))
    cur.on_epoch_end(FakeEnd(2, labels, given_features=features))
    level = cur.levels()
    assert {EASY, SEMI_HARD, HARD} <= set(level.tolist())
    expected = {3: (1.0, 0.0, 0.0), 4: (1.0, 0.0, 0.0), 5: (1.0, 0.5, 0.0), 6: (1.0, 0.5, 0.0),
                7: (1.0, 0.5, 0.5), 9: (1.0, 0.5, 0.5)}
    for epoch, by_level in expected.items():
        assert torch.equal(weights(epoch), torch.tensor(by_level)[level]), epoch
    cur.on_epoch_end(FakeEnd(9, labels, given_features=features.flip(0)))  # the split is computed once
    assert torch.equal(cur.levels(), level)
    some = torch.rand(n) < 0.5
    assert (cur.weights(torch.rand(n), None, labels, everyone, candidates=some)[~some] == 0).all()


def test_curriculum_in_training_ranks_flipped_labels_high(blobs):
    trainer = _train(blobs, ComponentSpec("curriculum", {"warmup_epochs": 2}), epochs=3)
    assert roc_auc_score(blobs.noise_mask, trainer.suspicion_scores()) > 0.7
