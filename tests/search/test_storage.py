"""Storage: a real PostgreSQL server and SQLite; passwords never leak into messages or exports."""

from __future__ import annotations

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from automl_noisy.errors import UserError
from automl_noisy.search.controller import SearchOptions, search
from automl_noisy.search.export import export_best
from automl_noisy.search.storage import mask_url, open_storage, resolve_study


def test_mask_url_hides_passwords():
    assert mask_url("postgresql+psycopg2://u:secret@h:5432/db") == "postgresql+psycopg2://u:***@h:5432/db"
    assert mask_url("sqlite:///a.db") == "sqlite:///a.db"


def test_search_and_export_on_postgresql(postgres_url, tmp_path, tiny_spec):
    with_password = postgres_url.replace("automl@", "automl:pw-not-needed@")
    options = SearchOptions(data=tiny_spec, space="quick", trials=2, storage=with_password, study="pg",
                            executor="local", progress=False)
    study = search(options)
    assert [t.state for t in study.trials].count(TrialState.COMPLETE) >= 1
    resumed = search(SearchOptions(**{**options.__dict__, "trials": 3}))
    assert len(resumed.trials) == 3
    _, provenance = export_best(with_password, "pg", tmp_path / "best.yaml")
    text = (tmp_path / "best.yaml").read_text()
    assert "pw-not-needed" not in text and "***" in yaml.safe_load(text)["provenance"]["storage"]
    assert provenance["study"] == "pg"


def test_resolve_study_needs_a_name_when_several(tmp_path, tiny_spec):
    url = f"sqlite:///{tmp_path}/two.db"
    for name in ("a", "b"):
        search(SearchOptions(data=tiny_spec, space="quick", trials=1, storage=url, study=name,
                             executor="local", progress=False))
    storage = open_storage(url, must_exist=True)
    with pytest.raises(UserError, match="holds several studies; pass --study, one of: a, b"):
        resolve_study(storage, None, url)
    with pytest.raises(UserError, match="no study named 'c'"):
        resolve_study(storage, "c", url)
    assert resolve_study(storage, "b", url).study_name == "b"


def test_a_restarted_database_server_is_ridden_out(postgres_server):
    """pg_ctl restart between two calls: the next call reconnects, nothing stored is lost."""
    storage = open_storage(postgres_server.url)
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    study.tell(study.ask(), 0.5)
    postgres_server.ctl("restart", "-m", "fast")  # every pooled connection is now dead
    trial = study.ask()
    trial.set_user_attr("after", True)
    study.tell(trial, 0.7)
    assert [t.value for t in optuna.load_study(study_name="s", storage=postgres_server.url).trials] == [0.5, 0.7]


def test_a_database_server_gone_for_good_is_one_line(postgres_server, monkeypatch):
    from automl_noisy.search import storage as storage_module

    monkeypatch.setattr(storage_module, "RECONNECT_SECONDS", 1.0)
    storage = open_storage(postgres_server.url)
    study = optuna.create_study(storage=storage, study_name="s")
    postgres_server.ctl("stop", "-m", "fast")
    with pytest.raises(UserError) as caught:
        study.ask()
    message = str(caught.value)
    assert message.startswith("lost the study storage postgresql+psycopg2://automl@127.0.0.1:") and "\n" not in message
    assert message.endswith("finished trials are stored: run the same command again to resume")


def test_a_queued_trial_is_claimed_by_one_storage_only(tmp_path):
    """The claim of a queued (WAITING) trial is a compare-and-set: a second storage on the same SQLite
    file gets False, a claim of a finished trial raises as Optuna's storages do; the winner's trial
    has its start recorded."""
    url = f"sqlite:///{tmp_path}/claim.db"
    study = optuna.create_study(storage=open_storage(url), study_name="claim")
    study.enqueue_trial({"x": 1.0})
    study.enqueue_trial({"x": 2.0})
    first, second = open_storage(url), open_storage(url)
    waiting = [t._trial_id for t in study.get_trials(states=(TrialState.WAITING,))]
    assert first.set_trial_state_values(waiting[0], TrialState.RUNNING) is True
    assert second.set_trial_state_values(waiting[0], TrialState.RUNNING) is False
    assert first.get_trial(waiting[0]).datetime_start is not None
    second.set_trial_state_values(waiting[1], TrialState.FAIL)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        first.set_trial_state_values(waiting[1], TrialState.RUNNING)
    assert [t.state for t in study.trials] == [TrialState.RUNNING, TrialState.FAIL]


ASKER = """
import os, sys, time
from pathlib import Path
import optuna
from automl_noisy.search.storage import open_storage
optuna.logging.set_verbosity(optuna.logging.ERROR)
url, name, go, asks = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
study = optuna.load_study(study_name=name, storage=open_storage(url))
go.with_name(f"ready-{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.01)
print(" ".join(str(study.ask().number) for _ in range(asks)))
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_drivers_asking_together_never_get_the_same_queued_trial(backend, tmp_path, request):
    """Four processes ask a study with 40 queued trials at once, ten times each: every trial number is
    handed out once (on SQLite, Optuna's read-then-write claim handed one trial to two drivers)."""
    import subprocess
    import sys
    import time
    url = f"sqlite:///{tmp_path}/asked.db" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    name = f"asked-{tmp_path.name}"
    study = optuna.create_study(storage=open_storage(url), study_name=name)
    for x in range(40):
        study.enqueue_trial({"x": float(x)}, skip_if_exists=False)
    go = tmp_path / "go"
    askers = [subprocess.Popen([sys.executable, "-c", ASKER, url, name, str(go), "10"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(4)]
    while len(list(tmp_path.glob("ready-*"))) < len(askers):  # all four have their storage open
        failed = [a for a in askers if a.poll() is not None]  # an asker ends only after "go"
        assert not failed, failed[0].communicate()[1]
        time.sleep(0.05)
    go.touch()
    numbers = []
    for asker in askers:
        out, err = asker.communicate(timeout=120)
        assert asker.returncode == 0, err
        numbers += [int(n) for n in out.split()]
    assert sorted(numbers) == list(range(40))
