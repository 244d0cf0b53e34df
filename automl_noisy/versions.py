"""The versions of Python and the packages a result depends on, recorded with exports and models."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

VERSIONED = ("automl-noisy", "torch", "torchvision", "optuna", "ray", "scikit-learn", "numpy")


def versions() -> dict[str, str]:
    """``{"python": ..., package: version}`` for the packages of ``VERSIONED`` that are installed."""
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out
