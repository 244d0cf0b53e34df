"""The model folder ``train`` writes: everything needed to predict, loaded without running any
code from the folder.

| file | what | read with |
|---|---|---|
| ``model.pt`` | the weights (``state_dict``) | ``torch.load(..., weights_only=True)`` |
| ``model.json`` | class names, the fitted preprocessing (input shape included), networks, data, versions | JSON |
| ``pipeline.yaml`` | the pipeline that was trained | ``yaml.safe_load`` |
| ``metrics.json``, ``label_issues.csv`` | what training measured | |

Paths inside are relative, so a folder moved or copied elsewhere still loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from automl_noisy.components.base import Classifier
from automl_noisy.data import NoisyDataset
from automl_noisy.data.preprocessing import Preprocessing
from automl_noisy.errors import UserError
from automl_noisy.pipeline import Pipeline, read_pipeline_file
from automl_noisy.train.trainer import build_networks, saved_module
from automl_noisy.versions import versions

FORMAT = "automl-noisy model"
FORMAT_VERSION = 1
WEIGHTS, CARD, PIPELINE = "model.pt", "model.json", "pipeline.yaml"


@dataclass(frozen=True)
class ModelCard:
    """What ``model.json`` holds besides the format: the classes (``class_names[k]`` is output
    ``k``), the preprocessing, how many networks the weights hold, the data the model learned from
    and the versions it was trained with."""

    class_names: tuple[str, ...]
    preprocessing: Preprocessing
    networks: int
    data_source: str
    data_fingerprint: str
    versions: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "weights": WEIGHTS, "pipeline": PIPELINE,
                "class_names": list(self.class_names), "networks": self.networks,
                "preprocessing": self.preprocessing.to_dict(),
                "data": {"source": self.data_source, "fingerprint": self.data_fingerprint},
                "versions": dict(self.versions)}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> ModelCard:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise UserError(f"{where} is not an automl-noisy model description (no \"format\": \"{FORMAT}\")")
        if d.get("format_version") != FORMAT_VERSION:
            raise UserError(f"{where} has model format version {d.get('format_version')!r}; this automl-noisy "
                            f"reads version {FORMAT_VERSION}: train the model again, or use the version that wrote it")
        try:
            names = tuple(str(c) for c in d["class_names"])
            networks = int(d["networks"])
            preprocessing = Preprocessing.from_dict(d["preprocessing"])
            data = d.get("data") or {}
            card = cls(names, preprocessing, networks, str(data.get("source", "")), str(data.get("fingerprint", "")),
                       {str(k): str(v) for k, v in (d.get("versions") or {}).items()})
        except UserError as e:
            raise UserError(f"{where}: {e}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UserError(f"{where} is malformed ({type(e).__name__}: {e}); train the model again") from None
        if len(names) < 2 or networks < 1:
            raise UserError(f"{where} is malformed: {len(names)} class(es), {networks} network(s)")
        return card


def write_model_folder(out: Path, pipeline: Pipeline, data: NoisyDataset, networks: list[Classifier]) -> None:
    """Write the weights of ``networks``, ``model.json`` and ``pipeline.yaml`` into ``out``."""
    card = ModelCard(data.class_names, data.preprocessing, len(networks), data.spec.source, data.fingerprint,
                     versions())
    torch.save(saved_module(networks).state_dict(), out / WEIGHTS)
    (out / CARD).write_text(json.dumps(card.to_dict(), indent=1), encoding="utf-8")
    (out / PIPELINE).write_text(pipeline.to_yaml(), encoding="utf-8")


def read_model_folder(folder: str | Path,
                      device: torch.device) -> tuple[ModelCard, Pipeline, list[Classifier]]:
    """The card, the pipeline and the networks (weights loaded, in evaluation mode, on ``device``)
    of a model folder; every problem with the folder is a UserError."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"model folder {root} {'is not a folder' if root.exists() else 'does not exist'}; "
                        "pass the folder 'automl-noisy train -o' wrote")
    card_path = root / CARD
    if not card_path.is_file():
        raise UserError(f"{root} has no {CARD}, so it is no model folder (or one an older version wrote); "
                        f"train the pipeline again with 'automl-noisy train PIPELINE -o {root}'")
    try:
        raw = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"cannot read {card_path}: {e}") from None
    card = ModelCard.from_dict(raw, str(card_path))
    pipeline, _ = read_pipeline_file(str(root / PIPELINE))
    networks = build_networks(pipeline, card.preprocessing.input_shape, len(card.class_names))
    if len(networks) != card.networks:
        raise UserError(f"{card_path} names {card.networks} network(s), {root / PIPELINE} builds {len(networks)}")
    weights = root / WEIGHTS
    if not weights.is_file():
        raise UserError(f"{root} has no {WEIGHTS}; the weights are missing")
    try:
        state = torch.load(weights, map_location=device, weights_only=True)
        saved_module(networks).load_state_dict(state)
    except Exception as e:  # a truncated, corrupt or foreign file: torch raises many kinds
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot load the weights {weights}: {first[:300]}") from None
    for net in networks:
        net.to(device).eval()
    return card, pipeline, networks
