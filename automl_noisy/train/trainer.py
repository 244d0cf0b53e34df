"""Train one pipeline on one dataset: the loop that yields an EpochMetrics per epoch."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from automl_noisy.components import FAMILIES, build
from automl_noisy.components.augment import views_for
from automl_noisy.components.base import Classifier, Component, ModelFactory, TrainInfo
from automl_noisy.data import NoisyDataset
from automl_noisy.data.folds import fold_split, trusted_gap
from automl_noisy.errors import UserError
from automl_noisy.pipeline import Pipeline
from automl_noisy.train.pretrain import Encoder, EncoderRequest, make_encoder
from automl_noisy.train.step import Methods, TrainingStep, TrustedRows, build_scheme

EVAL_BATCH = 4096


@dataclass(frozen=True)
class EpochMetrics:
    """What one epoch of a trial reports to the search driver."""

    epoch: int  # 1-based
    train_loss: float  # mean training loss over the epoch's batches
    val_accuracy: float  # the objective: on the validation split's trusted rows when they rank trials
    # (NoisyDataset.trusted_objective), else on all of its rows with their noisy labels
    test_accuracy: float | None  # on the test split, when its labels are known to be clean
    seconds: float  # wall time of the epoch, evaluation included
    label_issue_auroc: float | None = None  # last epoch only, when the true noise is known
    val_correct: str | None = None  # per scored validation row, whether it was predicted right (pack_rows)
    noisy_val_accuracy: float | None = None  # on every validation row, when trusted rows score (val_accuracy)

    def to_dict(self) -> dict:
        return asdict(self)


def pack_rows(flags: np.ndarray) -> str:
    """Booleans, one per row, as compact text: their count, then the bits packed in base64 (245
    characters for 1437 rows).

    >>> pack_rows(np.array([True, False, True]))
    '3:oA=='
    >>> unpack_rows('3:oA==').tolist()
    [True, False, True]
    """
    import base64

    flags = np.asarray(flags, dtype=bool)
    return f"{len(flags)}:" + base64.b64encode(np.packbits(flags).tobytes()).decode("ascii")


def unpack_rows(text: str) -> np.ndarray:
    """The booleans :func:`pack_rows` packed (a ValueError for text it did not write)."""
    import base64
    import binascii

    count, _, bits = text.partition(":")
    try:
        out = np.unpackbits(np.frombuffer(base64.b64decode(bits, validate=True), dtype=np.uint8), count=int(count))
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"not a packed row record: {text[:40]!r}") from e
    if len(out) != int(count):
        raise ValueError(f"a packed row record of {len(out)} rows says {count}")
    return out.astype(bool)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the trial fails with this as its reason."""


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The device ``name`` names (default: cuda when available), or a one-line error when it is not a
    device or not on this machine."""
    if name is None:
        return default_device()
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device {str(name)!r}; use cpu, or cuda (cuda:N) on a machine with a GPU") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {str(name)!r} asked for, but no CUDA GPU is available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"device {str(name)!r} asked for, but this machine has {torch.cuda.device_count()} GPU(s)")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"device {str(name)!r} is not supported; use cpu or cuda")
    return device


def check_fits(pipeline: Pipeline, input_shape: tuple[int, ...]) -> ModelFactory:
    """The pipeline's model factory; a UserError when the model does not take inputs of ``input_shape``
    (checked before anything is pretrained or trained)."""
    factory: ModelFactory = build("model", pipeline.model)  # type: ignore[assignment]
    if not factory.accepts(input_shape):
        raise UserError(f"model {factory.name!r} does not fit data of shape {input_shape}; "
                        "choose another model in the pipeline")
    return factory


def check_trusted(pipeline: Pipeline, data: NoisyDataset) -> None:
    """A UserError (one line, before anything is pretrained or trained) when a method of the pipeline
    needs trusted rows (``needs_trusted``) and ``data`` has none, or needs a trusted training row of
    every class (``needs_trusted_per_class``, e.g. ``glc``) and a split a model trains on lacks one
    (:func:`automl_noisy.data.folds.trusted_gap`)."""
    for family, value in pipeline.methods().items():
        for spec in value if isinstance(value, tuple) else (value,) if value is not None else ():
            method = FAMILIES[family].registry.get(spec.name)
            if method.needs_trusted and data.trusted_train is None:
                raise UserError(f"{family} {spec.name} needs trusted rows in the training data: pass --trusted FILE "
                                "or --trusted-fraction F, or choose another " + family)
            gap = trusted_gap(data) if method.needs_trusted_per_class else None
            if gap is not None:
                raise UserError(f"{family} {spec.name} needs a trusted training row of every class, but {gap}: add "
                                f"trusted rows of each class (--trusted FILE), raise --trusted-fraction, or choose "
                                f"another {family}")


class Trainer:
    """Holds the networks, the training step and the data tensors of one training run.

    >>> from automl_noisy.data import DataSpec, load_data
    >>> from automl_noisy.pipeline import ComponentSpec, Pipeline
    >>> p = Pipeline(model=ComponentSpec("mlp", {"width": 32}), epochs=2)
    >>> metrics = list(Trainer(p, load_data(p.data)).epochs())
    >>> [m.epoch for m in metrics]
    [1, 2]
    """

    def __init__(self, pipeline: Pipeline, data: NoisyDataset, device: str | torch.device | None = None,
                 threads: int | None = 1, encoder: Encoder | None = None) -> None:
        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(pipeline.seed)
        self.pipeline, self.data = pipeline, data
        self.device = resolve_device(device)
        factory = check_fits(pipeline, data.input_shape)
        scheme = build_scheme(pipeline)
        methods = [Methods.from_pipeline(pipeline, leader=j == 0) for j in range(scheme.networks)]
        k = data.num_classes
        outputs = network_outputs(methods[0], k)
        self.networks: list[Classifier] = [factory.build(data.input_shape, outputs).to(self.device)  # type: ignore[attr-defined]
                                           for _ in range(scheme.networks)]
        self._encoder = self._pretrained_body(encoder)
        for net in self.networks:
            self._start(net)
        self.x_train, self.y_train = self._tensors(data.x_train, data.y_train)
        trusted = data.trusted_train  # their indices: the meta batches draw them, and batches may replay them
        self._trusted_idx = (torch.from_numpy(np.flatnonzero(trusted)).to(self.device)
                             if trusted is not None and trusted.any() else None)
        self._groups: tuple[torch.optim.Optimizer, dict[int, dict]] | None = None  # param -> its group
        self.step = TrainingStep(scheme, methods, self.networks, k, outputs,
                                 views_for(type(factory).spatial, data.input_shape),
                                 self.learning_rate, self._trusted_rows(pipeline.seed))
        info = TrainInfo(len(data.y_train), k, data.input_shape, pipeline.epochs, self.device,
                         self.networks[0].feature_dim, pipeline.seed, data.trusted_train, data.y_train,
                         data.class_names)
        for component in self.step.components():
            component.setup(info)
        body = [p for net in self.networks for p in net.body.parameters() if p.requires_grad]
        params = [p for net in self.networks for p in net.head.parameters()]
        for component in self.step.components():
            for module in component.modules():
                params += list(module.to(self.device).parameters())
        groups = [{"params": params}]
        if body:  # a frozen body trains not at all; a fine-tuned one at its own rate
            groups.append({"params": body, "lr": pipeline.optimizer.lr * pipeline.start.body_lr})
        self._factory, self._outputs, self._params = factory, outputs, groups
        self._restarts = {e for c in self.step.components() if (e := c.restart_after()) is not None}
        self._schedule(pipeline.epochs)
        self.x_val, self.y_val = self._tensors(data.x_val, data.y_val)
        # the validation rows that score: the trusted ones when they rank trials, else all (None)
        self._scored = data.trusted_val if data.trusted_objective else None
        clean_test = data.clean_labels_known and len(data.y_test) > 0
        self.x_test, self.y_test = self._tensors(data.x_test, data.y_test) if clean_test else (None, None)
        self._generator = torch.Generator().manual_seed(pipeline.seed)
        # the trusted rows a component replays in every batch (Component.trusted_replay) are drawn from
        # a stream of their own: a run that replays none shuffles as it did before
        self._replay_generator = torch.Generator().manual_seed(pipeline.seed + 1)
        self._epochs_done = 0
        self._train_cache: tuple[int, Tensor] | None = None  # (epochs done, log-probs of x_train)
        self._autocast = autocast_for(self.device)
        self._rng = self._global_rng()  # this trainer's place in torch's global random stream

    def _trusted_rows(self, seed: int) -> TrustedRows | None:
        """Batches of the trusted training rows (``x_train[trusted]``, their labels), None without any."""
        if self._trusted_idx is None:
            return None
        return TrustedRows(self.x_train[self._trusted_idx], self.y_train[self._trusted_idx], seed)

    def _replayed_per_batch(self, components: list[Component], epoch: int) -> int:
        """How many trusted rows join each batch of ``epoch``: the largest share its components ask for
        (``Component.trusted_replay``) of the batch size, at most every trusted row; 0 without any."""
        if self._trusted_idx is None:
            return 0
        share = max((c.trusted_replay(epoch) for c in components), default=0.0)
        return min(round(share * self.pipeline.batch_size), len(self._trusted_idx))

    def _replay(self, count: int) -> Tensor:
        """``count`` trusted training rows' indices, at random without replacement."""
        assert self._trusted_idx is not None
        pick = torch.randperm(len(self._trusted_idx), generator=self._replay_generator)[:count]
        return self._trusted_idx[pick.to(self._trusted_idx.device)]

    def learning_rate(self, param: Tensor) -> float:
        """The optimizer's current learning rate of ``param`` (0 for a parameter it does not train)."""
        if self._groups is None or self._groups[0] is not self.optimizer:  # a restart makes a new optimizer
            self._groups = (self.optimizer, {id(p): g for g in self.optimizer.param_groups for p in g["params"]})
        group = self._groups[1].get(id(param))
        return float(group["lr"]) if group is not None else 0.0

    def _pretrained_body(self, encoder: Encoder | None) -> Encoder | None:
        """The body a pretrained start loads: ``encoder`` (from the search's cache), else pretrained
        here on the data's pool."""
        if not self.pipeline.start.pretrained:
            return None
        if encoder is None:
            encoder = make_encoder(EncoderRequest.of(self.pipeline, self.data), self.data)
        return encoder

    def _start(self, net: Classifier) -> None:
        """Load the pretrained body into ``net`` (frozen: it never trains) when the start is pretrained."""
        if self._encoder is None:
            return
        try:
            net.body.load_state_dict(self._encoder)
        except RuntimeError as e:
            raise UserError(f"the pretrained encoder does not fit model {self.pipeline.model.name!r}: "
                            f"{str(e).splitlines()[0]}") from None
        if self.pipeline.start.mode == "frozen":
            net.body.requires_grad_(False)

    def _schedule(self, epochs: int) -> None:
        """A fresh optimizer, and learning-rate schedule over ``epochs``."""
        self.optimizer = _optimizer(self.pipeline, [dict(g) for g in self._params])  # optimizers write into the dicts
        self.scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, epochs)
                          if self.pipeline.optimizer.schedule == "cosine" else None)

    def _restart(self, done: int) -> None:
        """After epoch ``done``: the networks start over from a fresh initialization (in place: the
        components keep their references), with a fresh optimizer and schedule for the rest."""
        for net in self.networks:
            fresh = self._factory.build(self.data.input_shape, self._outputs)  # type: ignore[attr-defined]
            net.load_state_dict(fresh.state_dict())
            self._start(net)  # a pretrained start starts over from the encoder
        self._schedule(self.pipeline.epochs - done)

    @property
    def model(self) -> nn.Module:
        """What ``model.pt`` holds: the network, or a ModuleList of a scheme's networks."""
        return saved_module(self.networks)

    def _tensors(self, x: np.ndarray, y: np.ndarray) -> tuple[Tensor, Tensor]:
        return torch.from_numpy(x).to(self.device), torch.from_numpy(y).to(self.device)

    def epochs(self) -> Iterator[EpochMetrics]:
        """Train epoch by epoch up to ``pipeline.stop_epoch``, yielding metrics after each; raises
        TrainingDiverged on NaN."""
        n, bs = len(self.y_train), self.pipeline.batch_size
        components = self.step.components()
        leaders = self.step.methods[0].components()
        stop = self.pipeline.stop_epoch
        for epoch in range(1, stop + 1):
            start = time.perf_counter()
            self._global_rng(self._rng)  # where this trainer left it, whatever ran in between
            if epoch - 1 in self._restarts:
                self._restart(epoch - 1)
            labels = self.y_train
            for component in leaders:
                labels = component.labels_for_epoch(labels, epoch)
            for component in components:
                component.on_epoch_start(epoch)
            for net in self.networks:
                net.train()
                if self.pipeline.start.mode == "frozen":
                    net.body.eval()  # batch norm statistics stay the encoder's too
            order = torch.randperm(n, generator=self._generator).to(self.device)
            replayed = self._replayed_per_batch(components, epoch)
            total, batches = 0.0, 0
            for begin in range(0, n, bs):
                idx = order[begin:begin + bs]
                if len(idx) < 2 and batches:  # a batch of one breaks batch norm; fold it away
                    continue
                if replayed:
                    idx = torch.cat([idx, self._replay(replayed)])
                with self._autocast:
                    loss = self.step(self.x_train[idx], labels[idx], idx)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total += loss.detach()
                batches += 1
            mean_loss = float(total) / batches
            if not math.isfinite(mean_loss):
                raise TrainingDiverged(f"non-finite training loss in epoch {epoch}")
            if self.scheduler is not None:
                self.scheduler.step()
            self._epochs_done = epoch
            for j, methods in enumerate(self.step.methods):
                view = _EpochView(self, j, epoch, labels)
                for component in methods.components():
                    component.on_epoch_end(view)
            test = self.accuracy(self.x_test, self.y_test) if self.x_test is not None else None
            last = epoch == stop
            auroc = detection_quality(self.data, self.suspicion_scores()).get("label_issue_auroc") if last else None
            correct = self.correct(self.x_val, self.y_val)
            self._rng = self._global_rng()
            noisy = float(correct.mean()) if len(correct) else float("nan")
            if self._scored is not None:  # a clean objective: the trusted rows rank, every row is recorded
                correct = correct[self._scored]
            yield EpochMetrics(epoch, mean_loss, float(correct.mean()) if len(correct) else float("nan"), test,
                               time.perf_counter() - start, auroc,
                               pack_rows(correct) if len(correct) or self._scored is not None else None,
                               noisy if self._scored is not None else None)

    def _global_rng(self, state: tuple[Tensor, Tensor | None] | None = None) -> tuple[Tensor, Tensor | None]:
        """torch's global random state (the CPU's, and this trainer's GPU's), set to ``state`` first
        when given. Methods draw from it (mixup and MixMatch permutations, augmented views), so two
        trainers alive in one process at once (the fold jobs of a local search, advanced epoch by epoch
        in turn) would otherwise draw from one stream in an order that depends on the interleaving,
        and a trial's record would differ from the fold models ``train`` trains one after another.
        Each trainer resumes its own stream at every epoch; trained alone, nothing changes."""
        cuda = self.device.type == "cuda"
        if state is not None:
            torch.set_rng_state(state[0])
            if cuda and state[1] is not None:
                torch.cuda.set_rng_state(state[1], self.device)
        return torch.get_rng_state(), torch.cuda.get_rng_state(self.device) if cuda else None

    def outputs(self, x: Tensor, network: int, features: bool = False) -> Tensor:
        """One network's logits (or features) in evaluation mode, computed in chunks."""
        return evaluate(self.networks[network], x, self._autocast, features)

    def log_probs(self, x: Tensor) -> Tensor:
        """Log class probabilities of the scheme's networks, averaged (over the K classes only)."""
        return scheme_log_probs(self.networks, x, self.data.num_classes, self._autocast)

    def correct(self, x: Tensor, y: Tensor) -> np.ndarray:
        """Per row of ``x``, whether the scheme predicts its label ``y``."""
        if len(y) == 0:
            return np.zeros(0, dtype=bool)
        return (self.log_probs(x).argmax(dim=1) == y).cpu().numpy()

    def accuracy(self, x: Tensor, y: Tensor) -> float:
        if len(y) == 0:
            return float("nan")
        return float(self.correct(x, y).mean())

    def suspicion_scores(self) -> np.ndarray:
        """Per training sample, how suspect its given label is (higher is more suspect): the
        selector's scores when the pipeline has one, else the loss of the given label."""
        scores = [m.selection.scores() for m in self.step.methods if m.selection is not None]
        scores = [s for s in scores if s is not None]
        if scores:
            return np.mean(scores, axis=0)
        return F.nll_loss(self._train_log_probs(), self.y_train, reduction="none").cpu().numpy()

    def predictions(self) -> np.ndarray:
        return self._train_log_probs().argmax(dim=1).cpu().numpy()

    def _train_log_probs(self) -> Tensor:
        """``log_probs(x_train)``, computed once per trained state (scores, predictions and the
        last epoch's detection quality all read it)."""
        if self._train_cache is None or self._train_cache[0] != self._epochs_done:
            self._train_cache = (self._epochs_done, self.log_probs(self.x_train))
        return self._train_cache[1]


