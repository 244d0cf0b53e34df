"""Self-supervised pretraining: what an encoder is made from, how trials start from it, its cache."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from automl_noisy.data import DataSpec, load_data
from automl_noisy.errors import UserError
from automl_noisy.pipeline import ComponentSpec, Pipeline, StartSpec
from automl_noisy.train import Trainer, train_pipeline
from automl_noisy.train.pretrain import EncoderCache, EncoderRequest, make_encoder, pool_inputs

FAST = ComponentSpec("simclr", {"steps": 6, "batch_size": 32})
MLP = ComponentSpec("mlp", {"width": 32, "depth": 1})


def _pretrained(data_spec, start=StartSpec("frozen"), **kw) -> Pipeline:
    return Pipeline(model=MLP, pretraining=FAST, start=start, epochs=2, data=data_spec, **kw)


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_encoder_never_reads_labels_or_test_rows(tiny_spec, tiny_data):
    """Shuffled labels, or other test rows, leave the encoder bit-identical; other training inputs do not."""
    pipeline = _pretrained(tiny_spec)
    request = EncoderRequest.of(pipeline, tiny_data)
    body = make_encoder(request, tiny_data)
    rng = np.random.default_rng(0)
    shuffled = replace(tiny_data, y_train=rng.permutation(tiny_data.y_train), y_val=rng.permutation(tiny_data.y_val),
                       x_test=rng.normal(size=tiny_data.x_test.shape).astype(np.float32))
    assert EncoderRequest.of(pipeline, shuffled).key == request.key
    assert _same(make_encoder(EncoderRequest.of(pipeline, shuffled), shuffled), body)
    moved = replace(tiny_data, x_train=tiny_data.x_train + 1)
    assert EncoderRequest.of(pipeline, moved).key != request.key
    assert len(pool_inputs(tiny_data)) == len(tiny_data.y_train) + len(tiny_data.y_val)


def test_folds_share_the_pool_and_so_the_encoder(tiny_spec):
    from automl_noisy.data.folds import fold_split, pool_dataset

    data = load_data(replace(tiny_spec, folds=3))
    keys = {EncoderRequest.of(_pretrained(data.spec), d).key
            for d in [data, pool_dataset(data), *(fold_split(data, i) for i in range(3))]}
    assert len(keys) == 1


def test_the_key_names_what_determines_the_encoder(tiny_spec, tiny_data):
    base = EncoderRequest.of(_pretrained(tiny_spec), tiny_data).key
    # every default spelled out: a setting left implicit and the same value written down agree
    explicit = replace(_pretrained(tiny_spec), pretraining=ComponentSpec("simclr", {**FAST.params, "temperature": 0.5}))
    assert EncoderRequest.of(explicit, tiny_data).key == base
    others = [replace(_pretrained(tiny_spec), seed=1),
              replace(_pretrained(tiny_spec), model=ComponentSpec("mlp", {"width": 64, "depth": 1})),
              replace(_pretrained(tiny_spec), pretraining=ComponentSpec("simclr", {**FAST.params, "temperature": 0.2})),
              replace(_pretrained(tiny_spec), pretraining=ComponentSpec("barlow_twins", FAST.params))]
    assert len({EncoderRequest.of(p, tiny_data).key for p in others} | {base}) == len(others) + 1


@pytest.mark.parametrize("scheme", ["single", "coteaching"])
def test_a_frozen_body_does_not_change_and_every_network_starts_from_it(scheme, tiny_spec, tiny_data):
    extra = {"scheme": ComponentSpec(scheme), "selection": ComponentSpec("small_loss")} if scheme != "single" else {}
    pipeline = replace(_pretrained(tiny_spec), model=ComponentSpec("mlp", {"width": 32, "depth": 2}), **extra)
    encoder = make_encoder(EncoderRequest.of(pipeline, tiny_data), tiny_data)
    trainer = Trainer(pipeline, tiny_data, encoder=encoder)
    heads = [net.head.weight.detach().clone() for net in trainer.networks]
    list(trainer.epochs())
    for net, head in zip(trainer.networks, heads):
        assert _same({k: v.cpu() for k, v in net.body.state_dict().items()}, encoder)
        assert not torch.equal(net.head.weight, head)  # the head trained


def test_a_frozen_cnn_keeps_its_batch_norm_statistics():
    data = load_data(DataSpec("digits", "symmetric:0.2", options={}))
    pipeline = Pipeline(model=ComponentSpec("cnn", {"channels": 8}), pretraining=FAST, start=StartSpec("frozen"),
                        epochs=1, data=data.spec)
    encoder = make_encoder(EncoderRequest.of(pipeline, data), data)
    trainer = Trainer(pipeline, data, encoder=encoder)
    list(trainer.epochs())
    assert _same(trainer.networks[0].body.state_dict(), encoder)  # running means and variances included


def test_a_fine_tuned_body_trains_at_its_own_rate(tiny_spec, tiny_data):
    pipeline = _pretrained(tiny_spec, start=StartSpec("finetune", 0.1))
    encoder = make_encoder(EncoderRequest.of(pipeline, tiny_data), tiny_data)
    trainer = Trainer(pipeline, tiny_data, encoder=encoder)
    assert _same({k: v.cpu() for k, v in trainer.networks[0].body.state_dict().items()}, encoder)
    head, body = trainer.optimizer.param_groups
    assert body["lr"] == pytest.approx(0.1 * head["lr"])
    assert {id(p) for p in body["params"]} == {id(p) for p in trainer.networks[0].body.parameters()}
    list(trainer.epochs())
    assert not _same(trainer.networks[0].body.state_dict(), encoder)


def test_without_an_encoder_the_trainer_pretrains_the_same_one(tiny_spec, tiny_data):
    pipeline = _pretrained(tiny_spec)
    encoder = make_encoder(EncoderRequest.of(pipeline, tiny_data), tiny_data)
    assert _same(Trainer(pipeline, tiny_data).networks[0].body.state_dict(), encoder)


def test_the_cache_never_uses_a_file_whose_key_differs(tmp_path, tiny_spec, tiny_data):
    request = EncoderRequest.of(_pretrained(tiny_spec), tiny_data)
    cache = EncoderCache(tmp_path)
    events: list[str] = []
    body = cache.obtain(request, tiny_data, events.append)
    assert events[0].startswith("pretraining") and cache.path(request.key).is_file()
    assert _same(cache.obtain(request, tiny_data, events.append), body) and "loaded" in events[-1]
    torch.save({"key": "another", "body": {k: v + 1 for k, v in body.items()}}, cache.path(request.key))
    assert cache.load(request.key) is None
    assert _same(cache.obtain(request, tiny_data, events.append), body) and events[-1].startswith("pretrained")
    cache.path(request.key).write_bytes(b"not a torch file")
    assert cache.load(request.key) is None


def test_train_reuses_the_stored_encoder_or_pretrains_it_again(tmp_path, tiny_spec, tiny_data):
    pipeline = _pretrained(tiny_spec, start=StartSpec("finetune", 0.5))
    events: list[str] = []
    first = train_pipeline(pipeline, tmp_path / "a", data=tiny_data, encoders=tmp_path / "enc", on_event=events.append)
    again = train_pipeline(pipeline, tmp_path / "b", data=tiny_data, encoders=tmp_path / "enc", on_event=events.append)
    fresh = train_pipeline(pipeline, tmp_path / "c", data=tiny_data)  # no cache: pretrained again, same seed
    assert events[0].startswith("pretraining") and "loaded" in events[-1]
    assert first["val_accuracy"] == again["val_accuracy"] == fresh["val_accuracy"]
    saved = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    assert any(k.startswith("body.") for k in saved) and any(k.startswith("head.") for k in saved)


def test_a_pretrained_start_needs_a_method_and_a_method_needs_a_pretrained_start():
    with pytest.raises(UserError, match="needs a pretrained body"):
        Pipeline(model=MLP, start=StartSpec("frozen"))
    with pytest.raises(UserError, match="starts from random weights"):
        Pipeline(model=MLP, pretraining=FAST)
    with pytest.raises(UserError, match="body_lr"):
        StartSpec("finetune", 0.0)
    with pytest.raises(UserError, match="unknown start mode"):
        Pipeline.from_dict({"model": "mlp", "pretraining": "simclr", "start": "thawed"})
    p = Pipeline.from_dict({"model": "mlp", "pretraining": {"name": "simclr", "steps": 5}, "start": {"mode": "frozen"}})
    assert Pipeline.from_dict(p.to_dict()) == p and p.combination()["start"] == "frozen"
