"""Search spaces: a YAML file narrows what the components declare; define-by-run suggests it.

A space file (``search_spaces/*.yaml``) lists, per family, the allowed choices and optional
range overrides, plus the training budget, the sampler and the pruner::

    epochs: 20
    batch_size: 64                       # or a list of choices
    optimizer: {sgd: {lr: [0.01, 0.2]}}  # choices with overrides (or a list of names)
    schedule: cosine
    sampler: {name: tpe, multivariate: true, group: true}
    pruner: {name: median, n_warmup_steps: 5}
    families:
      model: {mlp: {width: [64, 512]}, cnn: {}}
      loss: [ce, gce, sce]
      adjustment: [none, label_smoothing]
      penalty: [weight_decay]            # a multi family: each entry is toggled on or off
    presets: [dividemix]                 # published recipes, drawn as a whole beside the families
    pretraining:                         # how a trial's network starts
      start: [random, frozen, finetune]
      body_lr: [0.01, 1.0]               # a fine-tuned body's learning-rate multiplier (log scale)
      method: {images: simclr, vectors: {name: simclr, steps: 2000}}   # fixed settings, never searched
    racing: {folds: 1, z: 2.0}           # cross-validated trials: the other folds only if not behind

Parameter names: ``loss`` picks a choice, ``loss.gce.q`` is that choice's parameter;
``penalty.l1`` toggles a penalty; ``optimizer.sgd.lr``; ``batch_size``; ``schedule``. Conditionals
are resolved in order: a two-network scheme needs a selector, so after ``scheme=coteaching`` the
selector is drawn as ``scheme.coteaching.selection`` (no ``none``), keeping one distribution per
name for the life of a study; ``semi`` is drawn only after a selector that sets samples aside
(``Selector.divides``: not after none, nor after soft weights such as ``meta_weight``). With
``presets``, ``preset`` is drawn first: a preset fixes every method family (only the model and
the optimizer are then drawn).

With ``pretraining``, ``start`` is drawn next (random, frozen or finetune, for presets too) and,
for ``finetune``, ``start.finetune.body_lr``. A pretrained start fixes the architecture at its
model's defaults (the model is still chosen, its hyperparameters are not drawn), so a search needs
one encoder per model choice, not one per trial. The method is per data kind: ``images`` for a
model that convolves over images (image views), ``vectors`` for a model that flattens its input
(SCARF's feature corruption as views). Its settings are fixed values: noisy labels cannot score
an encoder, so the search never tunes them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna

from automl_noisy.components import FAMILIES, build, spelled_out
from automl_noisy.data import DataSpec
from automl_noisy.errors import UserError, choose_from
from automl_noisy.hparams import Choice, Float, HParam, Int, fixed_value
from automl_noisy.pipeline import (OPTIMIZERS, SCHEDULES, START_MODES, ComponentSpec, OptimizerSpec, Pipeline,
                                   StartSpec, read_yaml_file)
from automl_noisy.presets import PRESETS, apply_preset
from automl_noisy.search.racing import Racing, parse_racing

SPACES_DIR = Path(__file__).resolve().parents[1] / "search_spaces"  # package data; ./search_spaces links here
TOP_KEYS = {"epochs", "batch_size", "optimizer", "schedule", "sampler", "pruner", "families", "presets",
            "pretraining", "racing"}
PRETRAINING_KEYS = {"start", "body_lr", "method"}
#: The pretraining method of each data kind when a space names none: SimCLR at its defaults, except
#: 3000 steps of batch 128 for images (about 270 epochs of digits' pool; 1000 steps of 256 left the cnn's
#: encoder short of what DivideMix fine-tuned from it reaches, and batch 128 did as well as 256 at half
#: the cost, see BENCHMARKS.md) and 1000 steps of 256 for vectors (SCARF's views learn fast).
DEFAULT_PRETRAINING = {
    kind: ComponentSpec("simclr", {**build("pretraining", ComponentSpec("simclr")).params(), **settings})
    for kind, settings in (("images", {"steps": 3000, "batch_size": 128}), ("vectors", {}))}
#: A fine-tuned body's learning-rate multiplier: default and range.
BODY_LR = Float(0.1, 0.01, 1.0, log=True)
SAMPLERS = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
            "gp": optuna.samplers.GPSampler, "cmaes": optuna.samplers.CmaEsSampler,
            "qmc": optuna.samplers.QMCSampler}
PRUNERS = {"median": optuna.pruners.MedianPruner, "percentile": optuna.pruners.PercentilePruner,
           "hyperband": optuna.pruners.HyperbandPruner, "patient": None,
           "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
           "threshold": optuna.pruners.ThresholdPruner, "none": optuna.pruners.NopPruner}

Decide = Callable[[str, HParam], Any]
#: The baseline's choice in a family: the first of these the family offers, else its first choice.
PLAIN = ("ce", "single", "none")
#: What a family offers when a space file does not list it.
DEFAULT_CHOICES = {"loss": ["ce"], "scheme": ["single"]}


def _needs_selection(scheme: str) -> bool:
    return bool(FAMILIES["scheme"].registry.get(scheme).needs_selection)


def _divides(selection: str) -> bool:
    """Whether a selector sets samples aside for a semi-supervised method (soft weights do not)."""
    return bool(FAMILIES["selection"].registry.get(selection).divides)


@dataclass(frozen=True)
class SearchSpace:
    """A parsed space: per family, the allowed choices with their (narrowed) hyperparameters."""

    name: str
    families: Mapping[str, Mapping[str, Mapping[str, HParam]]]  # family -> choice -> param -> decl
    optimizers: Mapping[str, Mapping[str, HParam]]
    schedule: Choice
    batch_size: HParam
    epochs: int
    sampler: Mapping[str, Any] = field(default_factory=lambda: {"name": "tpe"})
    pruner: Mapping[str, Any] = field(default_factory=lambda: {"name": "median"})
    presets: tuple[str, ...] = ()
    #: how a trial's network may start (None: always random); the pretraining method per data kind
    start: Choice | None = None
    body_lr: HParam = BODY_LR
    pretraining: Mapping[str, ComponentSpec] = field(default_factory=lambda: dict(DEFAULT_PRETRAINING))
    #: rows one model of a trial trains on, when the data is known (presets scale SGD steps by it)
    train_rows: int | None = None
    #: racing the folds of a cross-validated trial (None: all folds at once; see search/racing.py)
    racing: Racing | None = None

    # -- define-by-run ------------------------------------------------------------------------
    def suggest(self, trial: optuna.Trial, data: DataSpec, seed: int = 0) -> Pipeline:
        """Sample a pipeline with ``trial``: choose each family, then only that choice's params."""

        def decide(name: str, decl: HParam) -> Any:
            fixed, value = fixed_value(decl)
            if fixed:
                return value
            if isinstance(decl, Choice):
                return trial.suggest_categorical(name, list(decl.choices))
            if isinstance(decl, Int):
                return trial.suggest_int(name, decl.low, decl.high, log=decl.log)
            return trial.suggest_float(name, decl.low, decl.high, log=decl.log)

        return self._walk(decide, data, seed)

    def baseline(self, data: DataSpec, seed: int = 0) -> tuple[Pipeline, dict[str, Any]]:
        """The plainest pipeline the space allows (CE, no methods, default params) and the Optuna
        params that make ``suggest`` return it, for ``study.enqueue_trial``."""
        return self.fixed({}, data, seed)

    def fixed(self, given: Mapping[str, Any], data: DataSpec, seed: int = 0) -> tuple[Pipeline, dict[str, Any]]:
        """The pipeline the Optuna params ``given`` name, every param they do not give at its default,
        and the params that make ``suggest`` return it (for ``study.enqueue_trial``). A value the
        space does not allow, or a param it does not draw here, is a UserError naming it, with one
        exception: a param the space draws when the labels' noise is unknown and a preset decides here
        from the noise the data declares (DivideMix's confidence penalty and lambda_u, by the paper's
        rule) is left to the preset, as on any data with that noise; it is not in the returned params."""
        params: dict[str, Any] = {}
        asked: set[str] = set()

        def decide(name: str, decl: HParam) -> Any:
            asked.add(name)
            fixed, value = fixed_value(decl)
            if name in given:
                value = given[name]
                if isinstance(decl, Choice) and value not in decl.choices:
                    raise UserError(f"{name}={value!r} is not offered by the space (its choices: {list(decl.choices)})")
                if not isinstance(decl, Choice):
                    decl.check(name, value)
            elif not fixed:
                value = decl.default
            if not fixed:
                params[name] = value
            return value

        pipeline = self._walk(decide, data, seed)
        unused = sorted(set(given) - asked)
        if unused and data.noise != "none":  # e.g. an entry tuned on data whose noise the preset had no rule for
            unused = sorted(set(unused) - self._asked(given, replace(data, noise="none"), seed))
        if unused:  # a family the space leaves out, or a parameter of a choice not taken
            raise UserError(f"{unused[0]}={given[unused[0]]!r} is not a parameter this space draws here")
        return pipeline, params

    def _asked(self, given: Mapping[str, Any], data: DataSpec, seed: int) -> set[str]:
        """The names of the params the space draws on ``data`` when the pipeline takes ``given``'s
        choices (values that :meth:`fixed` checked; the others at their defaults)."""
        asked: set[str] = set()

        def decide(name: str, decl: HParam) -> Any:
            asked.add(name)
            fixed, value = fixed_value(decl)
            return given.get(name, value if fixed else decl.default)

        self._walk(decide, data, seed)
        return asked

    def _walk(self, decide: Decide, data: DataSpec, seed: int) -> Pipeline:
        preset = decide("preset", Choice("none", ("none", *self.presets))) if self.presets else "none"
        start = decide("start", self.start) if self.start is not None else "random"
        chosen: dict[str, Any] = {}
        for family, choices in self.families.items():
            if preset != "none" and family != "model":
                continue  # the preset fixes every method family
            if family == "model" and start != "random":
                model = decide("model", Choice(next(iter(choices)), tuple(choices)))
                # a pretrained start keeps the architecture's defaults: one encoder per model choice
                chosen[family] = ComponentSpec(model, {p: d.default for p, d in choices[model].items()})
                continue

            if FAMILIES[family].multi:
                on = [c for c in choices if decide(f"{family}.{c}", Choice(False, (False, True)))]
                chosen[family] = tuple(self._component(decide, family, c) for c in on)
                continue
            names, name = tuple(choices), family
            if family == "semi" and (chosen.get("selection") is None or not _divides(chosen["selection"].name)):
                chosen[family] = None  # semi-supervised training needs a selector's unlabeled set
                continue
            if family == "selection" and _needs_selection(chosen["scheme"].name):
                # a two-network scheme exchanges selections: 'none' is not offered, under its own name
                names, name = tuple(c for c in names if c != "none"), f"scheme.{chosen['scheme'].name}.selection"
            plain = next((p for p in PLAIN if p in names), names[0])
            choice = decide(name, Choice(plain, names))
            chosen[family] = None if choice == "none" else self._component(decide, family, choice)
        opt_name = decide("optimizer", Choice(next(iter(self.optimizers)), tuple(self.optimizers)))
        opt_params = {p: decide(f"optimizer.{opt_name}.{p}", d) for p, d in self.optimizers[opt_name].items()}
        optimizer = OptimizerSpec(opt_name, schedule=decide("schedule", self.schedule), **opt_params)
        pretraining = None
        if start != "random":
            pretraining = self.pretraining_for(chosen["model"].name)
        body_lr = decide("start.finetune.body_lr", self.body_lr) if start == "finetune" else 1.0
        pipeline = Pipeline(**chosen, optimizer=optimizer, pretraining=pretraining, start=StartSpec(start, body_lr),
                            epochs=self.epochs, batch_size=decide("batch_size", self.batch_size), seed=seed,
                            data=data)
        return apply_preset(preset, pipeline, self.train_rows, decide) if preset != "none" else pipeline

    def pretraining_for(self, model: str) -> ComponentSpec:
        """The pretraining method (with its fixed settings) of a model: the ``images`` one for a
        model that convolves over images, else the ``vectors`` one."""
        spatial = FAMILIES["model"].registry.get(model).spatial
        return self.pretraining["images" if spatial else "vectors"]

    def encoder_pipelines(self, data: DataSpec, seed: int = 0) -> list[Pipeline]:
        """One pretrained-start pipeline per model choice: what determines the encoders a search may
        need (none when the space never starts from a pretrained body)."""
        if self.start is None or all(mode == "random" for mode in self.start.choices):
            return []
        out = []
        for model, decls in self.families["model"].items():
            spec = ComponentSpec(model, {p: d.default for p, d in decls.items()})
            out.append(Pipeline(model=spec, pretraining=self.pretraining_for(model), start=StartSpec("frozen"),
                                seed=seed, data=data))
        return out

    def _component(self, decide: Decide, family: str, choice: str) -> ComponentSpec:
        decls = self.families[family][choice]
        return ComponentSpec(choice, {p: decide(f"{family}.{choice}.{p}", d) for p, d in decls.items()})

    # -- identity and Optuna objects -------------------------------------------------------------
    def for_shape(self, input_shape: tuple[int, ...], train_rows: int | None = None,
                  trusted: bool = False, trusted_gap: str | None = None) -> "SearchSpace":
        """Keep only the models that accept data of this shape (a CNN needs images), and, unless the
        data has ``trusted`` rows, only the methods that do not need them (``needs_trusted``, e.g.
        ``glc``); with a ``trusted_gap`` (a split a model trains on lacks a trusted row of some class,
        :func:`automl_noisy.data.folds.trusted_gap`, in words), only the methods that do not need a
        trusted row of every class (``needs_trusted_per_class``, e.g. ``glc``). ``train_rows``: the
        rows one model trains on."""
        models = FAMILIES["model"].registry
        kept = {m: p for m, p in self.families["model"].items() if models.get(m).accepts(input_shape)}
        if not kept:
            raise UserError(f"space {self.name!r} has no model for data of shape {input_shape}; "
                            f"allow one of: {', '.join(m for m in models if models.get(m).accepts(input_shape))}")
        families = {**self.families, "model": kept}
        if not trusted or trusted_gap is not None:
            for family, choices in self.families.items():
                registry = FAMILIES[family].registry
                left = {c: p for c, p in choices.items()
                        if c == "none" or _usable(registry.get(c), trusted, trusted_gap)}
                if choices and not left and not trusted:
                    raise UserError(f"space {self.name!r} offers as {family} only methods that need trusted rows "
                                    f"({', '.join(choices)}); pass --trusted FILE or --trusted-fraction F, or allow "
                                    "another")
                if choices and not left:
                    raise UserError(f"space {self.name!r} offers as {family} only methods that need a trusted training "
                                    f"row of every class ({', '.join(choices)}), but {trusted_gap}; add trusted rows "
                                    "of each class (--trusted FILE), raise --trusted-fraction, or allow another")
                if len(left) < len(choices):
                    families[family] = left
            needing = [s for s in families["scheme"] if _needs_selection(s)]
            if needing and not [c for c in families.get("selection", {}) if c != "none"]:
                raise UserError(f"space {self.name!r} offers scheme {needing[0]!r}, which needs a selector, and only "
                                "selectors that need trusted rows; pass --trusted FILE or --trusted-fraction F, or "
                                "allow another selector")
        return SearchSpace(**{**self.__dict__, "families": families, "train_rows": train_rows})

    def needing_trusted_per_class(self) -> list[str]:
        """The choices (``family choice``) that need a trusted training row of every class."""
        return [f"{family} {c}" for family, choices in self.families.items() for c in choices
                if c != "none" and FAMILIES[family].registry.get(c).needs_trusted_per_class]

    def to_dict(self) -> dict[str, Any]:
        """A canonical, JSON-safe description (what the space hash is computed from)."""
        def decl(d: HParam) -> dict[str, Any]:
            return {"type": type(d).__name__, **{k: list(v) if isinstance(v, tuple) else v
                                                 for k, v in d.__dict__.items()}}
        return {
            "families": {f: {c: {p: decl(d) for p, d in ps.items()} for c, ps in cs.items()}
                         for f, cs in self.families.items()},
            "optimizers": {o: {p: decl(d) for p, d in ps.items()} for o, ps in self.optimizers.items()},
            "schedule": decl(self.schedule), "batch_size": decl(self.batch_size), "epochs": self.epochs,
            "sampler": dict(self.sampler), "pruner": dict(self.pruner), "presets": list(self.presets),
            **({"pretraining": {"start": decl(self.start), "body_lr": decl(self.body_lr),
                                "method": {k: m.to_dict() for k, m in self.pretraining.items()}}}
               if self.start is not None else {}),
            **({"racing": self.racing.to_dict()} if self.racing is not None else {}),
        }

    def fingerprint(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def make_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return _build("sampler", SAMPLERS, {"seed": seed, **self.sampler})

    def make_pruner(self) -> optuna.pruners.BasePruner:
        spec = dict(self.pruner)
        if spec.get("name") == "patient":  # PatientPruner wraps a median pruner
            patience = spec.pop("patience", 2)
            spec["name"] = "median"
            return optuna.pruners.PatientPruner(_build("pruner", PRUNERS, spec), patience=patience)
        return _build("pruner", PRUNERS, spec)


def _usable(method: Any, trusted: bool, trusted_gap: str | None) -> bool:
    """Whether data with (``trusted``) or without trusted rows, whose training splits lack a trusted
    row of some class (``trusted_gap``) or not, can train ``method`` (a component class)."""
    if method.needs_trusted and not trusted:
        return False
    return not (method.needs_trusted_per_class and trusted_gap is not None)


def _build(kind: str, table: Mapping[str, Any], spec: Mapping[str, Any]) -> Any:
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in table:
        raise choose_from(kind, name, sorted(table))
    try:
        return table[name](**spec)
    except TypeError as e:
        raise UserError(f"{kind} {name!r}: {e}") from None


# -- reading space files ---------------------------------------------------------------------------
#: files of search_spaces/ that are not spaces
NOT_SPACES = ("portfolio",)


def shipped_spaces() -> list[str]:
    """The names of the spaces in search_spaces/."""
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml") if p.stem not in NOT_SPACES)


def load_space(name_or_path: str) -> SearchSpace:
    """Read a space by name (``default``, ``quick``: files in search_spaces/) or by path."""
    path = Path(name_or_path)
    if not path.is_file():
        candidate = SPACES_DIR / f"{name_or_path}.yaml"
        if candidate.is_file() and os.sep not in name_or_path and name_or_path not in NOT_SPACES:
            path = candidate
        else:
            known = ", ".join(shipped_spaces())
            raise UserError(f"search space not found: {name_or_path}; give a YAML file or one of: {known}")
    return parse_space(read_yaml_file(str(path), "search space"), name=path.stem, where=str(path))


def parse_space(doc: Any, name: str = "space", where: str = "space") -> SearchSpace:
    """Validate a space document; every mistake is a UserError naming the key."""
    if not isinstance(doc, Mapping):
        raise UserError(f"{where}: a search space must be a mapping with keys among {', '.join(sorted(TOP_KEYS))}")
    unknown = sorted(set(doc) - TOP_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(TOP_KEYS))}")
    if "families" in doc and not doc["families"]:
        raise UserError(f"{where}: 'families' is empty; list the choices of at least one family (e.g. "
                        "families: {loss: [ce, gce]}), or leave the key out to search the default families")
    families_doc = doc.get("families") or {}
    if not isinstance(families_doc, Mapping):
        raise UserError(f"{where}: 'families' must map a family to its choices")
    for family in families_doc:
        if family not in FAMILIES:
            raise choose_from("family", family, list(FAMILIES))
    families = {}
    for family, fam in FAMILIES.items():
        default = fam.registry.names() if family == "model" else DEFAULT_CHOICES.get(family, [])
        entries = families_doc.get(family, default)
        choices = _choices(family, entries, where)
        if not choices and not fam.optional:
            raise UserError(f"{where}: family {family!r} needs at least one choice")
        if choices:
            families[family] = choices
    needing = [s for s in families["scheme"] if _needs_selection(s)]
    if needing and not [c for c in families.get("selection", {}) if c != "none"]:
        raise UserError(f"{where}: scheme {needing[0]!r} exchanges selections between its networks; "
                        "list a selector under families.selection, e.g. [none, small_loss]")
    epochs = doc.get("epochs", 20)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise UserError(f"{where}: epochs must be a positive integer, got {epochs!r}")
    batch = doc.get("batch_size", 64)
    batch_decl: HParam = (Choice(batch[0], tuple(batch)) if isinstance(batch, list) and batch
                          else Choice(batch, (batch,)))
    for b in batch_decl.choices:  # type: ignore[union-attr]
        if isinstance(b, bool) or not isinstance(b, int) or b < 2:
            raise UserError(f"{where}: batch_size must be integers >= 2, got {b!r}")
    optimizers = _overrides("optimizer", doc.get("optimizer", ["sgd"]), OPTIMIZERS, where)
    schedule = doc.get("schedule", "cosine")
    schedules = tuple(schedule) if isinstance(schedule, list) else (schedule,)
    for s in schedules:
        if s not in SCHEDULES:
            raise choose_from("schedule", s, list(SCHEDULES))
    sampler = _named(doc.get("sampler", {"name": "tpe"}), "sampler", where)
    pruner = _named(doc.get("pruner", {"name": "median"}), "pruner", where)
    presets = doc.get("presets") or []
    if not isinstance(presets, list):
        raise UserError(f"{where}: presets must be a list of preset names, e.g. [dividemix]")
    for preset in presets:
        if preset not in PRESETS:
            raise choose_from("preset", preset, sorted(PRESETS))
    start, body_lr, methods = _pretraining(doc.get("pretraining"), where)
    space = SearchSpace(name, families, optimizers, Choice(schedules[0], schedules), batch_decl, epochs,
                        sampler, pruner, tuple(presets), start, body_lr, methods,
                        racing=parse_racing(doc.get("racing"), where))
    space.make_pruner(), space.make_sampler(0)  # fail now, not in the middle of a search
    return space


