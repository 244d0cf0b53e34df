"""Searches that share a study, and studies a search must not take over: concurrent drivers keep to
``--trials`` and run plain CE and each portfolio entry once; a study made by plain Optuna is refused
by name; a study whose data changed under the same name is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from automl_noisy.cli import main
from automl_noisy.search import study as study_module
from automl_noisy.search.shared import counts

TINY = ["--data", "synthetic", "--samples", "300", "--dims", "8", "--classes", "3"]
SPACE = "epochs: 20\nfamilies:\n  model: {mlp: {width: 32, depth: 1}}\n  loss: [ce, gce, sce]\n  selection: [none, small_loss]\n"
PORTFOLIO = ("vectors:\n- name: gce\n  params: {loss: gce}\n- name: sce\n  params: {loss: sce}\n"
             "- name: small-loss\n  params: {selection: small_loss}\n")


def test_two_searches_on_one_study_keep_to_the_total_and_run_one_baseline(tmp_path):
    """Two drivers started together on one SQLite study with --trials 4 (each queues plain CE and a
    3-entry portfolio): the study ends with 4 trials that ran, one plain CE, each entry at most once,
    whatever the interleaving; the extra trials either driver was handed are marked interrupted.
    (Trials of 20 epochs take seconds, so the two drivers, started together, overlap; the assertions
    hold for any interleaving.)"""
    (tmp_path / "space.yaml").write_text(SPACE)
    (tmp_path / "portfolio.yaml").write_text(PORTFOLIO)
    storage = f"sqlite:///{tmp_path}/shared.db"
    argv = [str(Path(sys.executable).with_name("automl-noisy")), "search", *TINY, "--space", "space.yaml",
            "--portfolio", "portfolio.yaml", "--trials", "4", "--storage", storage, "--study", "shared",
            "--executor", "local", "--no-progress"]
    drivers = [subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    for driver in drivers:
        out, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, err
    trials = optuna.load_study(study_name="shared", storage=storage).trials
    ran = [t for t in trials if counts(t)]
    assert len(ran) == 4 and all(t.state == TrialState.COMPLETE for t in ran)
    assert sum(bool(t.user_attrs.get("baseline")) for t in ran) == 1
    entries = [t.user_attrs["portfolio"] for t in ran if "portfolio" in t.user_attrs]
    assert len(entries) == len(set(entries)) == 3  # plain CE and the three entries, once each
    for t in trials:
        if not counts(t):  # handed out beyond the total or twice: never ran, never counts
            assert t.state == TrialState.FAIL and t.user_attrs["interrupted"] is True
            assert t.user_attrs["fail_reason"].startswith("not run")


def test_a_study_not_made_by_automl_noisy_is_refused_even_when_empty(tmp_path, capsys, monkeypatch):
    """A plain Optuna study of the same name, without a trial: refused once no search has labelled it
    within the wait (an automl-noisy search creating it at that moment would have); nothing written."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(study_module, "LABEL_WAIT_SECONDS", 0.5)
    storage = f"sqlite:///{tmp_path}/plain.db"
    optuna.create_study(storage=storage, study_name="mine")
    code = main(["search", *TINY, "--space", "quick", "--trials", "1", "--storage", storage, "--study", "mine",
                 "--executor", "local", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [
        f"automl-noisy: error: study 'mine' in {storage} was not made by automl-noisy (it has none of the attributes "
        "a search records); pass another --study name"]
    study = optuna.load_study(study_name="mine", storage=storage)
    assert study.user_attrs == {} and study.trials == []


def test_changed_csv_under_the_same_study_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = lambda k: "a,b,label\n" + "".join(f"{i},{i % k},{i % 2}\n" for i in range(60))  # noqa: E731
    Path("my.csv").write_text(rows(3))
    argv = ["search", "--data", "csv:my.csv", "--space", "quick", "--trials", "1", "--executor", "local",
            "--no-progress", "--no-portfolio"]
    assert main(argv) == 0
    capsys.readouterr()
    Path("my.csv").write_text(rows(4))  # the same path, other rows
    assert main([*argv[:6], "2", *argv[7:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was made on other data: csv:my.csv now holds other rows, labels or trusted rows" in err[0]
    assert len(optuna.load_study(study_name=None, storage="sqlite:///automl-noisy.db").trials) == 1


@pytest.mark.timeout(300)
def test_ctrl_c_stops_a_search_while_it_pretrains(tmp_path):
    """SIGINT while an encoder is pretrained in the driver's process (the local executor): the search
    stops at the next pretraining epoch with exit 130, not after a second Ctrl+C."""
    import signal

    (tmp_path / "space.yaml").write_text(
        "epochs: 2\nfamilies:\n  model: {mlp: {width: 32, depth: 1}}\n"
        "pretraining:\n  start: [finetune]\n  method: {name: simclr, steps: 200000, batch_size: 32}\n")
    exe = str(Path(sys.executable).with_name("automl-noisy"))
    proc = subprocess.Popen([exe, "search", *TINY, "--space", "space.yaml", "--trials", "2", "--executor", "local",
                             "--no-portfolio", "--storage", f"sqlite:///{tmp_path}/p.db"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        said = []
        for line in proc.stderr:  # stderr is a pipe: the search says what it does, line by line
            said.append(line)
            if line.startswith("pretraining simclr"):
                break
        assert said and said[-1].startswith("pretraining simclr"), "".join(said)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "automl-noisy: interrupted", err
    assert not list((tmp_path / "p-encoders").glob("*.pt"))  # nothing half-made is stored
