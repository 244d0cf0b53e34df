"""The slots of the training step and the tiny base class of each (DESIGN.md section 2).

For a batch ``(x, y_noisy, idx)`` the step runs the slots in this order, for each network of the
scheme (``automl_noisy.train.step``)::

    targets  = one_hot(y)                              # (B, K)
    targets  = correction.correct(targets, idx)        # LabelCorrection (shared by the networks)
    x, targets = mixing.mix_inputs(x, targets)         # Mixing (shared by the networks)
    features = net.features(x); logits = net.head(features)   # ModelFactory, Scheme
    logits, targets = adjustment(logits, targets, idx)   # TargetAdjustment
    per_sample = loss(logits, targets)                 # PerSampleLoss -> (B,)
    selection.lookahead(Lookahead(net, ...))           # only a Selector with needs_lookahead
    w = scheme.exchange(selections, per_sample, ...)   # Selector.weights -> (B,) in [0, 1]
    semi = semi.loss(SemiBatch(...))                   # SemiSupervised: weight-0 samples -> extra loss
    loss = sum(w * per_sample) / sum(w) + semi + mixing.feature_loss(...) + sum(penalty(net, logits))

A component is a dataclass whose fields are its hyperparameters, declared with
:func:`hyperparameter` (default and range in one place). It knows its slot and nothing of
Optuna or Ray. Components that keep state set it up in ``setup``, may look at each epoch's start
(``on_epoch_start``) and update their state from a pass over the training data at its end
(``on_epoch_end``, which gets an :class:`EpochEnd`). A two-stage method asks, with
``restart_after``, for the networks to start over after its first stage, keeping its state.
A component that reads the trusted rows (``TrainInfo.trusted``) says so with ``needs_trusted``:
the search offers it only for data with trusted rows; one that needs a trusted training row of every
class (e.g. to estimate a matrix row per class) also says ``needs_trusted_per_class``: the search
offers it only where every training split has them. Such a method may ask for the trusted rows to be
replayed in every batch (``trusted_replay``), where a random batch holds few of them.

A selector that learns its weights by looking one optimizer step ahead (meta-learning: Meta-Weight-Net,
learning to reweight) says so with ``Selector.needs_lookahead``. Before the weights of each batch,
the step hands it, per network, a :class:`Lookahead`: the network, its trainable parameters with
their current learning rates, the batch's per-sample loss as a function of those parameters (the
same targets, mixing, adjustment and loss as the step, through ``torch.func.functional_call``) and
random batches of the trusted rows. The step runs it in full precision (mixed precision off).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F
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
    """What a component may know of the run at ``setup``: sizes, device and which rows are trusted.

    ``trusted`` is a boolean mask over the training samples in index order (the ``idx`` the step
    passes): True for a trusted row, whose label is its verified clean label (``--trusted``,
    ``--trusted-fraction``; ``NoisyDataset.trusted_train``, which follows a fold's rows); None when
    no row is trusted. ``labels`` are the training labels (a trusted row's is its verified label) and
    ``class_names`` the names of the K classes, when the trainer gives them.
    """

    num_train: int
    num_classes: int  # K, not counting extra outputs
    input_shape: tuple[int, ...]
    epochs: int
    device: torch.device
    feature_dim: int = 0  # width of the network's features (what ``Classifier.features`` returns)
    seed: int = 0  # for components that draw random state (e.g. a random subset of samples)
    trusted: np.ndarray | None = None  # (num_train,) bool: the trusted rows; None: none is
    labels: np.ndarray | None = None  # (num_train,) int: the training labels; None: not given
    class_names: tuple[str, ...] = ()  # the K classes' names; (): not given

    def trusted_rows(self, method: str) -> np.ndarray:
        """``trusted``, for a method that needs trusted rows (``method`` names it in the message): a
        UserError when the training data has none."""
        if self.trusted is None or not self.trusted.any():
            raise UserError(f"{method} needs trusted rows in the training data: pass --trusted FILE or "
                            "--trusted-fraction F")
        if len(self.trusted) != self.num_train:
            raise ValueError(f"the trusted mask has {len(self.trusted)} rows for {self.num_train} training samples")
        return self.trusted

    def untrusted_classes(self) -> tuple[str, ...]:
        """The classes (names, else ids) that no trusted training row has; () when the labels are
        not given."""
        from automl_noisy.data.trusted import missing_classes

        if self.labels is None:
            return ()
        missing = missing_classes(self.labels, self.trusted, self.num_classes)
        return tuple(self.class_names[c] if len(self.class_names) == self.num_classes else str(c) for c in missing)


class EpochEnd(Protocol):
    """What a component sees at the end of an epoch: one network's view of the training split.

    ``logits()`` and ``features()`` are computed once per epoch in evaluation mode, over every
    training sample in index order; ``labels`` are the labels training used this epoch.
    """

    epoch: int
    labels: Tensor

    def logits(self) -> Tensor: ...

    def features(self) -> Tensor: ...


@dataclass
class Component:
    """Base of every method. Subclasses are dataclasses; ``name`` is set by the registry."""

    name: ClassVar[str] = ""
    slot: ClassVar[str] = ""
    #: Extra network outputs the component needs beyond the K classes (e.g. AUM's fake class).
    extra_outputs: ClassVar[int] = 0
    #: Whether the method needs trusted rows (``TrainInfo.trusted``); its ``setup`` then refuses a run
    #: without them, and the search offers it only for data that has them.
    needs_trusted: ClassVar[bool] = False
    #: Whether it needs, beyond that, a trusted training row of every class (``TrainInfo.untrusted_classes``);
    #: its ``setup`` then refuses a training split without, and the search offers it only where every
    #: training split has them.
    needs_trusted_per_class: ClassVar[bool] = False

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

    def modules(self) -> list[nn.Module]:
        """Learnable parts the optimizer must train along with the network (none by default)."""
        return []

    def labels_for_epoch(self, labels: Tensor, epoch: int) -> Tensor:
        """The training labels to use in ``epoch`` (the given noisy labels by default)."""
        return labels

    def on_epoch_start(self, epoch: int) -> None:
        """Called before each epoch (1-based)."""

    def on_epoch_end(self, end: EpochEnd) -> None:
        """Called after each epoch; update state read in the next epoch."""

    def restart_after(self) -> int | None:
        """An epoch after which the scheme's networks start over from a fresh initialization, with a
        fresh optimizer and learning-rate schedule for the remaining epochs, while every component
        keeps its state: the second stage of methods that first learn something from a network
        trained on the noisy data, then train a new one with it (forward correction's ``T``, AUM's
        flagged samples). None: never."""
        return None

    def trusted_replay(self, epoch: int) -> float:
        """How many trusted rows join every batch of ``epoch`` besides the batch's own, as a share of
        the batch size (0: none). For a method that learns from the trusted rows, of which a random
        batch holds few (about three of 64 when 5 % of the rows are trusted): the trainer appends
        ``round(share * batch_size)`` of them, drawn at random without replacement within a batch
        (all of them when there are fewer), to every batch, and the whole step sees them as the
        batch's rows (their indices, their verified labels). The trainer takes the largest share of
        the step's components; without trusted rows there is nothing to replay."""
        return 0.0


class PerSampleLoss(Component, ABC):
    """Slot *per-sample loss*: ``(logits (B,K), soft targets (B,K)) -> (B,)``."""

    slot: ClassVar[str] = "per_sample_loss"

    @abstractmethod
    def __call__(self, logits: Tensor, targets: Tensor) -> Tensor: ...

    def from_labels(self, logits: Tensor, labels: Tensor) -> Tensor:
        """The loss for hard labels ``(B,)``: the same as with their one-hot targets. The step
        calls it when no component changed the targets; override it with a faster path."""
        return self(logits, F.one_hot(labels, logits.shape[1]).to(logits.dtype))


class TargetAdjustment(Component, ABC):
    """Slot *targets*: adjust targets (or the logits they are compared with) after the forward.

    ``idx`` are the batch's sample indices (the step always passes them), for methods that treat
    samples differently (e.g. trusted rows); with input mixing, row ``i`` is sample ``idx[i]`` mixed
    with another. None (a caller that has no indices) is for methods that do not read them.
    """

    slot: ClassVar[str] = "targets"

    @abstractmethod
    def __call__(self, logits: Tensor, targets: Tensor, idx: Tensor | None = None) -> tuple[Tensor, Tensor]: ...


class Mixing(Component):
    """Slot *mixing*: mix inputs before the forward, or mix features after it.

    Input mixing overrides ``mix_inputs``; feature mixing overrides ``feature_loss``, an extra
    loss term computed from the batch's features with the network's head.
    """

    slot: ClassVar[str] = "mixing"

    def mix_inputs(self, x: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        return x, targets

    def feature_loss(self, features: Tensor, targets: Tensor, head: nn.Module) -> Tensor | None:
        return None


class LabelCorrection(Component, ABC):
    """Slot *targets*, before the forward: blend or replace targets with corrected labels learned
    at epoch ends (``correct`` sees the batch's sample indices)."""

    slot: ClassVar[str] = "targets"

    @abstractmethod
    def correct(self, targets: Tensor, idx: Tensor) -> Tensor: ...


class Views(Protocol):
    """Weak and strong random views of a batch (``automl_noisy.components.augment``)."""

    def weak(self, x: Tensor) -> Tensor: ...

    def strong(self, x: Tensor) -> Tensor: ...


@dataclass
class SemiBatch:
    """What a semi-supervised method sees of a batch, for the network being trained."""

    x: Tensor  # inputs, before any input mixing
    labels: Tensor  # (B,) the epoch's labels
    idx: Tensor  # (B,) sample indices
    weights: Tensor  # (B,) this network's selection weights: 0 means unlabeled
    clean: Tensor  # (B,) probability that each label is clean (the weights if the selector has none)
    divided: bool  # whether the selector has divided the data yet (False during its warm-up)
    network: int  # the index of the network being trained
    networks: list["Classifier"]  # every network of the scheme
    num_classes: int  # K (networks may have extra outputs beyond it)
    views: Views


@dataclass
class SemiLoss:
    """A semi-supervised method's terms: the unlabeled loss (already weighted by its lambda_u) and,
    when the method also owns the labeled side, the supervised term it replaces."""

    unlabeled: Tensor
    labeled: Tensor | None = None


class SemiSupervised(Component, ABC):
    """Slot *unlabeled*: an extra loss from the samples whose selection weight is 0."""

    slot: ClassVar[str] = "unlabeled"

    @abstractmethod
    def loss(self, batch: SemiBatch) -> SemiLoss | None:
        """The batch's terms, or None to leave the step as it is (e.g. before the data is divided)."""


class Lookahead:
    """One network at one batch, for a selector that looks an optimizer step ahead
    (``Selector.needs_lookahead``): what ``w' = w - lr * grad_w L(w)`` and a loss at ``w'`` need.

    ``params`` are the network's trainable parameters by name (detached from it: a lookahead never
    changes the network, nor its gradients, nor its batch-norm statistics), ``lr`` their current
    learning rates (the optimizer's; a body fine-tuned at its own rate has its own).
    ``loss(params)`` is the batch's per-sample loss ``(B,)`` with the network's parameters replaced
    by ``params``: the batch the step trains on, with its targets, input mixing, adjustment and loss
    (not its weights, penalties or semi-supervised terms). ``trusted(n)`` draws up to ``n`` random
    trusted training rows ``(x, y)`` with their verified labels; None when the data has none. The
    step builds one from the network, ``loss``, ``lr`` (a parameter's current learning rate) and
    ``trusted``.

    >>> net = Classifier(nn.Identity(), 2, 2)
    >>> x, y = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    >>> look = Lookahead(net, lambda p: F.cross_entropy(functional_logits(net, p, x), y, reduction="none"),
    ...                  lambda p: 0.5)
    >>> sorted(look.params)
    ['head.bias', 'head.weight']
    >>> grads = torch.autograd.grad(look.loss(look.params).sum(), list(look.params.values()))
    >>> moved = look.step(look.params, grads)
    >>> bool(look.loss(moved) < look.loss(look.params))
    True
    """

    def __init__(self, network: "Classifier", loss: Callable[[dict[str, Tensor]], Tensor],
                 lr: Callable[[Tensor], float],
                 trusted: Callable[[int], tuple[Tensor, Tensor]] | None = None) -> None:
        self.network, self.loss, self.trusted = network, loss, trusted
        named = [(n, p) for n, p in network.named_parameters() if p.requires_grad]
        self.params: dict[str, Tensor] = {n: p.detach().requires_grad_() for n, p in named}
        self.lr: dict[str, float] = {n: lr(p) for n, p in named}

    def logits(self, params: Mapping[str, Tensor], x: Tensor) -> Tensor:
        """The network's logits for ``x`` with its parameters replaced by ``params``."""
        return functional_logits(self.network, params, x)

    def step(self, params: Mapping[str, Tensor], grads: tuple[Tensor | None, ...] | list[Tensor | None]
             ) -> dict[str, Tensor]:
        """One plain SGD step, ``p - lr_p * g`` per parameter (None: a parameter the loss did not use)."""
        return {n: p if g is None else p - self.lr[n] * g for (n, p), g in zip(params.items(), grads)}


def functional_logits(network: nn.Module, params: Mapping[str, Tensor], x: Tensor) -> Tensor:
    """``network(x)`` with the given parameters in place of its own (the others kept), on copies of
    its buffers: batch-norm statistics update the copies, never the network."""
    from torch.func import functional_call

    buffers = {n: b.clone() for n, b in network.named_buffers()}
    return functional_call(network, {**buffers, **params}, (x,))


class Selector(Component, ABC):
    """Slot *weights* (sample selection): per-sample weights in ``[0, 1]``, 0 meaning "treat as
    unlabeled", and per-sample suspicion scores for the label-issue report."""

    slot: ClassVar[str] = "weights"
    #: Whether the step calls ``lookahead`` with a :class:`Lookahead` of the network before each
    #: batch's ``weights`` (meta-learned weights).
    needs_lookahead: ClassVar[bool] = False
    #: Whether weight 0 sets a sample aside as unlabeled, the set a semi-supervised method trains on.
    #: False for soft weights that never are 0: the pipeline then takes no semi-supervised method.
    divides: ClassVar[bool] = True

    def lookahead(self, look: Lookahead) -> None:
        """With ``needs_lookahead``: called once per batch and network, before ``weights`` is asked
        for that network's losses (by the scheme, which may give them to the other network)."""

    def observe(self, logits: Tensor, labels: Tensor, idx: Tensor) -> None:
        """See the training logits of a batch (for statistics gathered during training)."""

    @abstractmethod
    def weights(self, per_sample: Tensor, logits: Tensor, labels: Tensor, idx: Tensor,
                candidates: Tensor | None = None) -> Tensor:
        """Weights ``(B,)`` for the batch; only ``candidates`` (a bool mask) may get a weight > 0."""

    @abstractmethod
    def scores(self) -> np.ndarray | None:
        """Suspicion of each training sample's label (higher is more suspect), or None if the
        selector has not yet seen an epoch."""

    def clean_probability(self, idx: Tensor) -> Tensor | None:
        """The probability that each sample's label is clean, for selectors that estimate one."""
        return None

    def divided(self) -> bool:
        """Whether the selector sets samples aside yet (False during its warm-up). Called per
        batch: override it with a cheap check."""
        return self.scores() is not None


class Scheme(Component):
    """Slot *forward* (networks): how many networks train and which weights each trains with.

    The default is a single network that trains with its own selection.
    """

    slot: ClassVar[str] = "forward"
    networks: ClassVar[int] = 1
    #: Two-network schemes exchange selections, so they need a selector.
    needs_selection: ClassVar[bool] = False

    def source(self, network: int) -> int:
        """Which network's selector chooses the samples ``network`` trains on."""
        return network

    def exchange(self, selectors: list["Selector | None"], per_sample: list[Tensor], logits: list[Tensor],
                 labels: Tensor, idx: Tensor) -> list[Tensor | None]:
        """Per network, the weights it trains with (None: every sample counts fully)."""
        return [s.weights(l.detach(), z.detach(), labels, idx) if s is not None else None
                for s, l, z in zip(selectors, per_sample, logits)]


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


@dataclass
class Pretraining(Component, ABC):
    """Stage *pretraining*, before the step (not a slot): learns a network's body from the inputs
    alone, never a label, through a projection head that is discarded afterwards. The training loop
    (``automl_noisy.train.pretrain``) draws two random views of each batch (views chosen by the model
    and the data, ``automl_noisy.components.augment.pretraining_views``), projects the body's
    features of each with ``projector`` and minimizes ``loss``. Its settings are fixed per data kind,
    never searched: noisy labels cannot score them.
    """

    slot: ClassVar[str] = "pretraining"

    steps: int = hyperparameter(1000, 1, 200_000, log=True)  # optimizer steps (epochs follow from the data)
    batch_size: int = hyperparameter(256, 16, 4096, log=True)
    lr: float = hyperparameter(1e-3, 1e-5, 1e-1, log=True)  # AdamW
    projection_dim: int = hyperparameter(128, 16, 8192, log=True)

    def projector(self, feature_dim: int) -> nn.Module:
        """The projection head on the body's features (SimCLR's two-layer MLP by default)."""
        return nn.Sequential(nn.Linear(feature_dim, feature_dim), nn.ReLU(),
                             nn.Linear(feature_dim, self.projection_dim))

    @abstractmethod
    def loss(self, z1: Tensor, z2: Tensor) -> Tensor:
        """The loss of the projections ``(B, D)`` of two views; row ``i`` of both is one input."""


class ModelFactory(Component, ABC):
    """Slot *forward* (architecture): builds a :class:`Classifier` for a data shape."""

    slot: ClassVar[str] = "forward"
    #: whether the network sees an image as an image (convolutions): it then trains on image views
    #: (shifts, flips); a model that flattens its input gets feature-space views
    spatial: ClassVar[bool] = False

    @classmethod
    def accepts(cls, input_shape: tuple[int, ...]) -> bool:
        """Whether this architecture fits data of this per-sample shape."""
        return True

    @abstractmethod
    def build(self, input_shape: tuple[int, ...], num_classes: int) -> Classifier: ...
