"""Contract tests, parametrized over every registry entry: a new method is tested for free."""

from __future__ import annotations

import pytest
import torch

from automl_noisy.components import FAMILIES, build
from automl_noisy.components.base import (Classifier, Mixing, ModelFactory, Penalty, PerSampleLoss,
                                          TargetAdjustment, TrainInfo)
from automl_noisy.components.losses import one_hot
from automl_noisy.hparams import Choice
from automl_noisy.pipeline import ComponentSpec, Pipeline
from automl_noisy.train.step import Methods, step_loss

ENTRIES = [(family, name) for family, fam in FAMILIES.items() for name in fam.registry.names()]
SHAPES = [(6,), (1, 8, 8), (3, 5, 5)]
K = 3


def _ids(entry):
    return ".".join(entry)


@pytest.fixture(params=ENTRIES, ids=[_ids(e) for e in ENTRIES])
def entry(request):
    return request.param


def test_slot_base_matches_family(entry):
    family, name = entry
    cls = FAMILIES[family].registry.get(name)
    bases = {"forward": ModelFactory, "per_sample_loss": PerSampleLoss, "targets": TargetAdjustment,
             "mixing": Mixing, "penalties": Penalty}
    assert issubclass(cls, bases[FAMILIES[family].slot])
    assert cls.slot == FAMILIES[family].slot
    assert cls.name == name


def test_docstring_cites_and_states(entry):
    family, name = entry
    doc = FAMILIES[family].registry.get(name).__doc__ or ""
    assert len(doc.strip()) > 20, f"{family}.{name} needs a docstring with its paper and math"


def test_hyperparameters_are_sane(entry):
    family, name = entry
    cls = FAMILIES[family].registry.get(name)
    for param, decl in cls.hyperparameters().items():
        if isinstance(decl, Choice):
            assert decl.default in decl.choices
        else:
            assert decl.low <= decl.default <= decl.high, f"{param} default outside its range"
            if decl.log:
                assert decl.low > 0
    component = build(family, ComponentSpec(name))
    assert component.params() == {p: d.default for p, d in cls.hyperparameters().items()}
    assert build(family, ComponentSpec(name, component.params())) == component


def _step_pipeline(family: str, name: str, shape: tuple[int, ...]) -> Pipeline | None:
    spec = ComponentSpec(name)
    model = ComponentSpec("mlp", {"width": 32, "depth": 1})
    if family == "model":
        if not FAMILIES["model"].registry.get(name).accepts(shape):
            return None
        model = spec
    extra = {"penalty": (spec,)} if FAMILIES[family].multi else {} if family == "model" else {family: spec}
    return Pipeline(model=model, **extra)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_full_step_forward_backward(entry, shape):
    """Every entry, inside a real training step: finite scalar loss and gradients on every weight."""
    family, name = entry
    pipeline = _step_pipeline(family, name, shape)
    if pipeline is None:
        pytest.skip(f"{name} does not accept shape {shape}")
    torch.manual_seed(0)
    model = build("model", pipeline.model).build(shape, K)
    assert isinstance(model, Classifier)
    methods = Methods.from_pipeline(pipeline)
    info = TrainInfo(num_train=8, num_classes=K, input_shape=shape, epochs=2, device=torch.device("cpu"))
    for component in methods.components():
        component.setup(info)
    x, y = torch.randn(8, *shape), torch.arange(8) % K
    loss = step_loss(model, methods, x, y, K)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    for component in methods.components():
        component.on_epoch_end(1)


def test_slot_shapes(entry):
    """Each slot's own contract on a tiny batch."""
    family, name = entry
    component = build(family, ComponentSpec(name))
    torch.manual_seed(0)
    logits = torch.randn(5, K, requires_grad=True)
    targets = one_hot(torch.tensor([0, 1, 2, 0, 1]), K)
    if isinstance(component, PerSampleLoss):
        out = component(logits, targets)
        assert out.shape == (5,) and torch.isfinite(out).all() and (out >= -1e-6).all()
    elif isinstance(component, TargetAdjustment):
        new_logits, new_targets = component(logits, targets)
        assert new_logits.shape == logits.shape and new_targets.shape == targets.shape
        assert torch.allclose(new_targets.sum(dim=1), torch.ones(5), atol=1e-5)
    elif isinstance(component, Mixing):
        x = torch.randn(5, 1, 4, 4)
        new_x, new_targets = component(x, targets)
        assert new_x.shape == x.shape and new_targets.shape == targets.shape
        assert torch.allclose(new_targets.sum(dim=1), torch.ones(5), atol=1e-5)
    elif isinstance(component, Penalty):
        model = torch.nn.Linear(4, K)
        value = component(model, logits)
        assert value.shape == () and torch.isfinite(value) and value >= 0
    elif isinstance(component, ModelFactory):
        for shape in SHAPES:
            if component.accepts(shape):
                net = component.build(shape, K).eval()
                assert net(torch.randn(2, *shape)).shape == (2, K)
                assert net.features(torch.randn(2, *shape)).shape == (2, net.feature_dim)
    else:
        pytest.fail(f"{family}.{name} fills no known slot")


def test_unknown_parameter_is_a_user_error(entry):
    from automl_noisy.errors import UserError

    family, name = entry
    with pytest.raises(UserError, match="has no parameter"):
        build(family, ComponentSpec(name, {"no_such_param": 1}))


def test_pipeline_families_match_registries():
    from automl_noisy.pipeline import FAMILIES as PIPELINE_FAMILIES, MULTI_FAMILIES, OPTIONAL_FAMILIES

    assert tuple(FAMILIES) == PIPELINE_FAMILIES
    assert {f for f, fam in FAMILIES.items() if fam.multi} == set(MULTI_FAMILIES)
    assert {f for f, fam in FAMILIES.items() if fam.optional and not fam.multi} == set(OPTIONAL_FAMILIES)
