"""torchvision dataset roots: ``torchvision:NAME:ROOT`` for CIFAR10, CIFAR100, MNIST, FashionMNIST.

The files must already be under ROOT, laid out as torchvision's dataset classes expect them
(``ROOT/cifar-10-batches-py/``, ``ROOT/cifar-100-python/``, ``ROOT/MNIST/raw/``,
``ROOT/FashionMNIST/raw/`` with the extracted ``*-idx?-ubyte`` files); nothing is ever downloaded.
The pool is the dataset's training set followed by its test set: the stratified splits of
``load_data`` apply to the pool (``test_fraction`` keeps its meaning for every source), and
``RawData.original_train`` records how many leading rows are training images, where a label file
with one label per training image (CIFAR-10N, CIFAR-100N) belongs. The labels are the dataset's
own, trusted as clean. MNIST and FashionMNIST are read by torchvision's classes (``download=False``);
CIFAR by :mod:`automl_noisy.data.sources.cifar`, which does not unpickle arbitrary objects.
"""

from __future__ import annotations

import os

import numpy as np

from automl_noisy.data.preprocessing import PIXEL_SCALE
from automl_noisy.data.sources.base import RawData, first_line
from automl_noisy.data.sources.cifar import read_cifar
from automl_noisy.data.spec import DataSpec
from automl_noisy.errors import UserError

DATASETS = ("CIFAR10", "CIFAR100", "MNIST", "FashionMNIST")
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _missing_idx_files(name: str, root: str) -> None:
    raw = os.path.join(root, name, "raw")
    processed = os.path.join(root, name, "processed")
    if all(os.path.isfile(os.path.join(processed, f)) for f in ("training.pt", "test.pt")):
        return  # torchvision's legacy layout, read with weights_only=True
    missing = [f for f in IDX_FILES if not os.path.isfile(os.path.join(raw, f))]
    if not missing:
        return
    never = "download it yourself; automl-noisy never downloads"
    if not os.path.isdir(raw):
        raise UserError(f"{name} not found under {root}: expected {raw} with {', '.join(IDX_FILES)} ({never})")
    if all(os.path.isfile(os.path.join(raw, f + ".gz")) for f in missing):
        raise UserError(f"{name} under {root}: {raw} holds {missing[0]}.gz but not {missing[0]}; extract the "
                        f".gz files there first (gunzip -k {os.path.join(raw, '*.gz')})")
    raise UserError(f"{name} is incomplete under {root}: {raw} lacks {', '.join(missing)} ({never})")


def read_mnist(name: str, root: str) -> RawData:
    """MNIST or FashionMNIST through torchvision (``download=False``): training, then test images."""
    import torch
    import torchvision.datasets

    _missing_idx_files(name, root)
    cls = getattr(torchvision.datasets, name)
    try:
        parts = [cls(root, train=train, download=False) for train in (True, False)]
    except (RuntimeError, OSError, ValueError, TypeError, AssertionError, IndexError, KeyError) as exc:
        raise UserError(f"cannot read {name} under {root}: {first_line(exc)}; the idx files are damaged "
                        f"or not {name}'s") from None
    for part in parts:
        if part.data.ndim != 3 or len(part.data) != len(part.targets):
            raise UserError(f"cannot read {name} under {root}: {len(part.data)} images but "
                            f"{len(part.targets)} labels")
    x = torch.cat([p.data for p in parts]).numpy()
    y = torch.cat([torch.as_tensor(p.targets) for p in parts]).numpy().astype(np.int64)
    classes = tuple(str(c) for c in parts[0].classes)
    if y.size and (y.min() < 0 or y.max() >= len(classes)):
        raise UserError(f"{name} under {root} has labels outside 0..{len(classes) - 1}")
    return RawData(PIXEL_SCALE.apply(x[:, None]), y, classes, True, original_train=len(parts[0].targets),
                   scale=PIXEL_SCALE)


def load_torchvision_source(path: str, spec: DataSpec) -> RawData:
    """``NAME:ROOT``: a torchvision dataset already under ROOT (see the module docstring)."""
    name, sep, root = path.partition(":")
    forms = f"e.g. --data torchvision:CIFAR10:data/, NAME one of {', '.join(DATASETS)}"
    if not sep or not name.strip() or not root.strip():
        raise UserError(f"source torchvision: needs NAME:ROOT, {forms}")
    canonical = {d.lower(): d for d in DATASETS}.get(name.strip().lower().replace("-", "").replace("_", ""))
    if canonical is None:
        raise UserError(f"unknown torchvision dataset {name.strip()!r}; choose one of: {', '.join(DATASETS)}")
    root = os.path.expanduser(root.strip())
    if not os.path.isdir(root):
        raise UserError(f"torchvision root not found: {root} is not a folder ({canonical} is expected under it)")
    return read_cifar(canonical, root) if canonical.startswith("CIFAR") else read_mnist(canonical, root)
