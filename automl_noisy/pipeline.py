"""Pipeline: one combination of methods plus everything needed to train it again.

A Pipeline is a tree of frozen dataclasses. The YAML that ``automl-noisy export`` writes *is* a
Pipeline (``to_dict``/``from_dict``), with a provenance block beside it. This module imports
neither torch nor the component registries: names are checked against the registries when the
pipeline is built (``automl_noisy.components.build``).

>>> p = Pipeline(model=ComponentSpec("mlp"), loss=ComponentSpec("gce", {"q": 0.7}))
>>> Pipeline.from_dict(p.to_dict()) == p
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import yaml

from automl_noisy.data.spec import DataSpec
from automl_noisy.errors import UserError
from automl_noisy.hparams import Float, HParam

#: The method families a pipeline holds, in the order of the training step. ``penalty`` is a list.
FAMILIES = ("model", "scheme", "correction", "mixing", "adjustment", "loss", "selection", "semi", "penalty")
OPTIONAL_FAMILIES = ("correction", "mixing", "adjustment", "selection", "semi")
MULTI_FAMILIES = ("penalty",)
SCHEDULES = ("cosine", "constant")
#: Each optimizer's searchable hyperparameters (Adam's ignore ``momentum``).
OPTIMIZERS: dict[str, dict[str, HParam]] = {
    "sgd": {"lr": Float(0.05, 1e-3, 0.5, log=True), "momentum": Float(0.9, 0.0, 0.99)},
    "adam": {"lr": Float(1e-3, 1e-5, 1e-1, log=True)},
    "adamw": {"lr": Float(1e-3, 1e-5, 1e-1, log=True)},
}


@dataclass(frozen=True)
class ComponentSpec:
    """A registry entry by name, with its hyperparameters (missing ones take the defaults)."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dict(self.params)}

    @classmethod
    def from_dict(cls, family: str, value: Any) -> "ComponentSpec":
        if isinstance(value, str):
            return cls(value)
        if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
            raise UserError(f"{family}: expected a name or a mapping with 'name', got {value!r}")
        return cls(value["name"], {k: v for k, v in value.items() if k != "name"})


#: the largest learning rate a pipeline may set (beyond it SGD only diverges)
MAX_LR = 10.0


