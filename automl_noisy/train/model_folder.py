"""The model folder ``train`` writes: everything needed to predict, loaded without running any
code from the folder.

| file | what | read with |
|---|---|---|
| ``model.pt`` | the weights (one ``state_dict``, every member's) | ``torch.load(..., weights_only=True)`` |
| ``model.json`` | class names, preprocessing (input shape, scale), members, networks, weights' sha256, versions | JSON |
| ``pipeline.yaml`` | the pipeline that was trained | ``yaml.safe_load`` |
| ``metrics.json``, ``label_issues.csv`` | what training measured | |

Paths inside are relative, so a folder moved or copied elsewhere still loads.

Reading checks that the folder agrees with itself before it predicts anything; each disagreement
is a UserError naming the file and the field: class names (a list of at least two distinct strings
or numbers), the preprocessing (see :meth:`Preprocessing.from_dict`: finite statistics, std above
0, as many as the input shape has features, an image size that is the input shape's), an input
shape of at most ``MAX_SAMPLE_VALUES`` values (before any network is built), the weights (finite,
and of the very shapes the networks built from the card and the pipeline have: the input shape and
the class count show in them). Format 2 and later also record the weights' sha256 and the
input shape they were trained for, so weights swapped for another model's, or an input size no
tensor pins (a CNN's adaptive pooling takes any image size), are refused as well.

Format 3 (this version) records the members (:mod:`automl_noisy.train.ensemble`): ``members.count``
models whose class probabilities are averaged (``members.combine``: ``mean_probability``); with
several, the K fold models of a cross-validated recipe, ``members.held_out_folds`` naming the fold
(1-based, of ``members.of_folds``, the pipeline's ``data.folds``) each did not train on, and each
member's tensors in ``model.pt`` under ``members.<i>.``. One member (a refit on the whole pool, or the
model of a holdout split) keeps the layout a single model always had. ``networks`` is the count of
networks per member. The members are checked against the weights like every other field: a card
naming 3 members with weights for 2 is refused. A card of format 2 (or 1) has no members field: it is
one model, and loads as one member.

A card of format 1 (written before the input scale was recorded) is read: its source's scale is
the one that source kind always applied (digits divided by 16; image folders and torchvision roots
by 255; an npz or in-memory array by 255 when it is uint8, else taken as it is, as before), and it
has no digest, so only the tensor shapes are checked. Loading it, rather than refusing it, keeps
every model trained so far usable, and the scale it gets is exactly what its training did.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from automl_noisy.components import build
from automl_noisy.data import NoisyDataset
from automl_noisy.data.limits import MAX_CARD_BYTES
from automl_noisy.data.preprocessing import Preprocessing, short_repr
from automl_noisy.data.sources.base import first_line, regular_file
from automl_noisy.errors import UserError
from automl_noisy.pipeline import Pipeline, read_pipeline_file
from automl_noisy.train.ensemble import COMBINE, MEMBERS_KEY, Ensemble, members_in
from automl_noisy.train.trainer import build_networks
from automl_noisy.versions import versions

FORMAT = "automl-noisy model"
FORMAT_VERSION = 3
#: The format versions this version reads (see the module docstring for 1 and 2).
READS = (1, 2, 3)
WEIGHTS, CARD, PIPELINE = "model.pt", "model.json", "pipeline.yaml"


def _class_names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
            isinstance(v, str) or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
            for v in value):
        raise UserError("field class_names must be a list of class names (strings or numbers), got "
                        f"{short_repr(value)}")
    names = tuple(str(v) for v in value)
    if len(names) < 2:
        raise UserError(f"field class_names lists {len(names)} class(es); a classifier has at least two")
    twice = sorted(name for name, n in Counter(names).items() if n > 1)
    if twice:
        raise UserError(f"field class_names names {', '.join(map(repr, twice[:5]))} more than once")
    return names


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelCard:
    """What ``model.json`` holds besides the format: the classes (``class_names[k]`` is output
    ``k``), the preprocessing, how many networks each member has, the data the model learned from,
    the versions it was trained with, the sha256 of ``model.pt`` (None in a format-1 card), and the
    members: how many, and for several (fold models) the fold each held out, of how many folds."""

    class_names: tuple[str, ...]
    preprocessing: Preprocessing
    networks: int
    data_source: str
    data_fingerprint: str
    versions: dict[str, str]
    weights_sha256: str | None = None
    members: int = 1
    held_out_folds: tuple[int, ...] = ()
    of_folds: int | None = None

    def to_dict(self) -> dict[str, Any]:
        several = self.members > 1
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "pipeline": PIPELINE,
                "weights": {"file": WEIGHTS, "sha256": self.weights_sha256,
                            "input_shape": list(self.preprocessing.input_shape)},
                "class_names": list(self.class_names),
                "members": {"count": self.members, "combine": COMBINE,
                            "held_out_folds": list(self.held_out_folds) if several else None,
                            "of_folds": self.of_folds if several else None},
                "networks": self.networks,
                "preprocessing": self.preprocessing.to_dict(),
                "data": {"source": self.data_source, "fingerprint": self.data_fingerprint},
                "versions": dict(self.versions)}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> ModelCard:
        """The card in ``d`` (read from ``where``), every field checked (see the module docstring)."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise UserError(f"{where} is not an automl-noisy model description (no \"format\": \"{FORMAT}\")")
        version = d.get("format_version")
        if isinstance(version, bool) or version not in READS:
            raise UserError(f"{where} has model format version {short_repr(version)}; this automl-noisy reads versions "
                            f"{', '.join(map(str, READS))}: train the model again, or use the version that wrote it")
        try:
            return cls._checked(d, version)
        except UserError as e:
            problem = str(e) if str(e).startswith("malformed") else f"is malformed: {e}"
            raise UserError(f"{where} {problem}; train the model again") from None
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as e:
            raise UserError(f"{where} is malformed ({type(e).__name__}: {first_line(e)[:200]}); "
                            "train the model again") from None

    @classmethod
    def _checked(cls, d: dict[str, Any], version: int) -> ModelCard:
        names = _class_names(d.get("class_names"))
        networks = d.get("networks")
        if isinstance(networks, bool) or not isinstance(networks, int) or networks < 1:
            raise UserError(f"field networks must be a whole number of at least 1, got {short_repr(networks)}")
        preprocessing = Preprocessing.from_dict(d["preprocessing"])
        data, found = d.get("data") or {}, d.get("versions") or {}
        if not isinstance(data, dict) or not all(isinstance(data.get(k, ""), str) for k in ("source", "fingerprint")):
            raise UserError(f"field data must hold a source and a fingerprint as strings, got {short_repr(data)}")
        if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
            raise UserError(f"field versions must map package names to version strings, got {short_repr(found)}")
        digest = None
        if version >= 2:
            weights = d.get("weights")
            if not isinstance(weights, dict) or weights.get("file") != WEIGHTS or not isinstance(
                    weights.get("sha256"), str) or len(weights["sha256"]) != 64:
                raise UserError(f"field weights must name the file {WEIGHTS!r} and its sha256, got "
                                f"{short_repr(weights)}")
            digest = weights["sha256"].lower()
            if weights.get("input_shape") != list(preprocessing.input_shape):
                raise UserError(f"field preprocessing.input_shape {list(preprocessing.input_shape)} differs from "
                                f"weights.input_shape {short_repr(weights.get('input_shape'))}, the shape the weights "
                                "were trained for")
        members, held_out, of_folds = _members(d.get("members")) if version >= 3 else (1, (), None)
        return cls(names, preprocessing, networks, data.get("source", ""), data.get("fingerprint", ""),
                   dict(found), digest, members, held_out, of_folds)


