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
