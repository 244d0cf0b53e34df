"""Meta-Weight-Net and the step's lookahead hook: the meta step against a hand computation, weights
that learn to trust clean rows, the hook's contract (same loss as the step, network untouched, the
optimizer's learning rate, trusted rows, full precision), the refusals, and the search space."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from automl_noisy.components.base import (Classifier, Lookahead, Selector, TrainInfo, functional_logits)
from automl_noisy.components.selection.meta_weight import MetaWeightNet
from automl_noisy.data import DataSpec, load_data
from automl_noisy.errors import UserError
from automl_noisy.pipeline import ComponentSpec, Pipeline
from automl_noisy.train import Trainer
from automl_noisy.train.step import build_scheme

MLP = ComponentSpec("mlp", {"width": 32, "depth": 1})
TRUSTED = DataSpec("synthetic", "symmetric:0.4", options={"samples": 300, "features": 4, "classes": 3,
                                                          "trusted_fraction": 0.2})


def _info(trusted: np.ndarray | None, n: int = 10) -> TrainInfo:
    return TrainInfo(num_train=n if trusted is None else len(trusted), num_classes=2, input_shape=(3,), epochs=3,
                     device=torch.device("cpu"), seed=0, trusted=trusted)


def test_the_meta_step_is_the_gradient_through_a_hand_computed_lookahead():
    """A linear softmax model, one batch: ``theta``'s gradient is that of the trusted rows' CE after
    the step ``W' = W - lr sum_i v_i (p_i - e_y_i) x_i^T / sum_i v_i`` written out by hand (``v_i = 1``
    for the batch's trusted rows, ``V(l_i)`` for the others), and Adam's first step moves each of
    ``theta`` by ``meta_lr * sign(g)``; the network is untouched."""
    g = torch.Generator().manual_seed(0)
    net = Classifier(nn.Identity(), 3, 2)
    x, y = torch.randn(6, 3, generator=g), torch.tensor([0, 1, 1, 0, 1, 0])
    xm, ym = torch.randn(4, 3, generator=g), torch.tensor([1, 0, 0, 1])
    lr = 0.3
    sel = MetaWeightNet(hidden=4, meta_lr=0.01, weight_decay=0.0)
    sel.setup(_info(np.array([True] * 4 + [False] * 6)))
    theta = [p.detach().clone().requires_grad_() for p in sel._net.parameters()]
    before = {n: p.detach().clone() for n, p in net.named_parameters()}

    # by hand: the per-sample CE and its gradient for a linear model
    W, b = net.head.weight.detach(), net.head.bias.detach()
    p = (x @ W.T + b).softmax(dim=1)
    losses = -p[torch.arange(6), y].log()
    v = torch.sigmoid(F.linear(F.linear(losses[:, None], theta[0], theta[1]).relu(), theta[2], theta[3])).squeeze(1)
    batch_trusted = torch.tensor([True, False, True, False, False, False])  # rows 0 and 2 of the data's ten
    v = torch.where(batch_trusted, torch.ones_like(v), v)
    residual = (p - F.one_hot(y, 2)) * (v / v.sum())[:, None]  # (B, K): sum_i v_i (p_i - e_y_i) / sum v
    W2, b2 = W - lr * residual.T @ x, b - lr * residual.sum(dim=0)
    expected = torch.autograd.grad(F.cross_entropy(xm @ W2.T + b2, ym), theta)

    idx = torch.tensor([0, 5, 2, 6, 7, 8])
    look = Lookahead(net, lambda ps: F.cross_entropy(functional_logits(net, ps, x), y, reduction="none"),
                     lambda param: lr, lambda n: (xm, ym))
    sel.observe(x @ W.T + b, y, idx)  # the step shows each batch to the selector before the lookahead
    sel.lookahead(look)
    for param, want, old in zip(sel._net.parameters(), expected, theta):
        assert torch.allclose(param.grad, want, atol=1e-7, rtol=1e-5)
        assert torch.allclose(param.detach(), old.detach() - 0.01 * want / (want.abs() + 1e-8), atol=1e-6)
    for name, param in net.named_parameters():
        assert torch.equal(param, before[name]) and param.grad is None
    # the weights are V at the new theta, detached, 1 for a trusted row; the candidates mask keeps its zeros
    w = sel.weights(losses, p, y, idx, candidates=torch.tensor([True] * 5 + [False]))
    assert not w.requires_grad and w[5] == 0
    assert w[0] == 1 and w[2] == 1
    assert torch.allclose(w[[1, 3, 4]], sel.weight_of(losses).detach()[[1, 3, 4]])
    assert (sel.weight_of(losses) < 1).all()
    # a batch of trusted rows alone has no weight to learn: no meta step
    theta = [q.detach().clone() for q in sel._net.parameters()]
    sel.observe(x[:2], y[:2], torch.tensor([0, 2]))
    sel.lookahead(Lookahead(net, lambda ps: F.cross_entropy(functional_logits(net, ps, x[[0, 2]]), y[[0, 2]],
                                                            reduction="none"), lambda param: lr, lambda n: (xm, ym)))
    assert all(torch.equal(a, b) for a, b in zip(theta, sel._net.parameters()))


def _blobs(tmp_path, n: int = 800, k: int = 4) -> DataSpec:
    """Well separated Gaussian classes, 60 % symmetric noise, a tenth of the rows trusted."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % k
    x = (rng.normal(size=(n, 8)) + 2.0 * rng.normal(size=(k, 8))[y]).astype(np.float32)
    np.savez(tmp_path / "blobs.npz", X=x, y=y)
    return DataSpec(f"npz:{tmp_path / 'blobs.npz'}", "symmetric:0.6", options={"trusted_fraction": 0.1})