def autocast_for(device: torch.device) -> object:
    """Mixed precision (bfloat16) on a GPU; nothing on a CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def network_outputs(methods: Methods, num_classes: int) -> int:
    """How many outputs a network has: one per class, and what the methods add (e.g. a second head)."""
    return num_classes + sum(c.extra_outputs for c in methods.components())


def build_networks(pipeline: Pipeline, input_shape: tuple[int, ...], num_classes: int) -> list[Classifier]:
    """Freshly initialized networks of ``pipeline`` as a :class:`Trainer` builds them (one per network
    of its scheme), for loading saved weights into."""
    factory = build("model", pipeline.model)
    outputs = network_outputs(Methods.from_pipeline(pipeline), num_classes)
    return [factory.build(input_shape, outputs) for _ in range(build_scheme(pipeline).networks)]  # type: ignore[attr-defined]


def saved_module(networks: list[Classifier]) -> nn.Module:
    """The module whose ``state_dict`` a model folder saves: the network, or a ModuleList of several."""
    return networks[0] if len(networks) == 1 else nn.ModuleList(networks)


@torch.inference_mode()
def evaluate(net: Classifier, x: Tensor, autocast: object = None, features: bool = False) -> Tensor:
    """A network's logits (or features) in evaluation mode, computed in chunks of ``EVAL_BATCH``."""
    net.eval()
    fn = net.features if features else net
    with autocast or nullcontext():  # type: ignore[attr-defined]
        return torch.cat([fn(x[i:i + EVAL_BATCH]).float() for i in range(0, len(x), EVAL_BATCH)])


