"""The portfolio in the order of the suite tasks nearest the data (``--portfolio-order nearest``).

Auto-sklearn 1.0's meta-learned warm start (Feurer, Springenberg & Hutter, *Initializing Bayesian
Hyperparameter Optimization via Meta-Learning*, AAAI 2015): describe every data set by a few
meta-features, find the meta-training data sets nearest the new one, and start the search with what
did best on them. Here the meta-features are what a search knows of any data before its first trial:
the rows it selects with, the classes and the estimated noise rate of its labels (the study's noise
profile; the input kind already picks the portfolio's half). A data set is the point
``m = (log10 rows, log2 classes, noise rate)``; the distance is the L1 distance with every coordinate
divided by its range over the suite's tasks, ``d(a, b) = sum_j |a_j - b_j| / range_j``. The tasks
nearest the data come first, each giving its best entry not yet taken; the entries no task gave
keep the file's (greedy) order after them.

A portfolio file records the tasks under ``nearest``, per data kind, each with its meta-features
and the portfolio's entries best first on it (``benchmarks/portfolio.py build`` writes them), and,
under ``order``, the order a search takes per data kind when ``--portfolio-order`` is not given
(``fixed`` for a kind it does not name; the build names ``nearest`` where the leave-one-task-out
evaluation showed it better than the fixed order)::

    order:
      vectors: nearest
    nearest:
      vectors:
      - {task: vec00-n400-d10-k3-symmetric0.2, rows: 360, classes: 3, noise: 0.21, order: [a, b, c]}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl_noisy.errors import UserError
from automl_noisy.search.portfolio import KINDS, Entry, read_portfolio_file

ORDERS = ("fixed", "nearest")


@dataclass(frozen=True)
class SuiteTask:
    """One meta-training task: its meta-features and the portfolio's entries, best first on it."""

    task: str
    rows: int
    classes: int
    noise: float
    order: tuple[str, ...]

    def point(self) -> tuple[float, float, float]:
        return meta_point(self.rows, self.classes, self.noise)


def meta_point(rows: int, classes: int, noise: float) -> tuple[float, float, float]:
    """A data set's meta-features: ``(log10 rows, log2 classes, noise rate)``."""
    return math.log10(max(rows, 1)), math.log2(max(classes, 2)), float(noise)


def file_order(path: str | Path, kind: str) -> str:
    """The order the portfolio file ``path`` names for data of ``kind`` (its ``order`` mapping), ``fixed``
    where it names none; a mistake is one UserError naming the file."""
    return order_in(read_portfolio_file(path), path, kind)


def order_in(doc: Any, path: str | Path, kind: str) -> str:
    """:func:`file_order` of a portfolio file's parsed YAML ``doc`` (``path`` names it in errors)."""
    orders = doc.get("order") if isinstance(doc, Mapping) else None
    if orders is None:
        return "fixed"
    if (not isinstance(orders, Mapping) or set(orders) - set(KINDS)
            or any(o not in ORDERS for o in orders.values())):
        raise UserError(f"{path}: order maps {' and/or '.join(KINDS)} to one of {', '.join(ORDERS)}")
    return orders.get(kind, "fixed")


def load_nearest(path: str | Path, entries: Mapping[str, Sequence[Entry]]) -> dict[str, list[SuiteTask]]:
    """The ``nearest`` tasks of a portfolio file per data kind (none for a kind it does not record);
    every mistake is one UserError naming the file, an entry name the kind's portfolio lacks included."""
    return nearest_in(read_portfolio_file(path), path, entries)


def nearest_in(doc: Any, path: str | Path, entries: Mapping[str, Sequence[Entry]]) -> dict[str, list[SuiteTask]]:
    """:func:`load_nearest` of a portfolio file's parsed YAML ``doc`` (``path`` names it in errors)."""
    nearest = doc.get("nearest") if isinstance(doc, Mapping) else None
    if nearest is None:
        return {}
    if not isinstance(nearest, Mapping) or set(nearest) - set(KINDS):
        raise UserError(f"{path}: nearest maps {' and/or '.join(KINDS)} to lists of suite tasks")
    out: dict[str, list[SuiteTask]] = {}
    for kind, records in nearest.items():
        names = {e.name for e in entries.get(kind, ())}
        out[kind] = [_task(path, kind, i, record, names) for i, record in enumerate(records or [])]
    return out


def _task(path: str | Path, kind: str, i: int, record: object, names: set[str]) -> SuiteTask:
    where = f"{path}: nearest {kind} task {i + 1}"
    if not isinstance(record, Mapping):
        raise UserError(f"{where} must be a mapping of task, rows, classes, noise and order")
    try:
        task = SuiteTask(str(record["task"]), int(record["rows"]), int(record["classes"]), float(record["noise"]),
                         tuple(str(e) for e in record["order"]))
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{where} needs task, rows (a count), classes (a count), noise (a rate) and order "
                        "(entry names)") from None
    if task.rows < 1 or task.classes < 2 or not 0.0 <= task.noise <= 1.0:
        raise UserError(f"{where}: rows must be at least 1, classes at least 2 and noise in [0, 1]")
    unknown = [e for e in task.order if e not in names]
    if unknown:
        raise UserError(f"{where} orders entries the {kind} portfolio does not have: {', '.join(unknown)}")
    return task


def nearest_order(entries: Sequence[Entry], tasks: Sequence[SuiteTask], rows: int, classes: int,
                  noise: float) -> list[Entry]:
    """``entries`` in the order the tasks nearest the data ``(rows, classes, noise)`` give them (see the
    module docstring); ties in distance keep the file's order of the tasks.

    >>> a, b, c = Entry("a", {}), Entry("b", {}), Entry("c", {})
    >>> tasks = [SuiteTask("small", 300, 3, 0.2, ("a", "b")), SuiteTask("noisy", 900, 6, 0.7, ("c", "b"))]
    >>> [e.name for e in nearest_order([a, b, c], tasks, rows=1000, classes=5, noise=0.6)]
    ['c', 'a', 'b']
    """
    if not tasks:
        return list(entries)
    points = [t.point() for t in tasks]
    ranges = [max(p[j] for p in points) - min(p[j] for p in points) or 1.0 for j in range(3)]
    here = meta_point(rows, classes, noise)
    distance = [sum(abs(p[j] - here[j]) / ranges[j] for j in range(3)) for p in points]
    by_name = {e.name: e for e in entries}
    out: list[Entry] = []
    for i in sorted(range(len(tasks)), key=lambda i: distance[i]):
        best = next((by_name[e] for e in tasks[i].order if e in by_name and by_name[e] not in out), None)
        if best is not None:
            out.append(best)
    return out + [e for e in entries if e not in out]