def test_weights_learn_to_trust_the_clean_rows(tmp_path):
    """At 60 % symmetric noise, after a few epochs the noisy rows weigh far less than the clean
    untrusted ones (the true noise mask only checks), the trusted rows weigh 1, and V falls with the
    loss."""
    spec = _blobs(tmp_path)
    data = load_data(spec)
    trainer = Trainer(Pipeline(model=MLP, selection=ComponentSpec("meta_weight"), epochs=8, batch_size=32, data=spec),
                      data, device="cpu")
    sel = trainer.step.methods[0].selection
    assert sel.scores() is None  # no weight yet
    list(trainer.epochs())
    scores = sel.scores()
    assert scores.shape == (len(data.y_train),) and np.isfinite(scores).all()
    weight, noisy, trusted = 1 - scores, data.noise_mask, data.trusted_train
    assert 0.5 < noisy[~trusted].mean() < 0.6 and not noisy[trusted].any()
    assert (weight[trusted] == 1).all()
    assert weight[noisy].mean() < 0.5 * weight[~noisy & ~trusted].mean()
    v = sel.weight_of(torch.tensor([0.1, 1.0, 2.0, 4.0])).tolist()
    assert v == sorted(v, reverse=True) and v[0] > 5 * v[-1]


def test_warmup_weighs_every_sample_one_and_runs_no_meta_step():
    data = load_data(TRUSTED)
    pipeline = Pipeline(model=MLP, selection=ComponentSpec("meta_weight", {"warmup_epochs": 1}), epochs=2,
                        batch_size=32, data=TRUSTED)
    trainer = Trainer(pipeline, data, device="cpu")
    sel = trainer.step.methods[0].selection
    theta = [p.detach().clone() for p in sel._net.parameters()]
    epochs = trainer.epochs()
    next(epochs)
    assert all(torch.equal(a, b) for a, b in zip(theta, sel._net.parameters())) and sel.scores() is None
    assert torch.equal(sel.weights(torch.rand(5), None, None, torch.arange(5)), torch.ones(5))
    next(epochs)
    assert not all(torch.equal(a, b) for a, b in zip(theta, sel._net.parameters())) and sel.scores() is not None
    assert not sel.divided()


class _Recorder(Selector):
    """Looks ahead and records what it is handed; weighs every sample 1."""

    needs_lookahead = True

    def __init__(self, network: Classifier) -> None:
        self.network, self.calls = network, []

    def lookahead(self, look: Lookahead) -> None:
        buffers = {n: b.clone() for n, b in self.network.named_buffers()}
        loss = look.loss(look.params)
        loss.sum().backward()  # a lookahead's gradient reaches its own parameters, never the network's
        assert all(torch.equal(b, buffers[n]) for n, b in self.network.named_buffers())
        assert all(p.grad is None for p in self.network.parameters())
        x, y = look.trusted(5)
        self.calls.append(("lookahead", look.network, loss.detach(), dict(look.lr), x, y, torch.is_autocast_enabled("cpu")))

    def weights(self, per_sample: Tensor, logits: Tensor, labels: Tensor, idx: Tensor,
                candidates: Tensor | None = None) -> Tensor:
        self.calls.append(("weights", per_sample))
        return torch.ones_like(per_sample)

    def scores(self) -> np.ndarray | None:
        return None


