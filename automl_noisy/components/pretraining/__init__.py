"""Family ``pretraining`` (a stage before the step, not a slot): self-supervised methods that learn
the network's body from the training pool's inputs alone, one module per method.

The inputs carry no label noise, so an encoder learned from them cannot memorize it. A trial then
starts from that body, frozen (only the head trains) or fine-tuned with a smaller learning rate
(``Pipeline.start``). The loop is ``automl_noisy.train.pretrain``; a method supplies its loss and its
projection head.
"""

from automl_noisy.components.base import Pretraining
from automl_noisy.registry import Registry

pretrainings: Registry[type[Pretraining]] = Registry("pretraining")

from automl_noisy.components.pretraining import barlow_twins, simclr  # noqa: E402,F401  (registers)

__all__ = ["pretrainings"]
