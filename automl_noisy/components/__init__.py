"""Method families, one registry each. Which slot a family fills is in ``FAMILIES``.

To add a method, write one class in its family's module, decorate it with the family's
``register`` and declare its hyperparameters with ``hyperparameter``; the contract tests in
``tests/components`` then cover it.

>>> from automl_noisy.components import build
>>> from automl_noisy.pipeline import ComponentSpec, Pipeline
>>> build("loss", ComponentSpec("gce", {"q": 0.5}))
GeneralizedCrossEntropy(q=0.5)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from automl_noisy.components.adjustment import adjustments
from automl_noisy.components.correction import corrections
from automl_noisy.components.base import Component
from automl_noisy.components.losses import losses
from automl_noisy.components.mixing import mixings
from automl_noisy.components.models import models
from automl_noisy.components.penalties import penalties
from automl_noisy.components.pretraining import pretrainings
from automl_noisy.components.schemes import schemes
from automl_noisy.components.selection import selectors
from automl_noisy.components.semi import semis
from automl_noisy.pipeline import ComponentSpec, Pipeline
from automl_noisy.registry import Registry


@dataclass(frozen=True)
class Family:
    """A method family: its registry, the slot it fills, and how many choices a pipeline holds."""

    registry: Registry
    slot: str
    optional: bool = False  # 'none' is a valid choice
    multi: bool = False  # a pipeline may hold several (each toggled on or off)


FAMILIES: dict[str, Family] = {
    "model": Family(models, "forward"),
    "scheme": Family(schemes, "forward"),
    "correction": Family(corrections, "targets", optional=True),
    "mixing": Family(mixings, "mixing", optional=True),
    "adjustment": Family(adjustments, "targets", optional=True),
    "loss": Family(losses, "per_sample_loss"),
    "selection": Family(selectors, "weights", optional=True),
    "semi": Family(semis, "unlabeled", optional=True),
    "penalty": Family(penalties, "penalties", optional=True, multi=True),
}


#: Families of a stage before the training step (not a slot): how a network's start is learned.
STAGES: dict[str, Registry] = {"pretraining": pretrainings}


def build(family: str, spec: ComponentSpec) -> Component:
    """Instantiate ``spec`` from ``family``'s registry (a slot's family, or a stage's);
    unknown names and params are UserErrors."""
    registry = FAMILIES[family].registry if family in FAMILIES else STAGES[family]
    cls = registry.get(spec.name)
    return cls.from_params(spec.params, family)


def spelled_out(family: str, spec: ComponentSpec) -> ComponentSpec:
    """``spec`` with every hyperparameter written down, defaults included."""
    return ComponentSpec(spec.name, build(family, spec).params())


def complete(pipeline: Pipeline) -> Pipeline:
    """``pipeline`` with every hyperparameter of every component written down (defaults included): what
    an export writes, so that a default changed later does not change what an exported pipeline trains.

    >>> p = complete(Pipeline(model=ComponentSpec("mlp"), loss=ComponentSpec("gce", {"q": 0.5})))
    >>> p.loss
    ComponentSpec(name='gce', params={'q': 0.5})
    >>> complete(p) == p and p.model.params != {}
    True
    """
    changes: dict = {}
    for family, value in pipeline.methods().items():
        if isinstance(value, tuple):
            changes[family] = tuple(spelled_out(family, c) for c in value)
        elif value is not None:
            changes[family] = spelled_out(family, value)
    if pipeline.pretraining is not None:
        changes["pretraining"] = spelled_out("pretraining", pipeline.pretraining)
    return replace(pipeline, **changes)


__all__ = ["FAMILIES", "STAGES", "Family", "build", "complete", "spelled_out"]
