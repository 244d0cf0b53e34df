"""Data: sources, synthetic label noise and stratified splits.

>>> from automl_noisy.data import DataSpec, load_data
>>> data = load_data(DataSpec(source="synthetic", noise="pair:0.2", options={"samples": 500}))
>>> data.num_classes, data.input_shape
(4, (20,))
"""

from automl_noisy.data.dataset import NoisyDataset
from automl_noisy.data.load import load_data
from automl_noisy.data.noise import NoiseSpec, inject_noise, parse_noise, realized_rate
from automl_noisy.data.spec import DataSpec

__all__ = ["DataSpec", "NoisyDataset", "NoiseSpec", "inject_noise", "load_data", "parse_noise", "realized_rate"]
