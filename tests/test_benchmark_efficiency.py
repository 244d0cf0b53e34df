"""The reading of ``benchmarks/efficiency.py`` says what its rows say: targets met or missed by how much,
the default picked by the pre-registered rule, and a partial run called partial."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import efficiency  # noqa: E402

MARKS = [90.0, 180.0, 240.0, 360.0]


def row(task: str, seed: int, arm: str, test: float, saved: float, early: float | None = None) -> dict:
    marks = {}
    for mark in MARKS:
        value = early if (early is not None and mark == 90.0) else test
        marks[str(int(mark))] = {"trials": 10, "fold_epochs": int(round(300 * (1 - saved))), "full_epochs": 300,
                                 "test": value, "trial": 3}
    return {"task": task, "seed": seed, "arm": arm, "wall": 360.0, "marks": marks}


def runs(rows: list[dict]) -> dict:
    return {"machine": "2026-12-03; commit abc; 2 CPU cores", "load": "", "budget": 360.0, "marks": MARKS,
            "rows": rows}


def full(racing_sym8: float = 0.90) -> list[dict]:
    rows = []
    for seed in efficiency.SEEDS:
        for task in efficiency.TASKS:
            rows.append(row(task, seed, "today", 0.85, 0.2, early=0.80))
            rows.append(row(task, seed, "racing", racing_sym8 if task == "digits symmetric:0.8" else 0.86, 0.6))
            rows.append(row(task, seed, "halving", 0.84, 0.7, early=0.82))
            rows.append(row(task, seed, "racing+halving", 0.70, 0.8))
    return rows


def test_a_whole_run_reads_its_targets_and_picks_the_default_by_the_rule():
    text = efficiency.render(runs(full()))
    assert "Partial" not in text
    assert "- **digits symmetric:0.4, 90 s**: the best arm (racing) exports 0.860 against `today` at 240 s 0.850" \
           " (target: at least as much): met." in text
    assert "- **Epochs, racing**: 60% of the fold-epochs saved" in text
    assert "worst task +0.010. Target (>= 50 % saved, every task within 0.01): met." in text
    assert "- **Epochs, today**: 20%" in text and text.count("**missed**.") == 2  # today, racing+halving (halving: -0.010 is within)
    assert "the rule picks **racing**." in text
    assert "- **digits symmetric:0.8 at 240 s** (racing): 0.900 (target >= 0.88: met)." in text


def test_a_missed_target_says_by_how_much():
    text = efficiency.render(runs(full(racing_sym8=0.80)))
    assert "(target >= 0.88: **missed** by 0.080)" in text
    assert "- **digits symmetric:0.8, 90 s**: the best arm (halving) exports 0.820 against `today` at 240 s 0.850" \
           " (target: at least as much): **missed** by 0.030." in text


def test_a_missed_target_says_why_when_the_record_names_the_queue():
    """The record keeps how many pipelines each task queues (plain CE and the portfolio, run in full
    under every arm); a missed mark then says how many trials had finished against that queue, and a
    missed epochs target how much of the trials the queue was."""
    record = runs(full(racing_sym8=0.80))
    record["queued"] = {task: 9 for task in efficiency.TASKS}
    text = efficiency.render(record)
    assert ("(target: at least as much): **missed** by 0.030. Why: by 90 s a search had finished 10 trials (median "
            "over arms and seeds), and a search first runs the 9 pipelines it queues") in text
    assert "so about 1 trial the sampler drew had finished" in text
    assert ("- **Epochs, today**: 20% of the fold-epochs saved at 360 s (median over task-seeds); its export against "
            "`today`'s at 360 s, worst task +0.000. Target (>= 50 % saved, every task within 0.01): **missed**. Why: "
            "the queued pipelines, trained in full under every arm, were 90% of the trials finished by 360 s") in text
    assert "(target >= 0.88: **missed** by 0.080). Why: by 240 s" in text
    assert "Why:" not in efficiency.render(runs(full(racing_sym8=0.80)))  # a record without the queue says no why


def test_a_tie_goes_to_the_arm_that_trains_fewer_epochs():
    rows = [r for r in full() if r["arm"] in ("today", "racing")]
    rows += [{**r, "arm": "halving", "marks": {m: {**v, "fold_epochs": 10} for m, v in r["marks"].items()}}
             for r in rows if r["arm"] == "racing"]
    pick, means = efficiency.default_arm(rows, MARKS)
    assert means["halving"] == means["racing"] and pick == "halving"


def test_a_partial_run_says_so():
    rows = [r for r in full() if r["seed"] == 0]
    text = efficiency.render(runs(rows))
    assert "- **Partial**: 20 of 60 searches so far" in text
    assert "| digits symmetric:0.4 | today" in text


def test_a_mark_with_nothing_exported_reads_as_a_miss_and_scores_zero():
    """Before any trial has finished (encoders still pretraining at 90 s), an arm exports nothing: the
    target reads missed, the table says so, and the default rule counts it as 0, not as absent."""
    rows = []
    for seed in efficiency.SEEDS:
        for task in efficiency.TASKS:
            rows.append(row(task, seed, "today", 0.85, 0.2, early=None))
            rows.append(row(task, seed, "racing", 0.84, 0.6, early=None if seed else 0.80))
    for r in rows:
        if r["arm"] == "today":
            r["marks"]["90"]["test"] = None
        if r["arm"] == "racing" and r["seed"]:
            r["marks"]["90"]["test"] = None
    text = efficiency.render(runs(rows))
    assert "- **digits symmetric:0.4, 90 s**: no arm had exported a model by then (`today` at 240 s: 0.850): " \
           "**missed**." in text
    assert "| —, nothing in 3 " in text and "0.800 (0.800-0.800), nothing in 2 " in text
    pick, means = efficiency.default_arm(rows, MARKS)
    assert means["today"] == statistics.mean([0.0, 0.85, 0.85, 0.85])  # nothing at 90 s counts 0, not absent
    assert pick == "today"


def test_rows_of_another_plan_are_not_reused(tmp_path, monkeypatch):
    import json

    from _common import finished_rows

    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"tree": "t", "plan": json.loads(json.dumps(efficiency.plan())), "rows": [{"x": 1}]}))
    assert finished_rows(partial, "t", efficiency.plan()) == [{"x": 1}]
    monkeypatch.setattr(efficiency, "MARKS", (90.0, 180.0))
    assert finished_rows(partial, "t", efficiency.plan()) == []
    monkeypatch.undo()
    monkeypatch.setattr(efficiency, "REFERENCE_PLAIN_SECONDS", 1.0)  # budgets of another reference machine
    assert finished_rows(partial, "t", efficiency.plan()) == []


def test_the_section_says_in_which_seconds_its_budgets_are():
    """Rows of runs on machines of different speed keep their factor; the section says the budgets are
    reference seconds and which factors the searches ran at."""
    assert efficiency.speed([]) == "Budgets and marks are in wall seconds of this machine."
    said = efficiency.speed([{"factor": 3.04}, {"factor": 1.1}])
    assert "reference seconds" in said and "f = 1.10-3.04" in said
    assert "1 rows with f" not in efficiency.speed([{"factor": 2.0}])
    text = efficiency.render(runs([{**row("digits symmetric:0.4", 0, "today", 0.98, 0.1), "factor": 2.5}]))
    assert "f = 2.50" in text


def test_a_timed_search_waits_for_an_idle_machine_and_samples_no_load_meanwhile(capsys):
    import _common

    values, paused = iter([0.9, 0.5, 0.1]), []
    load = _common.OtherLoad(every=3600.0)

    def sample() -> float:
        paused.append(load.paused.is_set())
        return next(values)

    assert _common.waited_for_idle(load, cores=0.2, sample=sample) >= 0.0
    assert next(values, None) is None and paused == [True, True, True] and not load.paused.is_set()
    out = capsys.readouterr().out
    assert "waiting for an idle machine: other work keeps 0.90 cores busy" in out and "idle after" in out


def test_the_other_load_of_a_search_is_the_mean_of_its_own_samples():
    import _common

    load = _common.OtherLoad(every=3600.0)
    load.samples += [(0.1, 1.5), (0.2, 0.0), (0.3, 0.2)]
    assert _common.other_load_since(load, 1) == 0.1 and _common.other_load_since(load, 3) == 0.0
