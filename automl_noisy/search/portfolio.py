"""Warm start: pipelines a search runs right after its baseline, before the sampler draws.

A portfolio file (``search_spaces/portfolio.yaml``, built offline across many tasks by
``benchmarks/portfolio.py``, as Auto-sklearn 2.0's greedy portfolio) lists, per data kind, named
pipelines as Optuna parameters of the search space::

    vectors:
      - name: gce
        params: {loss: gce, loss.gce.q: 0.7}
    images:
      - name: dividemix-finetuned
        params: {model: cnn, preset: dividemix, start: finetune, start.finetune.body_lr: 0.1}

A parameter an entry does not give takes the space's default (the baseline's), so an entry is one
pipeline, the same in every search. Entries whose values the user's space does not allow (a model
that does not fit the data, a choice the space leaves out, a value outside a range) are skipped.
The same machinery enqueues the best pipelines of an earlier study (``--warm-start``), and, before
both, the reference pipelines the data calls for (:func:`references`): with trusted rows, the one that
learns from them alone as the labeled set.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from automl_noisy.data import DataSpec
from automl_noisy.errors import UserError
from automl_noisy.pipeline import Pipeline, read_yaml_file
from automl_noisy.search.space import SPACES_DIR, SearchSpace

DEFAULT_PORTFOLIO = SPACES_DIR / "portfolio.yaml"
KINDS = ("vectors", "images")


@dataclass(frozen=True)
class Entry:
    """One pipeline to run early: a name, and Optuna parameters of the space (the rest default)."""

    name: str
    params: Mapping[str, Any]


def data_kind(input_shape: tuple[int, ...]) -> str:
    """``images`` for image-shaped data ``(C, H, W)``, else ``vectors``."""
    return "images" if len(input_shape) == 3 else "vectors"


def load_portfolio(path: str | Path) -> dict[str, list[Entry]]:
    """Read a portfolio file: data kind -> entries. Every mistake is one UserError naming the file."""
    return portfolio_entries(read_portfolio_file(path), path)


def read_portfolio_file(path: str | Path) -> Any:
    """The parsed YAML of the portfolio file ``path`` (one UserError naming it where it cannot be read),
    for a caller that reads several of its parts: :func:`portfolio_entries`,
    :func:`~automl_noisy.search.nearest.order_in` and :func:`~automl_noisy.search.nearest.nearest_in`."""
    return read_yaml_file(str(path), "portfolio file")


def portfolio_entries(doc: Any, path: str | Path) -> dict[str, list[Entry]]:
    """Data kind -> entries of a portfolio file's parsed YAML ``doc``; every mistake is one UserError
    naming the file ``path``."""
    if not isinstance(doc, Mapping) or not set(doc) & set(KINDS):
        raise UserError(f"{path}: a portfolio maps {' and/or '.join(KINDS)} to lists of {{name, params}} entries")
    out: dict[str, list[Entry]] = {}
    for kind in KINDS:
        entries = doc.get(kind) or []
        if not isinstance(entries, list):
            raise UserError(f"{path}: {kind} must be a list of {{name, params}} entries")
        out[kind] = []
        for i, entry in enumerate(entries):
            if (not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str)
                    or not isinstance(entry.get("params", {}), Mapping)):
                raise UserError(f"{path}: {kind} entry {i + 1} must be a mapping with a 'name' and 'params'")
            out[kind].append(Entry(entry["name"], dict(entry.get("params") or {})))
    return out


def resolve(space: SearchSpace, given: Mapping[str, Any], data: DataSpec, seed: int) -> tuple[Pipeline, dict[str, Any]]:
    """The pipeline an entry's params name in ``space`` and its full Optuna params
    (``SearchSpace.fixed``); a value the space does not allow is a UserError naming it."""
    return space.fixed(given, data, seed)


def fitting(entries: list[Entry], space: SearchSpace, data: DataSpec, seed: int) -> list[tuple[Entry, dict[str, Any]]]:
    """The entries the space allows on this data, with their full Optuna parameters; an entry that
    makes the baseline's pipeline, or one an earlier entry makes, is left out."""
    out, seen = [], {repr(space.baseline(data, seed)[0].to_dict())}  # plain CE runs anyway
    for entry in entries:
        try:
            pipeline, params = resolve(space, entry.params, data, seed)
        except UserError:
            continue
        key = repr(pipeline.to_dict())
        if key not in seen:
            seen.add(key)
            out.append((entry, params))
    return out


