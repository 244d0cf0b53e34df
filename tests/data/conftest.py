"""Fixtures for the data tests: small files written to tmp_path, and a UserError checker."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl_noisy.errors import UserError


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., str]:
    """Write a DataFrame (or a dict of columns) to a CSV file and return ``csv:PATH``."""

    def write(columns: dict | pd.DataFrame, name: str = "data.csv") -> str:
        path = tmp_path / name
        pd.DataFrame(columns).to_csv(path, index=False)
        return f"csv:{path}"

    return write


@pytest.fixture
def write_npz(tmp_path: Path) -> Callable[..., str]:
    """Write arrays to an .npz file and return ``npz:PATH``."""

    def write(name: str = "data.npz", **arrays: np.ndarray) -> str:
        path = tmp_path / name
        np.savez(path, **arrays)
        return f"npz:{path}"

    return write


@pytest.fixture
def raises_user_error() -> Callable[..., object]:
    """``with raises_user_error("label", "--label-column"):`` asserts a one-line UserError whose
    message contains every given fragment."""

    class Check:
        def __init__(self, fragments: tuple[str, ...]) -> None:
            self.fragments = fragments
            self.inner = pytest.raises(UserError)

        def __enter__(self):
            self.info = self.inner.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self.inner.__exit__(*exc)
            message = str(self.info.value)
            assert "\n" not in message, message
            for fragment in self.fragments:
                assert re.search(re.escape(fragment), message), f"{fragment!r} not in {message!r}"
            return suppressed

    return lambda *fragments: Check(fragments)


@pytest.fixture
def blobs() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """``blobs(n_per_class, classes, features)``: separable Gaussian blobs, ``n_per_class`` rows per
    label in ``classes``, shifted by the class position."""

    def make(n_per_class: int = 20, classes: tuple = (0, 1, 2), features: int = 3,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        y = np.repeat(np.array(classes), n_per_class)
        codes = np.repeat(np.arange(len(classes)), n_per_class)
        x = rng.normal(size=(len(y), features)) + 3.0 * codes[:, None]
        return x, y

    return make
