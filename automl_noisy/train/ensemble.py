"""The members of a trained model: one model, or the K fold models of a cross-validated recipe
shipped as one model that averages their class probabilities (bagging).

>>> from automl_noisy.pipeline import ComponentSpec, Pipeline
>>> from automl_noisy.train.trainer import build_networks
>>> p = Pipeline(model=ComponentSpec("mlp", {"width": 32}))
>>> folds = Ensemble([build_networks(p, (4,), 3) for _ in range(3)], held_out=(1, 2, 3))
>>> folds.describe(), folds.probabilities(torch.zeros(2, 4), 3).shape
('ensemble of 3 fold models', torch.Size([2, 3]))
>>> sorted(folds.module().state_dict())[0]
'members.0.body.1.bias'
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from automl_noisy.components.base import Classifier
from automl_noisy.train.trainer import saved_module, scheme_log_probs

#: how the members' predictions combine, as ``model.json`` records it
COMBINE = "mean_probability"
#: the start of every tensor name of a member in ``model.pt`` when there are several: ``members.<i>.``
MEMBERS_KEY = "members"


class Ensemble:
    """A trained model's members, each the networks of one training run: one network, or a
    scheme's several (co-teaching's two), which vote as in training's own evaluation
    (:func:`~automl_noisy.train.trainer.scheme_log_probs`). The model's class probabilities are
    the mean of its members' class probabilities: with one member, that member's.

    ``held_out[i]`` is the fold (1-based) member ``i`` did not train on, when the members are the
    fold models of a cross-validated recipe; empty for one model (a refit on the whole pool, or a
    model of a holdout split).
    """

    def __init__(self, members: Sequence[Sequence[Classifier]], held_out: Sequence[int] = ()) -> None:
        if not members or not all(members):
            raise ValueError("an ensemble needs at least one member, and each member at least one network")
        if len(members) > 1 and len(held_out) != len(members):
            raise ValueError(f"{len(members)} members need the fold each held out, got {list(held_out)}")
        self.members = [list(m) for m in members]
        self.held_out = tuple(int(f) for f in held_out) if len(members) > 1 else ()

    @classmethod
    def single(cls, networks: Sequence[Classifier]) -> Ensemble:
        """One model: the networks of one training run."""
        return cls([networks])

    @property
    def networks(self) -> list[Classifier]:
        """Every network, member by member."""
        return [net for member in self.members for net in member]

    def describe(self) -> str:
        """What the model is, in words: ``ensemble of 3 fold models``, or ``one model``."""
        return f"ensemble of {len(self.members)} fold models" if len(self.members) > 1 else "one model"

    def probabilities(self, x: Tensor, num_classes: int, autocast: object = None) -> Tensor:
        """Class probabilities (float32, rows sum to 1) of network inputs ``x``: each member's, from
        its networks' vote, averaged over the members."""
        probs = [scheme_log_probs(member, x, num_classes, autocast).exp()  # type: ignore[arg-type]
                 for member in self.members]
        return probs[0] if len(probs) == 1 else torch.stack(probs).mean(dim=0)

    def accuracy(self, x: Tensor, y: Tensor, num_classes: int, autocast: object = None) -> float:
        """The share of rows of ``x`` whose most probable class is ``y``'s."""
        return float((self.probabilities(x, num_classes, autocast).argmax(dim=1) == y).double().mean())

    def module(self) -> nn.Module:
        """The module whose ``state_dict`` ``model.pt`` holds: for one member the layout a single model
        always had (the network, or a ModuleList of a scheme's networks); for several, each member's
        tensors under ``members.<i>.``."""
        if len(self.members) == 1:
            return saved_module(self.members[0])
        return nn.ModuleDict({MEMBERS_KEY: nn.ModuleList(saved_module(m) for m in self.members)})

    def to(self, device: torch.device) -> Ensemble:
        """Every network on ``device``, in evaluation mode."""
        for net in self.networks:
            net.to(device).eval()
        return self


def members_in(state: dict[str, Tensor]) -> int:
    """How many members the tensors of a ``model.pt`` belong to: the distinct ``members.<i>.``
    prefixes, or 1 when no name has one (the layout of one model)."""
    prefix = MEMBERS_KEY + "."
    indices = {name[len(prefix):].split(".", 1)[0] for name in state if name.startswith(prefix)}
    return len(indices) or 1
