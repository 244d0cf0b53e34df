"""Family ``correction`` (slot *targets*, before the forward): labels corrected from what the
network has learned, one module per method."""

from automl_noisy.components.base import LabelCorrection
from automl_noisy.registry import Registry

corrections: Registry[type[LabelCorrection]] = Registry("correction")

from automl_noisy.components.correction import self_learning  # noqa: E402,F401  (registers)

__all__ = ["corrections"]