def _pretraining(doc: Any, where: str) -> tuple[Choice | None, HParam, dict[str, ComponentSpec]]:
    """Read the ``pretraining`` section: the start modes, the body_lr range and the method per data
    kind (a name or ``{name: .., setting: value}`` for both kinds, or a mapping ``images`` /
    ``vectors`` to those)."""
    if doc is None:
        return None, BODY_LR, dict(DEFAULT_PRETRAINING)
    if not isinstance(doc, Mapping) or set(doc) - PRETRAINING_KEYS:
        raise UserError(f"{where}: pretraining must be a mapping with keys among {', '.join(sorted(PRETRAINING_KEYS))}")
    start = Choice("random", START_MODES).narrow("pretraining.start", doc.get("start", list(START_MODES)))
    body_lr = BODY_LR.narrow("pretraining.body_lr", doc["body_lr"]) if "body_lr" in doc else BODY_LR
    methods = dict(DEFAULT_PRETRAINING)
    method = doc.get("method")
    if method is not None:
        per_kind = method if isinstance(method, Mapping) and set(method) <= set(methods) else \
            {kind: method for kind in methods}
        for kind, value in per_kind.items():
            spec = ComponentSpec.from_dict(f"pretraining.method.{kind}", value)
            for setting, v in spec.params.items():
                if isinstance(v, (list, dict)):
                    raise UserError(f"{where}: pretraining.method.{kind}.{setting} must be one value, got {v!r}; "
                                    "pretraining settings are fixed (noisy labels cannot score an encoder)")
            # unknown method, setting or value: one line now; every setting spelled out for the export
            methods[kind] = spelled_out("pretraining", spec)
    return start, body_lr, methods


