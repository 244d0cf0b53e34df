"""The training step on a CUDA GPU, where it runs in mixed precision (bfloat16): every registry entry in
the real step, the DivideMix preset on a pretrained start, and a model trained on the GPU that a
machine without one loads and predicts with. Skipped where torch sees no CUDA device (the CI machine
has none); on a GPU machine, from the repository root:

    python -m pytest -p no:cacheprovider tests/test_cuda.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from automl_noisy.data import DataSpec, load_data
from automl_noisy.data.folds import pool_dataset
from automl_noisy.pipeline import ComponentSpec, Pipeline, StartSpec
from automl_noisy.presets import apply_preset
from automl_noisy.train import Trainer
from automl_noisy.train.final import train_pipeline
from automl_noisy.train.pretrain import EncoderRequest, make_encoder
from tests.components.test_contract import ENTRIES, _entry_pipeline, _ids, tiny_sets  # noqa: F401 - a fixture

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: run on a GPU machine")


@pytest.mark.parametrize("kind", ["vectors", "images"])
@pytest.mark.parametrize("entry", ENTRIES, ids=[_ids(e) for e in ENTRIES])
def test_every_entry_trains_on_the_gpu(entry, kind, tiny_sets):
    """Whole epochs on the GPU with finite metrics, the networks on the device, and the step's loss
    a finite scalar there (its hooks, lookaheads and semi-supervised parts included)."""
    from automl_noisy.components import FAMILIES

    family, name = entry
    data = tiny_sets[kind]
    pipeline = _entry_pipeline(family, name, data.spec)
    if not FAMILIES["model"].registry.get(pipeline.model.name).accepts(data.input_shape):
        pytest.skip(f"{pipeline.model.name} does not accept {kind}")
    trainer = Trainer(pipeline, data, device="cuda")
    metrics = list(trainer.epochs())
    assert all(np.isfinite(m.train_loss) and 0 <= m.val_accuracy <= 1 for m in metrics), metrics
    assert all(p.is_cuda for net in trainer.networks for p in net.parameters())
    idx = torch.arange(16, device="cuda")
    loss = trainer.step(trainer.x_train[idx], trainer.y_train[idx], idx)
    assert loss.dim() == 0 and torch.isfinite(loss)


def test_dividemix_on_a_pretrained_start_learns_on_the_gpu():
    """The preset on digits, its cnn fine-tuned from an encoder pretrained on the GPU: it learns (far
    above chance on the clean test split at 40 % symmetric noise)."""
    data = pool_dataset(load_data(DataSpec("digits", "symmetric:0.4")))
    base = Pipeline(model=ComponentSpec("cnn"), epochs=8, batch_size=64, data=data.spec, start=StartSpec("finetune"),
                    pretraining=ComponentSpec("simclr", {"steps": 300, "batch_size": 128}))
    pipeline = apply_preset("dividemix", base, len(data.y_train))
    encoder = make_encoder(EncoderRequest.of(pipeline, data), data, device="cuda")
    *_, last = Trainer(pipeline, data, device="cuda", encoder=encoder).epochs()
    assert last.test_accuracy > 0.5, last  # chance: 0.1


def test_a_model_trained_on_the_gpu_predicts_on_a_machine_without_one(tmp_path):
    """``train`` on the GPU writes a folder that a process seeing no GPU loads and predicts with, getting
    the test accuracy the training recorded."""
    spec = DataSpec("digits", "symmetric:0.2")
    data = load_data(spec)
    pipeline = Pipeline(model=ComponentSpec("cnn"), epochs=3, batch_size=64, data=spec)
    metrics = train_pipeline(pipeline, tmp_path / "model", data=data, device="cuda")
    np.save(tmp_path / "x.npy", data.x_test)
    np.save(tmp_path / "y.npy", data.y_test)
    script = ("import json, sys, numpy as np, torch; from automl_noisy import load; assert not torch.cuda.is_available();"
              "m = load(sys.argv[1]); x = np.load(sys.argv[2]); y = np.load(sys.argv[3]);"
              "print(json.dumps(float((m.probabilities(x).argmax(axis=1) == y).mean())))")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "model"), str(tmp_path / "x.npy"),
                          str(tmp_path / "y.npy")], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == pytest.approx(metrics["test_accuracy"], abs=1 / len(data.y_test))
