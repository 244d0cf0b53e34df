"""Contract tests, parametrized over every registry entry: a new method is tested for free."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automl_noisy.components import FAMILIES, build
from automl_noisy.components.augment import views_for
from automl_noisy.components.base import (LabelCorrection, Mixing, ModelFactory, Penalty, PerSampleLoss, Scheme,
                                          SemiBatch, SemiLoss, SemiSupervised, Selector, TargetAdjustment,
                                          TrainInfo)
from automl_noisy.components.losses import one_hot
from automl_noisy.hparams import Choice
from automl_noisy.pipeline import ComponentSpec, Pipeline
from automl_noisy.data import DataSpec, load_data
from automl_noisy.train import Trainer

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
    bases = {"model": ModelFactory, "scheme": Scheme, "loss": PerSampleLoss, "adjustment": TargetAdjustment,
             "mixing": Mixing, "selection": Selector, "penalty": Penalty, "correction": LabelCorrection,
             "semi": SemiSupervised}
    assert issubclass(cls, bases[family])
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


def _entry_pipeline(family: str, name: str, spec_data) -> Pipeline:
    """A small pipeline that uses the entry (plus whatever it needs, e.g. a selector for a scheme)."""
    spec = ComponentSpec(name)
    parts: dict = {"model": ComponentSpec("mlp", {"width": 32, "depth": 1})}
    if family == "model":
        parts["model"] = spec
    elif FAMILIES[family].multi:
        parts[family] = (spec,)
    else:
        parts[family] = spec
    if family == "semi" or (family == "scheme" and FAMILIES["scheme"].registry.get(name).needs_selection):
        parts["selection"] = ComponentSpec("small_loss")
    return Pipeline(**parts, epochs=3, batch_size=16, data=spec_data)


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory):
    """Tiny vector and image datasets (a few dozen samples per class), a fifth of their rows trusted
    (methods that need trusted rows get them; the others train with them present)."""
    rng = np.random.default_rng(0)
    out = {}
    for kind, shape in (("vectors", (6,)), ("images", (1, 8, 8))):
        y = np.arange(90) % K
        x = rng.normal(size=(90, *shape)).astype(np.float32) + y.reshape(-1, *[1] * len(shape))
        path = tmp_path_factory.mktemp(kind) / "d.npz"
        np.savez(path, X=x, y=y)
        out[kind] = load_data(DataSpec(f"npz:{path}", "symmetric:0.2", options={"trusted_fraction": 0.2}))
    return out


@pytest.mark.parametrize("kind", ["vectors", "images"])
def test_full_step_forward_backward_and_epochs(entry, kind, tiny_sets):
    """Every entry inside the real training step: a finite scalar loss, gradients on every weight
    of every network, and whole epochs (hooks included) with finite metrics."""
    family, name = entry
    data = tiny_sets[kind]
    pipeline = _entry_pipeline(family, name, data.spec)
    if not FAMILIES["model"].registry.get(pipeline.model.name).accepts(data.input_shape):
        pytest.skip(f"{pipeline.model.name} does not accept {kind}")
    trainer = Trainer(pipeline, data)
    metrics = list(trainer.epochs())
    assert [m.epoch for m in metrics] == [1, 2, 3]
    assert all(np.isfinite(m.train_loss) and 0 <= m.val_accuracy <= 1 for m in metrics)
    idx = torch.arange(16)
    loss = trainer.step(trainer.x_train[idx], trainer.y_train[idx], idx)
    assert loss.shape == () and torch.isfinite(loss)
    for net in trainer.networks:
        net.train()
        net.zero_grad()
    loss.backward()
    for net in trainer.networks:
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    scores = trainer.suspicion_scores()
    assert scores.shape == (len(data.y_train),) and np.isfinite(scores).all()


def test_slot_shapes(entry):
    """Each slot's own contract on a tiny batch."""
    family, name = entry
    component = build(family, ComponentSpec(name))
    torch.manual_seed(0)
    info = TrainInfo(num_train=20, num_classes=K, input_shape=(4,), epochs=3, device=torch.device("cpu"),
                     feature_dim=4, seed=0, trusted=np.arange(20) % 4 == 0)  # rows 0 and 12 of idx are trusted
    component.setup(info)
    component.on_epoch_start(1)
    logits = torch.randn(5, K + component.extra_outputs, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 0, 1])
    targets = one_hot(labels, K + component.extra_outputs)
    idx = torch.tensor([3, 7, 1, 0, 12])
    if isinstance(component, PerSampleLoss):
        out = component(logits, targets)
        assert out.shape == (5,) and torch.isfinite(out).all() and (out >= -1e-6).all()
        assert torch.allclose(component.from_labels(logits, labels), out, atol=1e-5)  # the hard-label path
    elif isinstance(component, TargetAdjustment):
        calls = [idx] if component.needs_trusted else [idx, None]  # the step passes idx; other callers may not
        for rows in calls:
            new_logits, new_targets = component(logits, targets, rows)
            assert new_logits.shape == logits.shape and new_targets.shape == targets.shape
            assert torch.allclose(new_targets.sum(dim=1), torch.ones(5), atol=1e-5)
    elif isinstance(component, Mixing):
        x = torch.randn(5, 1, 4, 4)
        new_x, new_targets = component.mix_inputs(x, targets)
        assert new_x.shape == x.shape and new_targets.shape == targets.shape
        assert torch.allclose(new_targets.sum(dim=1), torch.ones(5), atol=1e-5)
        head = torch.nn.Linear(4, K)
        extra = component.feature_loss(torch.randn(5, 4, requires_grad=True), targets, head)
        assert extra is None or (extra.shape == () and torch.isfinite(extra))
        assert all(p.requires_grad for m in component.modules() for p in m.parameters())
    elif isinstance(component, Selector):
        component.observe(logits.detach(), labels, idx)
        w = component.weights(torch.rand(5), logits.detach(), labels, idx)
        assert w.shape == (5,) and ((w >= 0) & (w <= 1)).all()
        only = torch.tensor([True, False, True, False, False])
        w = component.weights(torch.rand(5), logits.detach(), labels, idx, candidates=only)
        assert (w[~only] == 0).all()
    elif isinstance(component, LabelCorrection):
        corrected = component.correct(targets, idx)
        assert corrected.shape == targets.shape
        assert torch.allclose(corrected.sum(dim=1), torch.ones(5), atol=1e-5)
    elif isinstance(component, SemiSupervised):
        nets = [build("model", ComponentSpec("mlp", {"width": 32, "depth": 1})).build((4,), K) for _ in range(2)]
        for divided in (False, True):
            batch = SemiBatch(x=torch.randn(5, 4), labels=labels, idx=idx, weights=torch.tensor([1.0, 0, 1, 0, 1]),
                              clean=torch.tensor([0.9, 0.1, 0.8, 0.2, 0.7]), divided=divided, network=0,
                              networks=nets, num_classes=K, views=views_for(False, (4,)))
            out = component.loss(batch)
            assert out is None or isinstance(out, SemiLoss)
            if out is not None:
                assert out.unlabeled.shape == () and torch.isfinite(out.unlabeled)
                assert out.labeled is None or (out.labeled.shape == () and torch.isfinite(out.labeled))
    elif isinstance(component, Scheme):
        selectors = [build("selection", ComponentSpec("small_loss")) for _ in range(component.networks)]
        for sel in selectors:
            sel.setup(info)
        weights = component.exchange(selectors, [torch.rand(5)] * component.networks,
                                     [logits.detach()] * component.networks, labels, idx)
        assert len(weights) == component.networks
        assert all(w is None or w.shape == (5,) for w in weights)
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


