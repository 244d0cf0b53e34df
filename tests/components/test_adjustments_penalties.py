"""Defining properties of bootstrapping, forward correction, NCE+RCE and the confidence penalty."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from automl_noisy.components.adjustment import ForwardCorrection, HardBootstrapping, SoftBootstrapping
from automl_noisy.components.base import TrainInfo
from automl_noisy.components.losses import (CrossEntropy, NormalizedCrossEntropyReverse, SymmetricCrossEntropy,
                                            one_hot)
from automl_noisy.components.penalties import ConfidencePenalty

batch = st.integers(min_value=1, max_value=16)
classes = st.integers(min_value=2, max_value=8)
seeds = st.integers(0, 10_000)
betas = st.floats(0.0, 1.0)


def _random(b: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, k, generator=g) * 3
    return logits, one_hot(torch.randint(0, k, (b,), generator=g), k)


def _info(k: int) -> TrainInfo:
    return TrainInfo(num_train=100, num_classes=k, input_shape=(4,), epochs=10, device=torch.device("cpu"))


@dataclass
class _End:
    """A stand-in for the trainer's end-of-epoch view."""

    epoch: int
    outputs: torch.Tensor

    @property
    def labels(self) -> torch.Tensor:
        return self.outputs.argmax(dim=1)

    def logits(self) -> torch.Tensor:
        return self.outputs

    def features(self) -> torch.Tensor:
        raise NotImplementedError


# --- bootstrapping -------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(b=batch, k=classes, seed=seeds, beta=betas)
def test_soft_bootstrap_interpolates_between_labels_and_prediction(b, k, seed, beta):
    logits, targets = _random(b, k, seed)
    p = logits.softmax(dim=1)
    same, t = SoftBootstrapping(beta=beta)(logits, targets)
    assert same is logits
    assert torch.allclose(t, beta * targets + (1 - beta) * p, atol=1e-6)
    # t' lies on the segment from t to p, at distance beta |t - p| from p
    assert torch.allclose((t - p).norm(dim=1), beta * (targets - p).norm(dim=1), atol=1e-5)
    assert torch.equal(SoftBootstrapping(beta=1.0)(logits, targets)[1], targets)


