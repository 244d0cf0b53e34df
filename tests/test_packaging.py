"""What a wheel of the project carries: an install from it (not from a checkout) finds its spaces."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from automl_noisy.search.portfolio import DEFAULT_PORTFOLIO
from automl_noisy.search.space import SPACES_DIR, shipped_spaces

ROOT = Path(__file__).resolve().parents[1]


def test_a_wheel_carries_the_search_spaces_and_the_portfolio(tmp_path):
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT / "automl_noisy", source / "automl_noisy", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(source)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("automl_noisy-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = Path(__import__("automl_noisy").__file__).resolve().parent
    assert SPACES_DIR.resolve().parent == package  # read from the package, wherever it is installed
    for name in [*shipped_spaces(), DEFAULT_PORTFOLIO.stem]:
        assert f"automl_noisy/search_spaces/{name}.yaml" in names