def _whole(value: Any, low: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= low


def _members(value: Any) -> tuple[int, tuple[int, ...], int | None]:
    """The members field of a format-3 card: the count, the fold each member held out and of how
    many folds (both empty for one model)."""
    if not isinstance(value, dict):
        raise UserError("field members must say how many models the weights hold and how they combine, got "
                        f"{short_repr(value)}")
    count, held, of = value.get("count"), value.get("held_out_folds"), value.get("of_folds")
    if not _whole(count, 1):
        raise UserError(f"field members.count must be a whole number of at least 1, got {short_repr(count)}")
    if value.get("combine") != COMBINE:
        raise UserError(f"field members.combine must be {COMBINE!r} (the members' class probabilities are averaged), "
                        f"got {short_repr(value.get('combine'))}")
    if count == 1:
        if held is not None or of is not None:
            raise UserError("fields members.held_out_folds and members.of_folds must be null for one model "
                            f"(members.count 1), got {short_repr(held)} and {short_repr(of)}")
        return 1, (), None
    if not _whole(of, count) or of != count:
        raise UserError(f"field members.of_folds must be members.count ({count}): the ensemble holds one model per "
                        f"fold of the cross-validation, got {short_repr(of)}")
    if (not isinstance(held, list) or len(held) != count or not all(_whole(f, 1) and f <= of for f in held)
            or len(set(held)) != count):
        raise UserError(f"field members.held_out_folds must list the fold (1 to {of}) each of the {count} members "
                        f"held out, each once, got {short_repr(held)}")
    return count, tuple(held), of


def write_model_folder(out: Path, pipeline: Pipeline, data: NoisyDataset, model: Ensemble) -> None:
    """Write the weights of ``model`` (all its members' in one ``state_dict``), ``model.json`` (with
    the weights' sha256 and the members) and ``pipeline.yaml`` into ``out``."""
    torch.save(model.module().state_dict(), out / WEIGHTS)
    several = len(model.members) > 1
    card = ModelCard(data.class_names, data.preprocessing, len(model.members[0]), data.spec.source, data.fingerprint,
                     versions(), file_sha256(out / WEIGHTS), len(model.members), model.held_out,
                     pipeline.data.folds if several else None)
    (out / CARD).write_text(json.dumps(card.to_dict(), indent=1), encoding="utf-8")
    (out / PIPELINE).write_text(pipeline.to_yaml(), encoding="utf-8")


def read_card(path: Path) -> ModelCard:
    """The checked card of ``model.json`` at ``path`` (a regular file of at most ``MAX_CARD_BYTES``)."""
    regular_file(str(path), "model description", "pass the folder 'automl-noisy train -o' wrote")
    size = path.stat().st_size
    if size > MAX_CARD_BYTES:
        raise UserError(f"{path} holds {size:,} bytes, more than the {MAX_CARD_BYTES:,} a model description may have; "
                        "it is not one 'automl-noisy train' wrote")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise UserError(f"cannot read {path}: its JSON is nested too deeply to be a model description") from None
    except (OSError, UnicodeDecodeError, ValueError, MemoryError) as e:
        raise UserError(f"cannot read {path}: {first_line(e)[:200]}") from None
    return ModelCard.from_dict(raw, str(path))


def _read_pipeline(path: Path) -> Pipeline:
    regular_file(str(path), "pipeline file", "the model folder is incomplete: train the model again")
    try:
        return read_pipeline_file(str(path))[0]
    except RecursionError:
        raise UserError(f"cannot read {path}: it is nested too deeply to be a pipeline") from None


def _read_weights(path: Path, card: ModelCard, device: torch.device) -> dict[str, torch.Tensor]:
    """The state dict in ``path``: plain tensors, all finite."""
    regular_file(str(path), "weights file", "the model folder is incomplete: train the model again")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # a truncated, corrupt or foreign file: torch raises many kinds
        raise UserError(f"cannot load the weights {path}: {first_line(e)[:300]}") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise UserError(f"cannot load the weights {path}: it holds {type(state).__name__}, not a state_dict of "
                        "named tensors")
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(f"the weights {path} hold NaN or infinite values (tensor {name!r}); they cannot "
                            "predict anything: train the model again")
    return state


def _check_shapes(pipeline: Pipeline, card: ModelCard, state: dict[str, torch.Tensor], root: Path) -> None:
    """The weights fit the networks built from the card and the pipeline, compared on the meta
    device (shapes only, nothing allocated)."""
    shape, classes = card.preprocessing.input_shape, len(card.class_names)
    factory = build("model", pipeline.model)
    if not factory.accepts(shape):  # type: ignore[attr-defined]
        raise UserError(f"{root / CARD} field preprocessing.input_shape {list(shape)} is no input of the model "
                        f"{pipeline.model.name!r} in {root / PIPELINE}")
    with torch.device("meta"):
        model = _built(pipeline, card)
    if len(model.members[0]) != card.networks:
        raise UserError(f"{root / CARD} names {card.networks} network(s), {root / PIPELINE} builds "
                        f"{len(model.members[0])}")
    found = members_in(state)
    if found != card.members:
        raise UserError(f"{root / CARD} field members.count names {card.members} member(s), but {root / WEIGHTS} "
                        f"holds the weights of {found}{' (tensors ' + MEMBERS_KEY + '.<i>.*)' if found > 1 else ''}")
    if card.members > 1 and card.of_folds != pipeline.data.folds:
        raise UserError(f"{root / CARD} field members.of_folds {card.of_folds} differs from data.folds "
                        f"{pipeline.data.folds} in {root / PIPELINE}, the folds the members were trained on")
    expected = {k: tuple(v.shape) for k, v in model.module().state_dict().items()}
    missing, extra = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing or extra:
        raise UserError(f"{root / WEIGHTS} does not hold the network(s) {root / PIPELINE} builds: "
                        f"{len(missing)} tensor(s) missing{f' ({missing[0]!r}, ...)' if missing else ''}, "
                        f"{len(extra)} unexpected{f' ({extra[0]!r}, ...)' if extra else ''}")
    for name, want in expected.items():
        got = tuple(state[name].shape)
        if got == want:
            continue
        if name.endswith(("head.weight", "head.bias")):
            raise UserError(f"{root / CARD} field class_names lists {classes} classes, but the output layer of "
                            f"{root / WEIGHTS} has {got[0]} outputs where a network for them has {want[0]} "
                            f"(tensor {name!r})")
        raise UserError(f"{root / CARD} field preprocessing.input_shape {list(shape)} does not fit {root / WEIGHTS}: "
                        f"tensor {name!r} has shape {list(got)}, a network for that input shape has {list(want)}")


def _built(pipeline: Pipeline, card: ModelCard) -> Ensemble:
    """Freshly initialized members as the card and the pipeline describe them."""
    shape, classes = card.preprocessing.input_shape, len(card.class_names)
    return Ensemble([build_networks(pipeline, shape, classes) for _ in range(card.members)], card.held_out_folds)


def read_model_folder(folder: str | Path, device: torch.device) -> tuple[ModelCard, Pipeline, Ensemble]:
    """The card, the pipeline and the model (its members' networks, weights loaded, in evaluation
    mode, on ``device``) of a model folder; every problem with the folder is a UserError."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"model folder {root} {'is not a folder' if root.exists() else 'does not exist'}; "
                        "pass the folder 'automl-noisy train -o' wrote")
    card_path = root / CARD
    if not card_path.exists():
        raise UserError(f"{root} has no {CARD}, so it is no model folder (or one an older version wrote); "
                        f"train the pipeline again with 'automl-noisy train PIPELINE -o {root}'")
    card = read_card(card_path)
    pipeline = _read_pipeline(root / PIPELINE)
    if not (root / WEIGHTS).exists():
        raise UserError(f"{root} has no {WEIGHTS}; the weights are missing")
    state = _read_weights(root / WEIGHTS, card, device)
    _check_shapes(pipeline, card, state, root)
    if card.weights_sha256 is not None and file_sha256(root / WEIGHTS) != card.weights_sha256:
        raise UserError(f"{root / WEIGHTS} is not the weights file its {CARD} describes (its sha256 differs from the "
                        "field weights.sha256): the weights were replaced or damaged; train the model again")
    model = _built(pipeline, card)
    try:
        model.module().load_state_dict(state)
    except RuntimeError as e:  # shapes and names were checked: what is left is torch's own
        raise UserError(f"cannot load the weights {root / WEIGHTS}: {first_line(e)[:300]}") from None
    return card, pipeline, model.to(device)
