"""Replaying the trusted rows in every batch (``Component.trusted_replay``): the trainer appends that
share of the batch size in trusted rows, distinct within a batch, only in the epochs a component asks
for them; a run that replays none shuffles exactly as before."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automl_noisy.data import DataSpec, load_data
from automl_noisy.pipeline import ComponentSpec, Pipeline
from automl_noisy.train import Trainer
from automl_noisy.train.step import TrainingStep

SPEC = DataSpec("synthetic", "symmetric:0.4",
                options={"samples": 300, "features": 4, "classes": 3, "trusted_fraction": 0.1})


@pytest.fixture
def batches(monkeypatch):
    """Trains a Trainer to the end; every batch's sample indices, per epoch, as the step got them."""
    seen: list[list[np.ndarray]] = []
    call = TrainingStep.__call__

    def recording(self, x, labels, idx):
        seen[-1].append(idx.cpu().numpy().copy())
        return call(self, x, labels, idx)

    monkeypatch.setattr(TrainingStep, "__call__", recording)

    def train(trainer: Trainer) -> list[list[np.ndarray]]:
        seen.clear()
        seen.append([])
        for _ in trainer.epochs():  # an epoch's batches all run before it is yielded
            seen.append([])
        return seen[:-1]

    return train


def _pipeline(family: str, name: str, **params) -> Pipeline:
    return Pipeline(model=ComponentSpec("mlp", {"width": 32, "depth": 1}), epochs=3, batch_size=32, data=SPEC,
                    **{family: ComponentSpec(name, params)})


@pytest.mark.parametrize("family,name", [("adjustment", "glc"), ("selection", "meta_weight")])
def test_every_batch_gets_its_share_of_distinct_trusted_rows(batches, family, name):
    data = load_data(SPEC)
    trusted = np.flatnonzero(data.trusted_train)
    extra = {"warmup_epochs": 1} if name == "glc" else {}
    epochs = batches(Trainer(_pipeline(family, name, replay=0.25, **extra), data, device="cpu"))
    assert len(epochs) == 3
    n = len(data.y_train)
    for number, epoch in enumerate(epochs, start=1):
        replayed = 0 if (name == "glc" and number == 1) else 8  # glc's first stage replays none
        own = np.concatenate([b[:len(b) - replayed] for b in epoch])
        # the epoch's own shuffle, every row once (a last batch of one row is folded away)
        assert len(set(own.tolist())) == len(own) >= n - 1 and own.max() < n
        for b in epoch:
            tail = b[len(b) - replayed:]
            assert len(set(tail.tolist())) == replayed and np.isin(tail, trusted).all()


def test_a_run_that_replays_none_shuffles_as_one_without_the_option(batches):
    data = load_data(SPEC)
    with_option = [np.concatenate(e) for e in
                   batches(Trainer(_pipeline("adjustment", "glc", replay=0.0, warmup_epochs=1), data, device="cpu"))]
    without = [np.concatenate(e) for e in
               batches(Trainer(_pipeline("adjustment", "label_smoothing"), data, device="cpu"))]
    assert len(with_option) == len(without) == 3
    assert all(np.array_equal(a, b) for a, b in zip(with_option, without))


def test_the_share_is_capped_at_every_trusted_row_and_needs_some():
    data = load_data(SPEC)
    trainer = Trainer(_pipeline("selection", "meta_weight", replay=1.0), data, device="cpu")
    components = trainer.step.components()
    assert trainer._replayed_per_batch(components, 1) == min(32, int(data.trusted_train.sum()))
    trainer._trusted_idx = None  # as for data without trusted rows
    assert trainer._replayed_per_batch(components, 1) == 0


def test_replay_is_deterministic_under_a_seed():
    data = load_data(SPEC)

    def losses() -> list[float]:
        torch.manual_seed(123)
        return [m.train_loss for m in Trainer(_pipeline("selection", "meta_weight", replay=0.5), data,
                                              device="cpu").epochs()]

    assert losses() == losses()
