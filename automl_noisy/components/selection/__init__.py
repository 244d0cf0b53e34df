"""Family ``selection`` (slot *weights*): which samples to trust, one module per method.

A selector gives each sample of a batch a weight in ``[0, 1]`` (0: treat as unlabeled) and keeps
a suspicion score per training sample for the label-issue report. Two-network schemes
(``automl_noisy.components.schemes``) feed one network's selection to the other. A selector
that meta-learns its weights (``meta_weight``) looks one step ahead on the trusted rows through
the step's ``Lookahead`` hook (``needs_lookahead``).
"""

from automl_noisy.components.base import Selector
from automl_noisy.registry import Registry

selectors: Registry[type[Selector]] = Registry("selection")

from automl_noisy.components.selection import aum, curriculum, gmm, meta_weight, small_loss, trusted  # noqa: E402,F401  (registers)

__all__ = ["selectors"]