#: the reference pipeline of data with trusted rows: ``selection: trusted`` with a semi-supervised method
TRUSTED_SEMI = "trusted+{semi}"
#: the network the reference trains, per kind of data, where the space offers it (else the baseline's):
#: for images the cnn on its self-supervised encoder, frozen, the pick of ``benchmarks/trusted_reference.py``
#: (BENCHMARKS.md "trusted-reference": 0.956 against 0.886 for the baseline's mlp on digits with 5 %
#: trusted, development seeds; fine-tuned 0.958, within the rule's tie); vectors keep the baseline's
REFERENCE_NETWORK: dict[str, dict[str, Any]] = {"images": {"model": "cnn", "start": "frozen"}, "vectors": {}}


def references(space: SearchSpace, data: DataSpec, seed: int, trusted: bool,
               kind: str = "vectors") -> list[tuple[str, dict[str, Any]]]:
    """``(name, params)`` of the reference pipelines for data of ``kind`` with (``trusted``) or without
    trusted rows: with them, ``selection: trusted`` with the first semi-supervised method the space
    lists (``trusted+mixmatch`` in the default space): the trusted rows as the labeled set, every
    other row unlabeled, on the kind's :data:`REFERENCE_NETWORK` where the space offers it (else the
    baseline's network), every other parameter at its default. It is to the trusted rows what plain CE
    is to the noisy labels, the plain use of them a search must beat, so it runs whatever the sampler
    or the portfolio would draw. None when the space offers no ``trusted`` selector or no
    semi-supervised method.

    >>> from automl_noisy.search.space import load_space
    >>> space = load_space("default").for_shape((64,), 1000, trusted=True)
    >>> [(name, params["selection"], params["semi"], params["start"]) for name, params in references(space, DataSpec(), 0, True)]
    [('trusted+mixmatch', 'trusted', 'mixmatch', 'random')]
    >>> images = load_space("default").for_shape((1, 8, 8), 1000, trusted=True)
    >>> [(params["model"], params["start"]) for _, params in references(images, DataSpec(), 0, True, "images")]
    [('cnn', 'frozen')]
    >>> references(load_space("default").for_shape((64,), 1000), DataSpec(), 0, False)
    []
    """
    semis = [c for c in space.families.get("semi", {}) if c != "none"]
    if not trusted or "trusted" not in space.families.get("selection", {}) or not semis:
        return []
    given = {"selection": "trusted", "semi": semis[0]}
    try:
        _, params = space.fixed({**given, **REFERENCE_NETWORK.get(kind, {})}, data, seed)
    except UserError:  # the space offers no such network or start: the baseline's
        _, params = space.fixed(given, data, seed)
    return [(TRUSTED_SEMI.format(semi=semis[0]), params)]


def best_distinct(study: optuna.Study, k: int, key: Callable[[FrozenTrial], Hashable | None]) -> list[FrozenTrial]:
    """The ``k`` best complete trials of ``study``, best first, the first of each ``key`` only (a
    trial whose key is None is left out)."""
    complete = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                      key=lambda t: t.value, reverse=True)  # type: ignore[arg-type, return-value]
    out, seen = [], set()
    for t in complete:
        found = key(t)
        if found is None or found in seen:
            continue
        seen.add(found)
        out.append(t)
        if len(out) == k:
            break
    return out


def best_of_study(study: optuna.Study, k: int) -> list[Entry]:
    """The ``k`` best complete trials of an earlier study with distinct pipelines, as entries."""
    def pipeline(t: FrozenTrial) -> str:
        return repr({**t.user_attrs.get("pipeline", {}), "data": None, "seed": None})

    return [Entry(f"{study.study_name}#{t.number}", dict(t.params)) for t in best_distinct(study, k, pipeline)]
