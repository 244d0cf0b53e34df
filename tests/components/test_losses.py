"""Defining properties of the losses and regularizers, beyond 'it runs'."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from automl_noisy.components.adjustment import LabelSmoothing
from automl_noisy.components.losses import (CrossEntropy, GeneralizedCrossEntropy, MeanAbsoluteError,
                                            SymmetricCrossEntropy, one_hot)
from automl_noisy.components.mixing import Mixup
from automl_noisy.components.penalties import L1, WeightDecay

batch = st.integers(min_value=1, max_value=16)
classes = st.integers(min_value=2, max_value=10)


def _random(b: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, k, generator=g) * 3
    labels = torch.randint(0, k, (b,), generator=g)
    return logits, one_hot(labels, k)


@settings(max_examples=40, deadline=None)
@given(b=batch, k=classes, seed=st.integers(0, 10_000))
def test_ce_on_hard_targets_is_nll(b, k, seed):
    logits, targets = _random(b, k, seed)
    expected = F.cross_entropy(logits, targets.argmax(1), reduction="none")
    assert torch.allclose(CrossEntropy()(logits, targets), expected, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(b=batch, k=classes, seed=st.integers(0, 10_000))
def test_gce_tends_to_ce_as_q_goes_to_zero(b, k, seed):
    logits, targets = _random(b, k, seed)
    ce = CrossEntropy()(logits, targets)
    gce = GeneralizedCrossEntropy(q=1e-4)(logits, targets)
    assert torch.allclose(gce, ce, rtol=1e-2, atol=2e-3)


@settings(max_examples=40, deadline=None)
@given(b=batch, k=classes, seed=st.integers(0, 10_000))
def test_gce_at_q_one_is_half_mae(b, k, seed):
    logits, targets = _random(b, k, seed)
    assert torch.allclose(GeneralizedCrossEntropy(q=1.0)(logits, targets),
                          MeanAbsoluteError()(logits, targets) / 2, atol=1e-5)


def test_gce_is_monotone_in_q_between_ce_and_mae():
    logits, targets = _random(64, 5, 0)
    values = [GeneralizedCrossEntropy(q=q)(logits, targets).mean().item() for q in (0.05, 0.3, 0.7, 1.0)]
    assert values == sorted(values, reverse=True)  # (1 - p^q)/q decreases in q for p in (0, 1)


@settings(max_examples=40, deadline=None)
@given(b=batch, k=classes, seed=st.integers(0, 10_000))
def test_mae_is_bounded_and_symmetric(b, k, seed):
    """MAE is bounded in [0, 2], and its sum over all K labels is constant (2K - 2): the symmetry
    that makes it noise-tolerant (Ghosh et al., 2017)."""
    logits, _ = _random(b, k, seed)
    mae = MeanAbsoluteError()
    total = sum(mae(logits, one_hot(torch.full((b,), c), k)) for c in range(k))
    assert torch.allclose(total, torch.full((b,), 2.0 * k - 2), atol=1e-4)
    values = mae(logits, one_hot(torch.zeros(b, dtype=torch.long), k))
    assert ((values >= 0) & (values <= 2 + 1e-6)).all()  # float32 rounding


@settings(max_examples=40, deadline=None)
@given(b=batch, k=classes, seed=st.integers(0, 10_000))
def test_sce_combines_ce_and_reverse_ce(b, k, seed):
    logits, targets = _random(b, k, seed)
    ce = CrossEntropy()(logits, targets)
    assert torch.allclose(SymmetricCrossEntropy(alpha=1.0, beta=0.0)(logits, targets), ce, atol=1e-5)
    rce = SymmetricCrossEntropy(alpha=0.0, beta=1.0)(logits, targets)
    p_y = (logits.softmax(1) * targets).sum(1)
    # with one-hot targets RCE = -A (1 - p_y) with the paper's A = -4, i.e. MAE up to scale
    assert torch.allclose(rce, 4.0 * (1 - p_y), atol=1e-4)


def test_robust_losses_bound_the_gradient_of_a_confidently_wrong_label():
    """CE's gradient on a sample it confidently disagrees with stays large; MAE's and GCE's vanish:
    robust losses let such (likely mislabeled) samples pull less."""
    logits = torch.tensor([[8.0, 0.0, 0.0]], requires_grad=True)
    wrong = one_hot(torch.tensor([2]), 3)

    def grad_norm(loss) -> float:
        logits.grad = None
        loss(logits, wrong).sum().backward()
        return float(logits.grad.norm())

    assert grad_norm(CrossEntropy()) > 1.0
    assert grad_norm(MeanAbsoluteError()) < 0.01
    assert grad_norm(GeneralizedCrossEntropy(q=0.7)) < 0.01


def test_label_smoothing_formula_and_identity():
    targets = one_hot(torch.tensor([0, 2]), 4)
    logits = torch.zeros(2, 4)
    _, smoothed = LabelSmoothing(epsilon=0.2)(logits, targets)
    assert torch.allclose(smoothed[0], torch.tensor([0.85, 0.05, 0.05, 0.05]))
    assert torch.equal(LabelSmoothing(epsilon=0.0)(logits, targets)[1], targets)


def test_mixup_is_a_convex_combination_of_pairs():
    torch.manual_seed(0)
    x = torch.eye(6).reshape(6, 6)
    targets = one_hot(torch.arange(6) % 3, 3)
    mixed_x, mixed_t = Mixup(alpha=1.0).mix_inputs(x, targets)
    # each mixed row mixes two one-hot inputs with weights lam and 1 - lam
    weights = mixed_x.sort(dim=1, descending=True).values[:, :2]
    lam = weights[0].max()
    assert torch.allclose(weights.sum(dim=1), torch.ones(6))
    assert torch.allclose(mixed_t.sum(dim=1), torch.ones(6))
    assert torch.all((weights[:, 0] - max(lam, 1 - lam)).abs() < 1e-6)


@pytest.mark.parametrize("penalty, expected", [(L1(coef=0.5), 0.5 * 6.0), (WeightDecay(coef=0.5), 0.25 * 6.0)])
def test_penalties_weight_matrices_not_biases(penalty, expected):
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.fill_(-1.0)
        model.bias.fill_(100.0)
    assert float(penalty(model, torch.zeros(1, 2)).detach()) == pytest.approx(expected)