def test_soft_bootstrap_with_ce_is_ce_plus_minimum_entropy():
    """Reed et al.: soft bootstrapping with CE is ``beta CE + (1 - beta) H(p)``, gradient included."""
    logits, targets = _random(8, 4, 0)
    logits.requires_grad_(True)
    beta = 0.7
    z, t = SoftBootstrapping(beta=beta)(logits, targets)
    boot = CrossEntropy()(z, t).sum()
    p = logits.softmax(dim=1)
    entropy = -(p * logits.log_softmax(dim=1)).sum(dim=1)
    reference = (beta * CrossEntropy()(logits, targets) + (1 - beta) * entropy).sum()
    assert torch.allclose(boot, reference, atol=1e-5)
    g_boot, = torch.autograd.grad(boot, logits)
    g_ref, = torch.autograd.grad(reference, logits)
    assert torch.allclose(g_boot, g_ref, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(b=batch, k=classes, seed=seeds, beta=betas)
def test_hard_bootstrap_moves_mass_to_the_predicted_class(b, k, seed, beta):
    logits, targets = _random(b, k, seed)
    logits.requires_grad_(True)
    _, t = HardBootstrapping(beta=beta)(logits, targets)
    predicted = one_hot(logits.argmax(dim=1), k)
    assert torch.allclose(t, beta * targets + (1 - beta) * predicted, atol=1e-6)
    assert not t.requires_grad  # the argmax carries no gradient
    agree = logits.argmax(dim=1) == targets.argmax(dim=1)
    assert torch.allclose(t[agree], targets[agree])  # nothing changes where the label is predicted


# --- forward correction --------------------------------------------------------------------------


def _transition(k: int, seed: int, rate: float = 0.4) -> torch.Tensor:
    """A row-stochastic T whose diagonal dominates each column (so anchors maximize p(i|x))."""
    g = torch.Generator().manual_seed(seed)
    off = torch.rand(k, k, generator=g)
    return (1 - rate) * torch.eye(k) + rate * off / off.sum(dim=1, keepdim=True)


def _noisy_logits(t_true: torch.Tensor, seed: int, anchors: int, outliers: bool = False) -> torch.Tensor:
    """Logits whose softmax is ``clean @ T`` for random clean posteriors plus ``anchors`` one-hot
    clean posteriors per class (and, optionally, one outlier per class predicting it with p = 1)."""
    k = t_true.shape[0]
    g = torch.Generator().manual_seed(seed)
    clean = torch.distributions.Dirichlet(torch.ones(k)).sample((200,))
    clean = torch.cat([clean, torch.eye(k).repeat(anchors, 1)])
    noisy = clean @ t_true
    if outliers:
        noisy = torch.cat([noisy, torch.eye(k) * (1 - 1e-6) + 1e-6 / k])
    return noisy.log()[torch.randperm(len(noisy), generator=g)]


def test_forward_is_the_identity_during_warmup():
    fc = ForwardCorrection(warmup_epochs=3)
    fc.setup(_info(4))
    logits, targets = _random(6, 4, 0)
    for epoch in (1, 2):
        fc.on_epoch_start(epoch)
        z, t = fc(logits, targets)
        assert torch.equal(z.softmax(dim=1), logits.softmax(dim=1)) and t is targets
        fc.on_epoch_end(_End(epoch, _noisy_logits(_transition(4, 0), 0, 1)))
        assert torch.equal(fc.transition, torch.eye(4))


@settings(max_examples=15, deadline=None)
@given(k=classes, seed=seeds)
def test_forward_estimate_recovers_a_known_transition_from_its_anchors(k, seed):
    t_true = _transition(k, seed)
    fc = ForwardCorrection(warmup_epochs=2, percentile=100.0)  # the plain argmax anchor
    fc.setup(_info(k))
    fc.on_epoch_end(_End(2, _noisy_logits(t_true, seed, anchors=1)))
    assert torch.allclose(fc.transition, t_true, atol=1e-5)
    assert torch.allclose(fc.transition.sum(dim=1), torch.ones(k), atol=1e-6)


def test_forward_percentile_anchor_ignores_overconfident_outliers():
    t_true = _transition(3, 1)
    noisy = _noisy_logits(t_true, 1, anchors=20, outliers=True)
    argmax = ForwardCorrection(warmup_epochs=1, percentile=100.0)
    robust = ForwardCorrection(warmup_epochs=1, percentile=97.0)
    for fc in (argmax, robust):
        fc.setup(_info(3))
        fc.on_epoch_end(_End(1, noisy))
    assert torch.allclose(robust.transition, t_true, atol=1e-5)
    assert torch.allclose(argmax.transition, torch.eye(3), atol=1e-4)  # fooled by the outliers


@settings(max_examples=20, deadline=None)
@given(b=batch, k=classes, seed=seeds)
def test_forward_corrected_probabilities_are_p_times_t(b, k, seed):
    t_true = _transition(k, seed)
    fc = ForwardCorrection(warmup_epochs=1, percentile=100.0)
    fc.setup(_info(k))
    fc.on_epoch_end(_End(1, _noisy_logits(t_true, seed, anchors=1)))
    logits, targets = _random(b, k + 1, seed)  # one extra output beyond the K classes
    z, t = fc(logits, targets)
    p = logits.softmax(dim=1)
    q = z.softmax(dim=1)
    assert t is targets
    assert torch.allclose(q[:, :k], p[:, :k] @ fc.transition, atol=1e-5)
    assert torch.allclose(q[:, k:], p[:, k:], atol=1e-6)  # the extra output keeps its probability


def test_forward_end_to_end_estimates_the_pair_noise_direction():
    """Trained on pair noise (c -> c + 1), the estimated T puts its off-diagonal mass on c + 1."""
    from automl_noisy.data import DataSpec, load_data
    from automl_noisy.pipeline import ComponentSpec, OptimizerSpec, Pipeline
    from automl_noisy.train import Trainer

    spec = DataSpec(source="synthetic", noise="pair:0.3", options={"samples": 1000, "features": 8, "classes": 3})
    pipeline = Pipeline(model=ComponentSpec("mlp", {"width": 32, "depth": 1}),
                        adjustment=ComponentSpec("forward", {"warmup_epochs": 10}), epochs=11, batch_size=32,
                        optimizer=OptimizerSpec("adam", 0.01, schedule="constant"), data=spec)
    trainer = Trainer(pipeline, load_data(spec), device="cpu")
    metrics = list(trainer.epochs())
    assert len(metrics) == 11
    t = trainer.step.methods[0].adjustment.transition
    assert torch.allclose(t.sum(dim=1), torch.ones(3), atol=1e-5)
    pair = sum(float(t[c, (c + 1) % 3]) for c in range(3))
    other = sum(float(t[c, (c + 2) % 3]) for c in range(3))
    assert pair > 0.3 and pair > 3 * other
    assert (t.argmax(dim=1) == torch.arange(3)).all()


# --- NCE + RCE ------------------------------------------------------------------------------------


def _nce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return NormalizedCrossEntropyReverse(alpha=1.0, beta=0.0)(logits, targets)


@settings(max_examples=30, deadline=None)
@given(b=batch, k=classes, seed=seeds)
def test_nce_is_bounded_and_sums_to_one_over_the_labels(b, k, seed):
    """Normalized losses satisfy ``sum_j L(f(x), j) = 1``, which makes them noise-tolerant."""
    logits, _ = _random(b, k, seed)
    total = sum(_nce(logits, one_hot(torch.full((b,), j), k)) for j in range(k))
    assert torch.allclose(total, torch.ones(b), atol=1e-5)
    soft = torch.distributions.Dirichlet(torch.ones(k)).sample((b,))
    for targets in (soft, one_hot(torch.zeros(b, dtype=torch.long), k)):
        values = _nce(logits, targets)
        assert ((values >= 0) & (values <= 1 + 1e-6)).all()


@settings(max_examples=20, deadline=None)
@given(b=batch, k=classes, seed=seeds)
def test_nce_at_the_uniform_prediction_is_one_over_k_whatever_the_label(b, k, seed):
    """``log K / (K log K) = 1 / K``: a uniform prediction scores the same for every label."""
    _, targets = _random(b, k, seed)
    uniform = torch.full((b, k), 2.5)
    assert torch.allclose(_nce(uniform, targets), torch.full((b,), 1.0 / k), atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(b=batch, k=classes, seed=seeds, alpha=st.floats(0.1, 10.0), beta=st.floats(0.1, 10.0))
def test_nce_rce_combines_its_terms_linearly(b, k, seed, alpha, beta):
    logits, targets = _random(b, k, seed)
    rce = NormalizedCrossEntropyReverse(alpha=0.0, beta=1.0)(logits, targets)
    assert torch.allclose(rce, SymmetricCrossEntropy(alpha=0.0, beta=1.0)(logits, targets), atol=1e-6)
    combined = NormalizedCrossEntropyReverse(alpha=alpha, beta=beta)(logits, targets)
    assert torch.allclose(combined, alpha * _nce(logits, targets) + beta * rce, rtol=1e-5, atol=1e-5)


# --- confidence penalty ---------------------------------------------------------------------------


def _penalty(logits: torch.Tensor, k: int, **params) -> torch.Tensor:
    penalty = ConfidencePenalty(**params)
    penalty.setup(_info(k))
    return penalty(torch.nn.Linear(2, k), logits)


@settings(max_examples=30, deadline=None)
@given(b=batch, k=classes, seed=seeds, beta=st.floats(0.01, 1.0))
def test_confidence_penalty_is_shifted_negative_entropy(b, k, seed, beta):
    logits, _ = _random(b, k, seed)
    assert float(_penalty(torch.full((b, k), -1.5), k, beta=beta)) == pytest.approx(0.0, abs=1e-6)
    peaked = torch.zeros(b, k)
    peaked[:, 0] = 50.0
    ceiling = beta * math.log(k)  # log K - H(p) is largest, log K, for a one-hot p
    assert float(_penalty(peaked, k, beta=beta)) == pytest.approx(ceiling, rel=1e-4)
    value = _penalty(logits, k, beta=beta)
    assert 0.0 <= float(value) <= ceiling + 1e-6
    # same gradient as the paper's -beta H(p): the log K shift is a constant
    z = logits.clone().requires_grad_(True)
    g_pen, = torch.autograd.grad(_penalty(z, k, beta=beta), z)
    p = z.softmax(dim=1)
    g_ref, = torch.autograd.grad(beta * (p * z.log_softmax(dim=1)).sum(dim=1).mean(), z)
    assert torch.allclose(g_pen, g_ref, atol=1e-6)


def test_confidence_penalty_ignores_extra_outputs():
    logits = torch.tensor([[0.0, 0.0, 0.0, 9.0]])  # uniform over K = 3, an extra output beyond them
    assert float(_penalty(logits, 3)) == pytest.approx(0.0, abs=1e-6)


def test_confidence_penalty_switches_off_after_warmup_when_asked():
    logits, _ = _random(8, 4, 0)
    for warmup_only in (False, True):
        penalty = ConfidencePenalty(warmup_only=warmup_only, warmup_epochs=2)
        penalty.setup(_info(4))
        values = []
        for epoch in (1, 2, 3, 4):
            penalty.on_epoch_start(epoch)
            values.append(float(penalty(torch.nn.Linear(2, 4), logits)))
        assert values[0] == values[1] > 0
        assert values[2:] == ([0.0, 0.0] if warmup_only else values[:2])
