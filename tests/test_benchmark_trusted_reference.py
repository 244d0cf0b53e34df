"""The "trusted-reference" section of BENCHMARKS.md is written whole by ``benchmarks/trusted_reference.py``
from its rows: the table, the rule's pick, and whether the code's network for images is that pick."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import trusted_reference as tr  # noqa: E402

RUN = {"machine": "a machine", "commit": "", "load": "No other load.", "minutes": 20.0}


def _rows(values: dict[str, float]) -> list[dict]:
    return [{"task": t, "seed": s, "arm": arm, "test_accuracy": values[arm] + s / 1000}
            for t in tr.TASKS for s in tr.SEEDS for arm in tr.ARMS]


def test_the_pick_is_read_from_every_run_and_compared_with_the_code():
    values = dict(zip(tr.ARMS, (0.88, 0.80, 0.95, 0.952, 0.90)))  # the fine-tuned cnn leads by less than TIE
    text = tr.render({**RUN, "rows": _rows(values)})
    assert "- The rule picks **cnn, frozen encoder**; the code's network for images is cnn, frozen encoder (the pick)." in text
    values = dict(zip(tr.ARMS, (0.95, 0.80, 0.93, 0.952, 0.90)))  # a lead within TIE goes to the simpler arm
    assert "The rule picks **baseline (mlp, random start)**" in tr.render({**RUN, "rows": _rows(values)})
    assert "(**not the pick**)" in tr.render({**RUN, "rows": _rows(values)})
    assert "The two tasks give the same numbers" in text


def test_a_partial_run_picks_nothing():
    rows = [r for r in _rows(dict.fromkeys(tr.ARMS, 0.9)) if r["seed"] != tr.SEEDS[-1]]
    text = tr.render({**RUN, "rows": rows})
    assert "**Partial**" in text and "no pick yet" in text