@dataclass(frozen=True)
class OptimizerSpec:
    """The optimizer and its learning-rate schedule (cosine decays to zero over the epochs)."""

    name: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    schedule: str = "cosine"

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise UserError(f"unknown optimizer {self.name!r}; choose one of: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise UserError(f"unknown schedule {self.schedule!r}; choose one of: {', '.join(SCHEDULES)}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not 0 < self.lr <= MAX_LR:
            raise UserError(f"optimizer.lr must be a number in (0, {MAX_LR:g}], got {self.lr!r}")
        if (isinstance(self.momentum, bool) or not isinstance(self.momentum, (int, float))
                or not 0 <= self.momentum < 1):
            raise UserError(f"optimizer.momentum must be a number in [0, 1), got {self.momentum!r}")


#: How a network starts: random weights, or a pretrained body kept frozen or fine-tuned.
START_MODES = ("random", "frozen", "finetune")


@dataclass(frozen=True)
class StartSpec:
    """How the scheme's networks start. ``random``: fresh weights. ``frozen``: the pretrained body
    is kept as it is and only the head trains. ``finetune``: everything trains, the body at
    ``body_lr`` times the optimizer's learning rate (a smaller rate keeps the pretrained features
    from memorizing the noise at once)."""

    mode: str = "random"
    body_lr: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in START_MODES:
            raise UserError(f"unknown start mode {self.mode!r}; choose one of: {', '.join(START_MODES)}")
        if (isinstance(self.body_lr, bool) or not isinstance(self.body_lr, (int, float))
                or not 0 < self.body_lr <= 1):
            raise UserError(f"start.body_lr must be a number in (0, 1], got {self.body_lr!r}")

    @property
    def pretrained(self) -> bool:
        return self.mode != "random"


@dataclass(frozen=True)
class Pipeline:
    """A complete, re-runnable training recipe: methods per family, budget, seed and data."""

    model: ComponentSpec
    scheme: ComponentSpec = ComponentSpec("single")
    correction: ComponentSpec | None = None
    mixing: ComponentSpec | None = None
    adjustment: ComponentSpec | None = None
    loss: ComponentSpec = ComponentSpec("ce")
    selection: ComponentSpec | None = None
    semi: ComponentSpec | None = None
    penalty: tuple[ComponentSpec, ...] = ()
    optimizer: OptimizerSpec = OptimizerSpec()
    #: the self-supervised method (with its settings) that learns the body a pretrained start uses
    pretraining: ComponentSpec | None = None
    start: StartSpec = StartSpec()
    epochs: int = 30
    best_epoch: int | None = None
    batch_size: int = 64
    seed: int = 0
    data: DataSpec = DataSpec()

    def __post_init__(self) -> None:
        for name, least in (("epochs", 1), ("batch_size", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                what = "a positive integer" if least == 1 else f"an integer of at least {least}"
                raise UserError(f"{name} must be {what}, got {value!r}"
                                + ("; batch norm and per-batch selection need two samples" if name == "batch_size"
                                   and isinstance(value, int) and value == 1 else ""))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UserError(f"seed must be an integer, got {self.seed!r}")
        if self.start.pretrained and self.pretraining is None:
            raise UserError(f"start mode {self.start.mode!r} needs a pretrained body; add e.g. "
                            "'pretraining: {name: simclr}' to the pipeline, or set start.mode to random")
        if not self.start.pretrained and self.pretraining is not None:
            raise UserError("the pipeline names a pretraining method but starts from random weights; "
                            "set start.mode to frozen or finetune, or drop 'pretraining'")
        best = self.best_epoch
        if best is not None and (isinstance(best, bool) or not isinstance(best, int) or not 1 <= best <= self.epochs):
            raise UserError(f"best_epoch must be an epoch from 1 to epochs={self.epochs}, got {best!r}")

    @property
    def stop_epoch(self) -> int:
        """The epoch training stops after: ``best_epoch`` (the search's best, written by export) when
        set, else ``epochs``. The learning-rate schedule and the methods' warm-ups always span
        ``epochs``, so stopping early reproduces the trial's model at that epoch."""
        return self.best_epoch or self.epochs

    def methods(self) -> dict[str, ComponentSpec | tuple[ComponentSpec, ...] | None]:
        """The chosen component(s) of each family, in step order."""
        return {family: getattr(self, family) for family in FAMILIES}

    def combination(self) -> dict[str, str]:
        """Family -> choice name(s): what a trial tried, for analysis and display."""
        out = {}
        for family, value in self.methods().items():
            if isinstance(value, tuple):
                out[family] = "+".join(c.name for c in value) or "none"
            else:
                out[family] = value.name if value is not None else "none"
        out["start"] = self.start.mode
        return out

    def with_data(self, data: DataSpec) -> "Pipeline":
        return replace(self, data=data)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for family, value in self.methods().items():
            if isinstance(value, tuple):
                out[family] = [c.to_dict() for c in value]
            else:
                out[family] = value.to_dict() if value is not None else "none"
        out["optimizer"] = {f.name: getattr(self.optimizer, f.name) for f in fields(OptimizerSpec)}
        if self.pretraining is not None:  # a random start writes neither (older pipelines read the same)
            out["pretraining"] = self.pretraining.to_dict()
            out["start"] = {f.name: getattr(self.start, f.name) for f in fields(StartSpec)}
        out["epochs"] = self.epochs
        if self.best_epoch is not None:
            out["best_epoch"] = self.best_epoch
        out.update(batch_size=self.batch_size, seed=self.seed)
        out["data"] = self.data.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: Any) -> "Pipeline":
        if not isinstance(d, Mapping):
            raise UserError(f"a pipeline must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown pipeline key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}")
        if "model" not in d:
            raise UserError("the pipeline names no model; add e.g. 'model: {name: mlp}'")
        kwargs: dict[str, Any] = {}
        for family in FAMILIES:
            if family not in d:
                continue
            value = d[family]
            if family in MULTI_FAMILIES:
                if value in (None, "none"):
                    value = []
                if not isinstance(value, list):
                    raise UserError(f"{family}: expected a list of components, got {value!r}")
                kwargs[family] = tuple(ComponentSpec.from_dict(family, v) for v in value)
            elif value in (None, "none") and family in OPTIONAL_FAMILIES:
                kwargs[family] = None
            else:
                kwargs[family] = ComponentSpec.from_dict(family, value)
        if "optimizer" in d:
            opt = d["optimizer"]
            names = {f.name for f in fields(OptimizerSpec)}
            if not isinstance(opt, Mapping) or set(opt) - names:
                raise UserError(f"optimizer: expected a mapping with keys among {', '.join(sorted(names))}")
            kwargs["optimizer"] = OptimizerSpec(**opt)
        if d.get("pretraining") not in (None, "none"):
            kwargs["pretraining"] = ComponentSpec.from_dict("pretraining", d["pretraining"])
        if "start" in d:
            start = d["start"]
            if isinstance(start, str):
                start = {"mode": start}
            names = {f.name for f in fields(StartSpec)}
            if not isinstance(start, Mapping) or set(start) - names:
                raise UserError(f"start: expected a mode or a mapping with keys among {', '.join(sorted(names))}")
            kwargs["start"] = StartSpec(**start)
        for key in ("epochs", "best_epoch", "batch_size", "seed"):
            if key in d:
                kwargs[key] = d[key]
        if "data" in d:
            kwargs["data"] = DataSpec.from_dict(d["data"])
        return cls(**kwargs)

    def to_yaml(self, provenance: Mapping[str, Any] | None = None) -> str:
        doc: dict[str, Any] = {"pipeline": self.to_dict()}
        if provenance:
            doc["provenance"] = dict(provenance)
        return yaml.safe_dump(doc, sort_keys=False)


def read_yaml_file(path: str, what: str) -> Any:
    """``yaml.safe_load`` of a user's file; a missing, unreadable or malformed file is a UserError
    naming the file (and the line of a YAML mistake)."""
    import os

    if not os.path.isfile(path):
        raise UserError(f"{what} not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{path} is not valid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {what} {path}: {e}") from None


def read_pipeline_file(path: str) -> tuple[Pipeline, dict[str, Any]]:
    """Read an exported YAML file: ``(pipeline, provenance)``. Every mistake is a UserError."""
    doc = read_yaml_file(path, "pipeline file")
    if not isinstance(doc, Mapping) or "pipeline" not in doc:
        raise UserError(f"{path} has no 'pipeline' section; write one with 'automl-noisy export'")
    provenance = doc.get("provenance") or {}
    return Pipeline.from_dict(doc["pipeline"]), dict(provenance)
