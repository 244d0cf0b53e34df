"""Self-supervised pretraining of a network's body, and the cache that computes each encoder once.

An encoder depends on the inputs it learns from (the training pool: train and validation rows, in
source-row order; never a test row, never a label), the architecture, the pretraining method with
its settings, and the seed; :func:`encoder_key` hashes exactly these, so any two trials, folds or
``train`` runs that agree on them share one encoder. :class:`EncoderCache` keeps encoders as files
named by their key (``torch.save`` of the body's ``state_dict``, read back with
``weights_only=True``), so a resumed search or a later ``train`` reuses them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from automl_noisy.components import build, spelled_out
from automl_noisy.components.augment import pretraining_views
from automl_noisy.components.base import ModelFactory, Pretraining
from automl_noisy.data import NoisyDataset
from automl_noisy.errors import UserError
from automl_noisy.pipeline import ComponentSpec, Pipeline

#: the threads pretraining uses unless told: an encoder computed again with as many threads is
#: bit-identical on CPU (a search gives an encoder the cores that are free when it is pretrained)
PRETRAIN_THREADS = 1

Encoder = Mapping[str, Tensor]  # the body's state_dict


def pool_inputs(data: NoisyDataset) -> np.ndarray:
    """The inputs pretraining learns from: every training and validation row (whatever the folds),
    in source-row order; no test row, no label."""
    x = np.concatenate([data.x_train, data.x_val])
    order = np.argsort(np.concatenate([data.train_index, data.val_index]), kind="stable")
    return np.ascontiguousarray(x[order])


@dataclass(frozen=True)
class EncoderRequest:
    """What determines an encoder: the pool's inputs (by hash), the architecture, the method with its
    settings, and the seed."""

    model: ComponentSpec
    pretraining: ComponentSpec
    seed: int
    inputs: str  # sha256 of the pool's inputs
    input_shape: tuple[int, ...]

    @classmethod
    def of(cls, pipeline: Pipeline, data: NoisyDataset) -> "EncoderRequest":
        if pipeline.pretraining is None:
            raise ValueError("the pipeline starts from random weights; it needs no encoder")
        x = pool_inputs(data)
        # every parameter spelled out, so a default left implicit and the same default written down agree
        model, method = spelled_out("model", pipeline.model), spelled_out("pretraining", pipeline.pretraining)
        return cls(model, method, pipeline.seed, hashlib.sha256(x.tobytes()).hexdigest(), tuple(x.shape[1:]))

    @property
    def key(self) -> str:
        text = json.dumps({"model": self.model.to_dict(), "pretraining": self.pretraining.to_dict(), "seed": self.seed,
                           "inputs": self.inputs, "shape": list(self.input_shape)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def describe(self) -> str:
        return f"{self.pretraining.name} for {self.model.name} (encoder {self.key[:8]})"

    def body_shapes(self) -> dict[str, tuple[int, ...]]:
        """The name and shape of every tensor of the body this request pretrains (built on PyTorch's
        meta device: no memory, no computation)."""
        factory: ModelFactory = build("model", self.model)  # type: ignore[assignment]
        with torch.device("meta"):
            net = factory.build(self.input_shape, 2)
        return {k: tuple(v.shape) for k, v in net.body.state_dict().items()}

    def problem(self, body: Encoder) -> str | None:
        """Why ``body`` cannot be this request's encoder (other tensors, other shapes, non-finite or
        non-floating values), or None when it can."""
        expected = self.body_shapes()
        if set(body) != set(expected):
            return f"it holds other tensors than the body of {self.model.name} ({len(body)} against {len(expected)})"
        for name, shape in expected.items():
            tensor = body[name]
            if not isinstance(tensor, Tensor) or tuple(tensor.shape) != shape:
                return f"tensor {name} has shape {tuple(getattr(tensor, 'shape', ()))}, the body needs {shape}"
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                return f"tensor {name} holds NaN or infinite values"
        return None


def _method(spec: ComponentSpec) -> Pretraining:
    return build("pretraining", spec)  # type: ignore[return-value]


def pretrain_body(model: ComponentSpec, method_spec: ComponentSpec, x: np.ndarray, seed: int,
                  on_progress: Callable[[int, int, float], None] | None = None,
                  device: str | torch.device = "cpu", threads: int = PRETRAIN_THREADS) -> dict[str, Tensor]:
    """Pretrain the body of ``model`` on the inputs ``x`` with ``method_spec`` and return its
    ``state_dict`` (on the CPU), with ``threads`` CPU threads. On a CPU it is deterministic for a
    seed and a thread count (seeded views and order), so an encoder pretrained again with as many
    threads is bit-identical; on a GPU it is faster but not bit-identical. ``on_progress(step,
    steps, loss)`` hears every epoch."""
    factory: ModelFactory = build("model", model)  # type: ignore[assignment]
    method = _method(method_spec)
    shape = tuple(x.shape[1:])
    if not factory.accepts(shape):
        raise UserError(f"model {model.name!r} does not fit data of shape {shape}")
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = factory.build(shape, 2)
            body, projector = net.body.to(device), method.projector(net.feature_dim).to(device)
            views = pretraining_views(type(factory).spatial, shape)
            params = [*body.parameters(), *projector.parameters()]
            optimizer = torch.optim.AdamW(params, lr=method.lr)
            inputs = torch.from_numpy(x).to(device)
            n = len(inputs)
            batch = min(method.batch_size, n)
            per_epoch = max(1, n // batch)  # full batches only: a contrastive batch needs its negatives
            epochs = math.ceil(method.steps / per_epoch)
            body.train(), projector.train()
            step = 0
            for _ in range(epochs):
                order = torch.randperm(n).to(device)
                total = 0.0
                for i in range(per_epoch):
                    xb = inputs[order[i * batch:(i + 1) * batch]]
                    loss = method.loss(projector(body(views(xb))), projector(body(views(xb))))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += loss.item()
                    step += 1
                    if step >= method.steps:
                        break
                if not math.isfinite(total):
                    raise RuntimeError(f"pretraining {method_spec.name} diverged (non-finite loss)")
                if on_progress is not None:
                    on_progress(step, method.steps, total / per_epoch)
                if step >= method.steps:
                    break
            return {k: v.detach().cpu().clone() for k, v in body.state_dict().items()}
    finally:
        torch.set_num_threads(previous)


def make_encoder(request: EncoderRequest, data: NoisyDataset,
                 on_progress: Callable[[int, int, float], None] | None = None,
                 device: str | torch.device = "cpu", threads: int = PRETRAIN_THREADS) -> dict[str, Tensor]:
    """Pretrain the encoder ``request`` names on ``data``'s pool (which must be the one it hashed),
    with ``threads`` CPU threads."""
    x = pool_inputs(data)
    if hashlib.sha256(x.tobytes()).hexdigest() != request.inputs:
        raise ValueError("the data's pool is not the one the encoder request was made for")
    return pretrain_body(request.model, request.pretraining, x, request.seed, on_progress, device, threads)


class EncoderCache:
    """Encoders as files ``<key>.pt`` in ``folder``. A file that cannot be read or whose recorded key
    differs from its name is never used: the encoder is computed again and the file replaced."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.pt"

    def load(self, key: str, request: EncoderRequest | None = None) -> dict[str, Tensor] | None:
        """The stored encoder ``key`` (None when there is none or it cannot be used: see :meth:`read`)."""
        return self.read(key, request)[0]

    def read(self, key: str, request: EncoderRequest | None = None) -> tuple[dict[str, Tensor] | None, str | None]:
        """The stored encoder ``key``, or None with the reason it cannot be used (None when there is
        no file): a file that cannot be read, records another key, or (checked against ``request``)
        holds tensors of other names or shapes than the body, or NaN or infinite values."""
        path = self.path(key)
        if not path.is_file():
            return None, None
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - a torn or foreign file is recomputed, never trusted
            return None, f"it cannot be read ({type(e).__name__})"
        if not isinstance(stored, dict) or stored.get("key") != key or not isinstance(stored.get("body"), dict):
            return None, "it records another key"
        problem = request.problem(stored["body"]) if request is not None else None
        return (None, problem) if problem else (stored["body"], None)

    def save(self, key: str, body: Encoder) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{key}.", suffix=".tmp")
            os.close(fd)
            torch.save({"key": key, "body": dict(body)}, tmp)
            os.replace(tmp, self.path(key))  # atomic: a reader never sees half a file
        except OSError as e:
            raise UserError(f"cannot write the encoder cache {self.folder}: {e.strerror or e}; "
                            "pass --encoders with a writable folder") from None

    def obtain(self, request: EncoderRequest, data: NoisyDataset,
               on_event: Callable[[str], None] | None = None, threads: int = PRETRAIN_THREADS) -> dict[str, Tensor]:
        """The encoder ``request`` names: from the cache, or pretrained now (with ``threads``) and stored."""
        body, problem = self.read(request.key, request)
        if body is not None:
            if on_event:
                on_event(f"encoder {request.describe()} loaded from {self.folder}")
            return body
        if problem and on_event:
            on_event(f"encoder file {self.path(request.key)} is not used: {problem}; it is pretrained again")
        if on_event:
            on_event(f"pretraining {request.describe()} on {len(data.y_train) + len(data.y_val)} rows ...")
        start = time.perf_counter()
        body = make_encoder(request, data, threads=threads)
        self.save(request.key, body)
        if on_event:
            on_event(f"pretrained {request.describe()} in {time.perf_counter() - start:.0f} s, "
                     f"stored in {self.folder}")
        return body
