"""The prose of the benchmark sections is written by their scripts from the results: the readings of
``benchmarks/reliability.py`` and ``benchmarks/model_selection.py``, the sentence on other load
during a run and the lines that name the code measured (``benchmarks/_common.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import model_selection  # noqa: E402
import reliability  # noqa: E402
from _common import OtherLoad, _ticks_between, _tree_ticks, machine, package_since, paused_between, write_whole  # noqa: E402

KILLED = {"completed before the kill": 4, "lost": 0, "RUNNING after the kill": 2,
          "marked by the rerun": {"FAIL (interrupted)": 2}, "rerun exit": 0, "total reached": "12/12",
          "Ray processes left": 9, "all gone after (s)": "63"}
RESTARTED = {"restart took (s)": "0.3", "driver exit": 0, "driver's last line": "", "driver's total": "10/10",
             "lost": 0, "rerun exit": 0, "total reached": "10/10", "left RUNNING": 0}


def test_the_reliability_reading_says_what_the_rows_say():
    results = {"driver kill -9": [KILLED, {**KILLED, "all gone after (s)": "62"}],
               "trial raises": [{"trial 1": "FAIL", "reason": "fold 0: UserError: unknown model",
                                 "other trials": {"COMPLETE": 3}, "total reached": "4/4"}],
               "PostgreSQL restarted": [RESTARTED, {**RESTARTED, "restart took (s)": "0.5"}]}
    text = reliability.reading(results)
    assert text.startswith("**Reading.** No scenario lost a completed trial or left a study stuck.")
    assert "left 2 trials RUNNING; the rerun marked them FAIL (interrupted)" in text
    assert "2 of 2 runs reached the total. The local Ray it had started (9 processes) exited on its own after 62-63 s" in text
    assert 'A trial that raises ended FAIL ("fold 0: UserError: unknown model"); 1 of 1 runs' in text
    assert "(0.3-0.5 s): the driver rode the restart out and finished on its own in 2 of 2 runs" in text
    assert "diverges" not in text and "node" not in text  # scenarios not run are not read


def test_the_reliability_reading_names_what_went_wrong():
    results = {"driver kill -9": [{**KILLED, "lost": 1, "total reached": "11/12", "all gone after (s)": "> 180"}],
               "PostgreSQL restarted": [{**RESTARTED, "driver exit": 1, "driver's total": "4/10", "left RUNNING": 2},
                                        {"error": "RuntimeError: 2 complete trials: not after 600 s"}]}
    text = reliability.reading(results)
    assert "No scenario" not in text and "Completed trials lost: 1." in text
    assert "Short of the total in some run: driver kill -9." in text
    assert "Trials left RUNNING in some run: PostgreSQL restarted." in text
    assert "Runs that broke: PostgreSQL restarted run 2 (RuntimeError: 2 complete trials: not after 600 s)." in text
    assert "was still there after 180 s" in text
    assert "finished on its own in 0 of 1 runs (exits 1)" in text


def _run(exported: float, plain_ce: float, loss: float = 0.0, spearman: float = 0.9) -> dict:
    return {"exported": exported, "plain_ce": plain_ce, "loss": loss, "spearman": spearman}


def test_the_model_selection_reading_counts_seeds_and_standard_errors():
    results = {("symmetric:0.8", 0): {"kfold-best": [_run(0.75, 0.61), _run(0.75, 0.61)],
                                      "holdout-last": [_run(0.65, 0.57, 0.09, 0.4), _run(0.66, 0.57, 0.09, 0.4)]},
               ("symmetric:0.8", 1): {"kfold-best": [_run(0.444, 0.614)], "holdout-last": [_run(0.6, 0.5, 0.2, 0.2)]}}
    text = model_selection.reading(results, ["symmetric:0.8"], ("holdout-last", "kfold-best"), 2, 360)
    assert "symmetric:0.8, kfold-best: the export beat plain CE on 1 of 2 seeds (exported − plain CE -0.170 to +0.140" in text
    assert "below it by more than one standard error on seed 1: 0.444 against 0.614." in text
    assert "holdout-last: the export beat plain CE on 2 of 2 seeds" in text
    assert "selection loss from 0.145 to 0.000 and the rank correlation of trial values with clean accuracy from 0.30 to 0.90" in text
    assert text.endswith("The same command run again gave exports up to 0.010 apart.")


def test_the_other_load_sentence_is_written_from_its_samples():
    load = OtherLoad(every=10)
    assert "not measured" in load.sentence()
    load.samples = [(0.2, 0.01), (0.3, 0.05)]
    assert not load.skewed
    assert load.sentence() == "Other load during the run: at most 0.05 cores busy (2 samples, one every 10 s)."
    load.samples = [(1.0, 0.0), (3.2, 1.0), (16.1, 0.9), (25.4, 0.1)]
    assert load.skewed and load.busy_minutes == [3.2, 16.1]
    assert load.sentence() == ("Other load during the run: 0.50 cores busy on average; more than 0.2 in 2 of 4 samples "
                               "(one every 10 s), from minute 3 to minute 16 of 25, up to 1.00.")


def test_a_child_that_ends_between_samples_is_not_read_as_other_load():
    """A process of the benchmark's tree that exits (a local Ray shutting down) leaves the next sample
    without a negative share: before, its vanished CPU time read as hundreds of busy cores."""
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        before = _tree_ticks(os.getpid())
        assert any(pid == child.pid for pid, _ in before)  # a live descendant is counted
    finally:
        child.kill()
        child.wait()
    after = _tree_ticks(os.getpid())
    assert all(pid != child.pid for pid, _ in after)
    assert _ticks_between(before, after) >= 0


def test_model_selection_goes_on_where_an_interrupted_run_stopped(tmp_path, monkeypatch):
    """Each finished noise-seed is kept for an identical package; a second run with the same plan runs
    only the rest, and the section says how many were kept."""
    calls, written, interrupt = [], {}, [("symmetric:0.8", 1)]

    def one_setting(noise, seed, trials, repeat, modes):
        calls.append((noise, seed))
        if (noise, seed) in interrupt:
            interrupt.clear()
            raise KeyboardInterrupt  # the first run stops here
        return {"kfold-best": [{"exported": 0.8, "plain_ce": 0.7, "oracle": 0.9, "loss": 0.1, "spearman": 0.5,
                                "trials": 4, "seconds": 1.0, "run": 0}]}

    monkeypatch.setattr(model_selection, "one_setting", one_setting)
    monkeypatch.setattr(model_selection, "PARTIAL", tmp_path / "partial.json")
    monkeypatch.setattr(model_selection, "code_tree", lambda: "tree0123456789")
    monkeypatch.setattr(model_selection, "write_section", lambda name, body: written.update({name: body}))
    argv = ["model_selection.py", "--noise", "symmetric:0.8", "--seeds", "2", "--trials", "4", "--modes", "kfold-best",
            "--section", "test"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(KeyboardInterrupt):
        model_selection.main()
    assert calls == [("symmetric:0.8", 0), ("symmetric:0.8", 1)] and not written
    model_selection.main()
    assert calls[2:] == [("symmetric:0.8", 1)]  # seed 0 was kept
    assert "1 of the 2 noise-seeds were kept from an interrupted run of the same package (git tree tree012345" \
        in written["test"]
    monkeypatch.setattr(sys, "argv", [*argv[:4], "3", *argv[5:]])  # another plan: nothing is reused
    model_selection.main()
    assert calls[3:] == [("symmetric:0.8", 0), ("symmetric:0.8", 1), ("symmetric:0.8", 2)]


def test_the_ship_section_reads_the_ce_guard_arm_when_its_rows_have_it():
    import ship

    def row(seed, best, new, guard, guard_acc):
        return {"task": "digits pair:0.4", "seed": seed, "default": "ensemble", "minutes": 4.0, "trials": 20,
                "best_trial": best, "new_trial": new, "ce_trial": 0, "new_methods": {}, "best_recorded": 0.90,
                "ce_recorded": 0.70, "today": 0.90, "new_ensemble": 0.80, "new_refit": 0.78, "ce_ensemble": 0.70,
                "test_rows": 360, "new_ensemble_vs_ce": [0.10, 0.02], "new_refit_vs_ce": [0.08, 0.02],
                "guard_trial": guard, "guard_ensemble": guard_acc, "guard_ensemble_vs_ce": [guard_acc - 0.70, 0.02]}

    runs = {"machine": "2026-12-03; commit abc", "load": "", "minutes": 12.0,
            "rows": [row(0, 8, 7, 8, 0.91), row(1, 8, 1, 0, 0.70), row(2, 5, 5, 5, 0.89)]}
    text = ship.render(runs)
    line = next(x for x in text.splitlines() if x.startswith("- **ce-guard + ensemble**"))
    assert "on 0 of 3 searches: met" in line and "median -0.010 (met)" in line
    assert "worst -0.200 (**missed**)" in line and "another trial than the best in 1 searches" in line
    assert "8=8 0<8 5=5" in text  # the ce-guard pick against the best, by seed
    old = {**runs, "rows": [{k: v for k, v in r.items() if not k.startswith("guard")} for r in runs["rows"]]}
    assert "ce-guard" not in ship.render(old)  # a record from before the arm reads as it did


def test_a_write_that_fails_leaves_the_kept_rows_as_they_were(tmp_path, monkeypatch):
    """The partial files hold hours of searches: a run stopped while writing one must not leave half a
    file. ``write_whole`` writes beside it and renames, so the old file stays until the new one is whole."""
    kept = tmp_path / "partial.json"
    write_whole(kept, '{"rows": [1]}')
    assert kept.read_text(encoding="utf-8") == '{"rows": [1]}' and [p.name for p in tmp_path.iterdir()] == [kept.name]

    def stopped(self, text, encoding=None):
        Path.write_bytes(self, text[:5].encode())  # half written, then the run stops
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", stopped)
    with pytest.raises(KeyboardInterrupt):
        write_whole(kept, '{"rows": [1, 2]}')
    monkeypatch.undo()
    assert kept.read_text(encoding="utf-8") == '{"rows": [1]}' and [p.name for p in tmp_path.iterdir()] == [kept.name]


def test_a_record_names_the_code_it_measured_not_the_code_it_was_written_at():
    """A run of hours names the commit it started at, and a section written from its record at a later
    package says which files of the package differ."""
    root = Path(__file__).resolve().parents[1]
    assert "; commit 0123abc; " in machine("commit 0123abc")
    assert package_since("unknown commit") == ""
    listed = subprocess.run(["git", "log", "--format=%h", "--", "automl_noisy"], cwd=root, capture_output=True,
                            text=True)
    commits = listed.stdout.split()
    if listed.returncode or len(commits) < 2:
        pytest.skip("no git history of the package here")
    now = subprocess.run(["git", "status", "--porcelain", "--", "automl_noisy"], cwd=root, capture_output=True,
                         text=True).stdout.strip()
    if not now:  # the checkout's package is its last commit's
        assert package_since(f"commit {commits[0]}") == ""
    first = commits[-1]  # the package's first commit differs from today's in nearly every file
    said = package_since(f"commit {first}")
    assert said.startswith(f"Measured at the package of commit {first}; ") and " differed from it in " in said


def test_a_run_waits_between_searches_while_its_pause_file_exists(tmp_path):
    """Between two timed searches a run can be paused (by a file) so the machine does other work; no
    load is sampled meanwhile, and it goes on once the file is gone."""
    flag = tmp_path / "run.pause"
    flag.touch()
    with OtherLoad(every=0.01) as load:
        waiting = threading.Thread(target=paused_between, args=(flag, load, 0.01))
        waiting.start()
        assert load.paused.wait(timeout=60)  # it is waiting: the load samples nothing now
        assert waiting.is_alive()
        flag.unlink()
        waiting.join(timeout=60)
        assert not waiting.is_alive() and not load.paused.is_set()
