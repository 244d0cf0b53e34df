"""Fold models a search kept (``automl_noisy.search.fold_models``): the record beside them that
says what they are, and reading them back for ``train``, which ships them instead of training them
again when they are exactly what it would train."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from automl_noisy.components import complete
from automl_noisy.errors import UserError
from automl_noisy.pipeline import Pipeline

#: the record of a trial's kept fold models
META = "meta.json"


def write_meta(folder: Path, pipeline: dict[str, Any], best_epoch: int, folds: int, fingerprint: str) -> None:
    """Record, beside ``folder``'s fold models, the pipeline (without its best epoch), the epoch they
    stopped at, the folds and the data's fingerprint."""
    meta = {"pipeline": pipeline, "best_epoch": best_epoch, "folds": folds, "data_fingerprint": fingerprint}
    (folder / META).write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")


def kept_fold_models(folder: str | Path | None, pipeline: Pipeline, best_epoch: int | None, folds: int,
                     fingerprint: str) -> list[Path] | None:
    """The weight files of the fold models in ``folder`` (one trial's), fold by fold, when they were
    trained for exactly this pipeline (its best epoch aside), best epoch, folds and data; None
    otherwise, or when any is missing. Both pipelines are compared with every default written down
    (an export writes them all; the search records what it sampled)."""
    if folder is None or best_epoch is None:
        return None
    folder = Path(folder)
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    same = (_spelled_out(meta.get("pipeline")) == complete(replace(pipeline, best_epoch=None)).to_dict()
            and meta.get("best_epoch") == best_epoch and meta.get("folds") == folds
            and meta.get("data_fingerprint") == fingerprint)
    paths = [folder / f"fold-{i}.pt" for i in range(folds)]
    return paths if same and all(p.is_file() for p in paths) else None


def _spelled_out(recorded: Any) -> Any:
    """A recorded pipeline with every default written down; as recorded when this version cannot read it."""
    try:
        return complete(Pipeline.from_dict(recorded)).to_dict()
    except (UserError, TypeError, ValueError):
        return recorded