def scheme_log_probs(networks: list[Classifier], x: Tensor, num_classes: int, autocast: object = None) -> Tensor:
    """Log class probabilities of a scheme's networks, averaged (over the ``num_classes`` classes only)."""
    probs = [evaluate(net, x, autocast)[:, :num_classes].softmax(dim=1) for net in networks]
    return torch.stack(probs).mean(dim=0).clamp_min(1e-12).log()


def detection_quality(data: NoisyDataset, scores: np.ndarray) -> dict[str, float]:
    """How well suspicion scores rank the truly wrong labels first (AUROC, average precision),
    when the noise mask is known and both kinds of label are present; else empty."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    mask = data.noise_mask
    if mask is None or mask.all() or not mask.any():
        return {}
    return {"label_issue_auroc": float(roc_auc_score(mask, scores)),
            "label_issue_average_precision": float(average_precision_score(mask, scores))}


class _EpochView:
    """The :class:`~automl_noisy.components.base.EpochEnd` of one network: lazy, computed once."""

    def __init__(self, trainer: Trainer, network: int, epoch: int, labels: Tensor) -> None:
        self._trainer, self._network, self.epoch, self.labels = trainer, network, epoch, labels
        self._cache: dict[bool, Tensor] = {}

    def _get(self, features: bool) -> Tensor:
        if features not in self._cache:
            self._cache[features] = self._trainer.outputs(self._trainer.x_train, self._network, features)
        return self._cache[features]

    def logits(self) -> Tensor:
        return self._get(False)

    def features(self) -> Tensor:
        return self._get(True)


def _optimizer(pipeline: Pipeline, params: list[dict]) -> torch.optim.Optimizer:
    spec = pipeline.optimizer
    if spec.name == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum)
    cls = torch.optim.Adam if spec.name == "adam" else torch.optim.AdamW
    return cls(params, lr=spec.lr)


def run_trial(pipeline: Pipeline, data: NoisyDataset, device: str | torch.device | None = None,
              threads: int | None = 1, fold: int | None = None,
              encoder: Encoder | None = None, snapshots: str | Path | None = None) -> Iterator[EpochMetrics]:
    """Train ``pipeline`` on ``data`` (on its cross-validation fold ``fold``, when given), yielding
    one :class:`EpochMetrics` per epoch. A pretrained start loads ``encoder`` (pretrained here when
    not given). With ``snapshots`` (a folder), the networks' weights after each epoch ``e`` are
    saved as ``epoch-<e>.pt`` before that epoch is yielded (a ``state_dict`` on the CPU, as a model
    folder's), so the driver can keep the epoch it finds best instead of training it again."""
    if fold is not None:
        data = fold_split(data, fold)
    trainer = Trainer(pipeline, data, device, threads, encoder)
    folder = Path(snapshots) if snapshots is not None else None
    for metrics in trainer.epochs():
        if folder is not None:
            try:  # a convenience for train: never a reason for the trial to fail
                folder.mkdir(parents=True, exist_ok=True)
                save_weights(trainer.networks, folder / f"epoch-{metrics.epoch}.pt")
            except OSError:
                folder = None
        yield metrics


def save_weights(networks: list[Classifier], path: Path) -> None:
    """The networks' ``state_dict`` (on the CPU) in ``path``, written whole or not at all."""
    state = {k: v.detach().cpu() for k, v in saved_module(networks).state_dict().items()}
    partial = path.with_name(f".{path.name}.part")
    torch.save(state, partial)
    partial.replace(path)
