"""The slots of the training step and the tiny base class of each (DESIGN.md section 2).

For a batch ``(x, y_noisy, idx)`` the step runs the slots in this order::

    targets  = one_hot(y)                         # (B, K)
    x, targets = mixing(x, targets)               # Mixing
    logits   = model(x)                           # ModelFactory builds the network
    logits, targets = adjustment(logits, targets) # TargetAdjustment
    per_sample = loss(logits, targets)            # PerSampleLoss -> (B,)
    loss = mean(per_sample) + sum(penalty(model, logits))   # Penalty

A component is a dataclass whose fields are its hyperparameters, declared with
:func:`hyperparameter` (default and range in one place). It knows its slot and nothing of
Optuna or Ray. Components that keep per-sample state set it up in ``setup`` and update it in
``on_epoch_end``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from automl_noisy.errors import UserError
from automl_noisy.hparams import Choice, Float, HParam, Int


def hyperparameter(default: Any, low: Any = None, high: Any = None, *, log: bool = False,
                   choices: tuple[Any, ...] | list[Any] | None = None) -> Any:
    """A dataclass field that is also a searchable hyperparameter.

    ``q: float = hyperparameter(0.7, 0.05, 1.0)`` declares a float in [0.05, 1] with default 0.7;
    an int default declares an int range; ``choices=`` declares a categorical.
    """
    if choices is not None:
        decl: HParam = Choice(default, tuple(choices))
    elif isinstance(default, bool):
        decl = Choice(default, (False, True))
    elif isinstance(default, int):
        decl = Int(default, int(low), int(high), log)
    else:
        decl = Float(float(default), float(low), float(high), log)
    return field(default=default, metadata={"hparam": decl})


@dataclass(frozen=True)
class TrainInfo:
    """What a component may know of the run at ``setup``: sizes and device, nothing else."""

    num_train: int
    num_classes: int
    input_shape: tuple[int, ...]
    epochs: int
    device: torch.device


@dataclass
class Component:
    """Base of every method. Subclasses are dataclasses; ``name`` is set by the registry."""

    name: ClassVar[str] = ""
    slot: ClassVar[str] = ""

    @classmethod
    def hyperparameters(cls) -> dict[str, HParam]:
        return {f.name: f.metadata["hparam"] for f in fields(cls) if "hparam" in f.metadata}

    @classmethod
    def from_params(cls, params: Mapping[str, Any], family: str = "") -> "Component":
        """Build from a (possibly partial) parameter mapping, checking names and ranges."""
        declared = cls.hyperparameters()
        unknown = sorted(set(params) - set(declared))
        label = f"{family}.{cls.name}" if family else cls.name
        if unknown:
            valid = ", ".join(declared) or "none"
            raise UserError(f"{label} has no parameter {', '.join(unknown)}; its parameters: {valid}")
        checked = {k: declared[k].check(f"{label}.{k}", v) for k, v in params.items()}
        return cls(**checked)

    def params(self) -> dict[str, Any]:
        """Every hyperparameter with its value (defaults included): what an export writes."""
        return {name: getattr(self, name) for name in self.hyperparameters()}

    def setup(self, info: TrainInfo) -> None:
        """Called once before training; allocate per-sample state here."""

    def on_epoch_end(self, epoch: int) -> None:
        """Called after each epoch; update state read in the next epoch."""


class PerSampleLoss(Component, ABC):
    """Slot *per-sample loss*: ``(logits (B,K), soft targets (B,K)) -> (B,)``."""

    slot: ClassVar[str] = "per_sample_loss"

    @abstractmethod
    def __call__(self, logits: Tensor, targets: Tensor) -> Tensor: ...


class TargetAdjustment(Component, ABC):
    """Slot *targets*: adjust targets (or the logits they are compared with) after the forward."""

    slot: ClassVar[str] = "targets"

    @abstractmethod
    def __call__(self, logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]: ...


class Mixing(Component, ABC):
    """Slot *mixing*: ``(x, targets) -> (mixed x, mixed targets)`` before the forward."""

    slot: ClassVar[str] = "mixing"

    @abstractmethod
    def __call__(self, x: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]: ...


class Penalty(Component, ABC):
    """Slot *penalties*: a scalar added to the loss, from the network and/or its logits."""

    slot: ClassVar[str] = "penalties"

    @abstractmethod
    def __call__(self, model: nn.Module, logits: Tensor) -> Tensor: ...


class Classifier(nn.Module):
    """A network with a feature extractor and a linear head: ``forward(x) = head(features(x))``.

    Methods that work in feature space (prototypes, attention mixup, density curricula) call
    ``features``; everything else calls the module.
    """

    def __init__(self, body: nn.Module, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.body = body
        self.head = nn.Linear(feature_dim, num_classes)
        self.feature_dim = feature_dim

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


class ModelFactory(Component, ABC):
    """Slot *forward* (architecture): builds a :class:`Classifier` for a data shape."""

    slot: ClassVar[str] = "forward"

    @classmethod
    def accepts(cls, input_shape: tuple[int, ...]) -> bool:
        """Whether this architecture fits data of this per-sample shape."""
        return True

    @abstractmethod
    def build(self, input_shape: tuple[int, ...], num_classes: int) -> Classifier: ...
