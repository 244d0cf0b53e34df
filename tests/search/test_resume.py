"""What a stopped or killed driver leaves behind, and what a resume makes of it."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from automl_noisy.cli import main
from automl_noisy.search import study as study_module

TINY = ["--data", "synthetic", "--samples", "300", "--dims", "8", "--classes", "3"]


def _search(capsys, storage: str, *extra: str) -> tuple[int, str, str]:
    code = main(["search", *TINY, "--executor", "local", "--no-progress", "--storage", storage, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def _reported_epochs(path: Path) -> int:
    """Epochs reported so far, read-only (never racing the driver that creates the database)."""
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return db.execute("SELECT count(*) FROM trial_intermediate_values").fetchone()[0]
    except sqlite3.OperationalError:  # no table yet, or locked for a moment
        return 0


def test_a_trial_no_driver_ever_named_is_failed_on_resume(tmp_path, capsys, monkeypatch):
    """A driver killed between ``study.ask()`` and its first attribute leaves a RUNNING trial with no
    driver and no heartbeat: the next resume fails it, says so, and still reaches its total."""
    storage = f"sqlite:///{tmp_path}/s.db"
    assert _search(capsys, storage, "--space", "quick", "--trials", "1")[0] == 0
    orphan = optuna.load_study(study_name=None, storage=storage).ask()  # ... and the driver dies here
    monkeypatch.setattr(study_module, "ORPHAN_SECONDS", 0.0)  # the orphan is old enough at once
    code, out, _ = _search(capsys, storage, "--space", "quick", "--trials", "2")
    assert code == 0 and "of which 1 interrupted by a stopped search" in out
    trials = optuna.load_study(study_name=None, storage=storage).trials
    assert trials[orphan.number].state == TrialState.FAIL and trials[orphan.number].user_attrs["interrupted"]
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 2
    assert not any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)


def test_a_young_trial_without_a_driver_is_left_to_its_driver(tmp_path, capsys):
    """Another driver may be between its ``ask`` and its first attribute: a resume leaves it alone."""
    storage = f"sqlite:///{tmp_path}/s.db"
    assert _search(capsys, storage, "--space", "quick", "--trials", "1")[0] == 0
    young = optuna.load_study(study_name=None, storage=storage).ask()
    assert _search(capsys, storage, "--space", "quick", "--trials", "2")[0] == 0
    assert optuna.load_study(study_name=None, storage=storage).trials[young.number].state == TrialState.RUNNING


def test_a_driver_killed_during_the_baseline_queues_plain_ce_again(tmp_path, capsys):
    """kill -9 during trial 0 (plain CE, what every effect is measured against): the resume fails it
    as interrupted and runs plain CE again, so the study gets its finished baseline."""
    space = tmp_path / "long.yaml"
    space.write_text("epochs: 300\nfamilies:\n  model: {mlp: {width: 32, depth: 1}}\n  loss: [ce, gce]\n")
    db = tmp_path / "s.db"
    exe = Path(sys.executable).with_name("automl-noisy")
    proc = subprocess.Popen([str(exe), "search", *TINY, "--space", str(space), "--trials", "2", "--executor", "local",
                             "--storage", f"sqlite:///{db}", "--no-progress", "--no-portfolio"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while proc.poll() is None and not _reported_epochs(db):
            time.sleep(0.05)  # the condition: trial 0 has reported an epoch
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (killed,) = optuna.load_study(study_name=None, storage=f"sqlite:///{db}").trials
    assert killed.state == TrialState.RUNNING and killed.user_attrs["baseline"]  # what kill -9 leaves
    code, out, _ = _search(capsys, f"sqlite:///{db}", "--space", str(space), "--trials", "1", "--no-portfolio")
    assert code == 0 and "of which 1 interrupted" in out
    first, again = optuna.load_study(study_name=None, storage=f"sqlite:///{db}").trials
    assert first.state == TrialState.FAIL and first.user_attrs["interrupted"]
    assert again.state == TrialState.COMPLETE and again.user_attrs["baseline"]
    assert again.params == first.params


def test_an_unreachable_ray_cluster_is_one_line_and_leaves_no_trial(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path}/s.db"
    code = main(["search", *TINY, "--space", "quick", "--trials", "1", "--no-progress", "--storage", storage,
                 "--ray-address", "127.0.0.1:1", "--study", "s"])
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "cannot reach a Ray cluster at 127.0.0.1:1" in err and "Traceback" not in err
    assert optuna.load_study(study_name="s", storage=storage).trials == []
