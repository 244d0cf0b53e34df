"""Family ``mixing`` (slot *mixing*): combine inputs and targets before the forward pass
(``mix_inputs``), or mix features after it into an extra loss term (``feature_loss``).
One module per method.
"""

from automl_noisy.components.base import Mixing
from automl_noisy.registry import Registry

mixings: Registry[type[Mixing]] = Registry("mixing")

from automl_noisy.components.mixing.afm import AttentiveFeatureMixup  # noqa: E402  (registers)
from automl_noisy.components.mixing.mixup import Mixup  # noqa: E402  (registers)

__all__ = ["AttentiveFeatureMixup", "Mixup", "mixings"]