def _choices(family: str, entries: Any, where: str) -> dict[str, dict[str, HParam]]:
    registry = FAMILIES[family].registry
    declared = {n: registry.get(n).hyperparameters() for n in registry.names()}
    if FAMILIES[family].optional and not FAMILIES[family].multi:
        declared["none"] = {}
    return _overrides(family, entries, declared, where)


def _overrides(kind: str, entries: Any, declared: Mapping[str, Mapping[str, HParam]],
               where: str) -> dict[str, dict[str, HParam]]:
    """``[a, b]`` or ``{a: {param: override}, b: null}`` -> choice -> narrowed declarations."""
    if isinstance(entries, str):
        entries = [entries]
    if isinstance(entries, list):
        entries = {e: None for e in entries}
    if not isinstance(entries, Mapping):
        raise UserError(f"{where}: {kind} must be a list of choices or a mapping choice -> parameters")
    out: dict[str, dict[str, HParam]] = {}
    for choice, params in entries.items():
        if choice not in declared:
            raise choose_from(kind, choice, list(declared))
        params = params or {}
        if not isinstance(params, Mapping):
            raise UserError(f"{where}: {kind}.{choice} must map parameter names to ranges, got {params!r}")
        decls = dict(declared[choice])
        for param, override in params.items():
            if param not in decls:
                valid = ", ".join(decls) or "none"
                raise UserError(f"{where}: {kind}.{choice} has no parameter {param!r}; its parameters: {valid}")
            decls[param] = decls[param].narrow(f"{kind}.{choice}.{param}", override)
        out[choice] = decls
    return out


def _named(value: Any, kind: str, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping) or "name" not in value:
        raise UserError(f"{where}: {kind} must be a name or a mapping with 'name'")
    return dict(value)