def test_the_step_hands_a_lookahead_of_the_same_loss_before_the_weights(tmp_path):
    """With input mixing, an adjustment, a robust loss and a batch-norm network: the lookahead's loss at
    the network's parameters is the per-sample loss the weights are asked for, computed on copies of
    the batch-norm statistics; its learning rates are the optimizer's; its trusted rows carry their
    verified labels; and it runs in full precision."""
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    np.savez(tmp_path / "img.npz", X=rng.normal(size=(60, 1, 6, 6)).astype(np.float32) + y[:, None, None, None], y=y)
    spec = DataSpec(f"npz:{tmp_path / 'img.npz'}", "symmetric:0.3", options={"trusted_fraction": 0.2})
    data = load_data(spec)
    pipeline = Pipeline(model=ComponentSpec("cnn", {"channels": 8}), mixing=ComponentSpec("mixup"),
                        adjustment=ComponentSpec("label_smoothing"), loss=ComponentSpec("gce"),
                        selection=ComponentSpec("meta_weight"), epochs=1, batch_size=16, data=spec)
    trainer = Trainer(pipeline, data, device="cpu")
    recorder = _Recorder(trainer.networks[0])
    trainer.step.methods[0].selection = recorder
    heads, bodies = trainer.optimizer.param_groups  # the head's group, and the body's at its own rate
    heads["lr"], bodies["lr"] = 0.123, 0.0456
    idx = torch.arange(16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        trainer.step(trainer.x_train[idx], trainer.y_train[idx], idx)
    (kind, net, loss, rates, x, labels, autocast), (after, per_sample) = recorder.calls
    assert (kind, after) == ("lookahead", "weights") and net is trainer.networks[0]
    assert torch.allclose(loss, per_sample, atol=1e-2)  # the step's own forward ran in bfloat16
    assert rates == {n: 0.123 if n.startswith("head.") else 0.0456 for n, _ in net.named_parameters()}
    assert not autocast
    trusted = np.flatnonzero(data.trusted_train)
    assert x.shape == (5, 1, 6, 6) and len(labels) == 5
    for row, label in zip(x, labels):
        match = [i for i in trusted if torch.equal(trainer.x_train[i], row)]
        assert match and int(label) == data.y_train_clean[match[0]]


def test_the_meta_step_runs_in_full_precision_under_autocast():
    """The meta step's gradient is the same whether the step runs under bfloat16 autocast or not."""
    data = load_data(TRUSTED)
    pipeline = Pipeline(model=MLP, selection=ComponentSpec("meta_weight", {"meta_batch_size": 512}), epochs=1,
                        batch_size=32, data=TRUSTED)
    grads = []
    for precision in (torch.bfloat16, None):
        trainer = Trainer(pipeline, data, device="cpu")
        idx = torch.arange(32)
        with torch.autocast("cpu", dtype=precision or torch.bfloat16, enabled=precision is not None):
            trainer.step(trainer.x_train[idx], trainer.y_train[idx], idx)
        grads.append([p.grad.clone() for p in trainer.step.methods[0].selection._net.parameters()])
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-8) for a, b in zip(*grads))


def test_two_networks_each_look_ahead_on_their_own():
    """Co-teaching: each network's V learns from its own network's lookahead (two V that part ways);
    the scores average the two."""
    data = load_data(TRUSTED)
    pipeline = Pipeline(model=MLP, scheme=ComponentSpec("coteaching"), selection=ComponentSpec("meta_weight"),
                        epochs=2, batch_size=32, data=TRUSTED)
    trainer = Trainer(pipeline, data, device="cpu")
    first, second = (m.selection for m in trainer.step.methods)
    assert all(torch.equal(a, b) for a, b in zip(first._net.parameters(), second._net.parameters()))  # same seed
    metrics = list(trainer.epochs())
    assert all(np.isfinite(m.train_loss) for m in metrics)
    assert not all(torch.equal(a, b) for a, b in zip(first._net.parameters(), second._net.parameters()))
    scores = trainer.suspicion_scores()
    assert np.allclose(scores, (first.scores() + second.scores()) / 2)


def test_without_trusted_rows_setup_and_the_trainer_refuse_in_one_line():
    for trusted in (None, np.zeros(8, dtype=bool)):
        with pytest.raises(UserError, match="meta_weight .* needs trusted rows") as caught:
            MetaWeightNet().setup(_info(trusted))
        assert "\n" not in str(caught.value)
    spec = DataSpec("synthetic", "symmetric:0.4", options={"samples": 120, "features": 4, "classes": 3})
    with pytest.raises(UserError, match="--trusted FILE or --trusted-fraction"):
        Trainer(Pipeline(model=MLP, selection=ComponentSpec("meta_weight"), epochs=1, data=spec), load_data(spec))


def test_semi_supervised_methods_are_refused_with_soft_weights():
    for semi in ("mixmatch", "fixmatch"):
        pipeline = Pipeline(model=MLP, selection=ComponentSpec("meta_weight"), semi=ComponentSpec(semi), data=TRUSTED)
        with pytest.raises(UserError, match=f"semi '{semi}' .* selection 'meta_weight' sets none aside") as caught:
            build_scheme(pipeline)
        assert "\n" not in str(caught.value)


def test_the_default_space_offers_meta_weight_with_trusted_rows_and_never_with_a_semi_part():
    import optuna

    from automl_noisy.search.space import load_space, parse_space

    space = load_space("default")
    assert "meta_weight" not in space.for_shape((8,)).families["selection"]
    trusted = space.for_shape((8,), trusted=True)
    assert "meta_weight" in trusted.families["selection"]
    with pytest.raises(UserError, match="semi='mixmatch' is not a parameter this space draws here"):
        trusted.fixed({"selection": "meta_weight", "semi": "mixmatch"}, TRUSTED)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = []
    for _ in range(150):
        pipeline = trusted.suggest(study.ask(), TRUSTED)
        if pipeline.selection is not None and pipeline.selection.name == "meta_weight":
            drawn.append(pipeline)
            build_scheme(pipeline)  # a valid combination, two-network schemes included
    assert drawn and all(p.semi is None for p in drawn)
    only = parse_space({"families": {"model": ["mlp"], "scheme": ["coteaching"], "selection": ["none", "meta_weight"]}},
                       name="only")
    with pytest.raises(UserError, match="needs a selector, and only selectors that need trusted rows"):
        only.for_shape((8,))
