"""Family ``semi`` (slot *unlabeled*): semi-supervised training on the samples a selector
gives weight 0, one module per method. Each needs a selector (``selection``)."""

from automl_noisy.components.base import SemiSupervised
from automl_noisy.registry import Registry

semis: Registry[type[SemiSupervised]] = Registry("semi")

from automl_noisy.components.semi import fixmatch, mixmatch  # noqa: E402,F401  (registers)

__all__ = ["semis"]