def test_needs_trusted_is_refused_without_trusted_rows(entry):
    """A method that needs trusted rows says so in one line at setup when there are none."""
    from automl_noisy.errors import UserError

    family, name = entry
    component = build(family, ComponentSpec(name))
    if not component.needs_trusted:
        return
    for trusted in (None, np.zeros(20, dtype=bool)):
        info = TrainInfo(num_train=20, num_classes=K, input_shape=(4,), epochs=3, device=torch.device("cpu"),
                         trusted=trusted)
        with pytest.raises(UserError, match="trusted") as caught:
            component.setup(info)
        assert "\n" not in str(caught.value)


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


# -- stages before the step: pretraining ------------------------------------------------------------
from automl_noisy.components import STAGES  # noqa: E402
from automl_noisy.components.base import Pretraining  # noqa: E402

STAGE_ENTRIES = [(stage, name) for stage, registry in STAGES.items() for name in registry.names()]


@pytest.mark.parametrize("stage_entry", STAGE_ENTRIES, ids=[_ids(e) for e in STAGE_ENTRIES])
def test_pretraining_contract(stage_entry):
    """Docstring, sane settings, and a loss that is a differentiable scalar, lower when the two views
    agree than when they are unrelated."""
    stage, name = stage_entry
    cls = STAGES[stage].get(name)
    assert issubclass(cls, Pretraining) and cls.slot == "pretraining" and cls.name == name
    assert len((cls.__doc__ or "").strip()) > 20
    for decl in cls.hyperparameters().values():
        assert decl.low <= decl.default <= decl.high
    method = build(stage, ComponentSpec(name))
    torch.manual_seed(0)
    projector = method.projector(16)
    z = projector(torch.randn(32, 16, requires_grad=True))
    same, unrelated = method.loss(z, z + 0.01 * torch.randn_like(z)), method.loss(z, projector(torch.randn(32, 16)))
    assert same.dim() == 0 and torch.isfinite(same) and same.item() < unrelated.item()
    same.backward()
    assert all(p.grad is not None for p in projector.parameters())
