"""A storage password stays in the driver: never in Ray's job table, the environment of Ray's
processes, or what the study stores. Real Ray clusters, a real PostgreSQL server (its trust
authentication accepts any password, so a marker password is a working URL)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.search.test_cluster import TINY, _cluster

EXE = str(Path(sys.executable).with_name("automl-noisy"))
SPACE = "epochs: 2\nfamilies:\n  model: {mlp: {width: 32, depth: 1}}\n  loss: [ce, gce]\n"
#: run in a fresh process joined to the cluster: Ray's job table, and the environment of its workers
INSPECT = """
import json, os, sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
jobs = [{k: str(v) for k, v in job.items()} for job in ray._private.state.jobs()]
env = ray.get([ray.remote(lambda: dict(os.environ)).options(num_cpus=1).remote() for _ in range(4)])
print(json.dumps({"jobs": jobs, "env": env}))
"""


@pytest.fixture
def marked(postgres_url, tmp_path):
    """A storage URL on the session's PostgreSQL server whose password is a fresh marker."""
    marker, database = "pw" + secrets.token_hex(8), "creds_" + secrets.token_hex(4)
    import sqlalchemy

    engine = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as db:
        db.execute(sqlalchemy.text(f"CREATE DATABASE {database}"))
    engine.dispose()
    url = postgres_url.replace("automl@", f"automl:{marker}@").rsplit("/", 1)[0] + f"/{database}"
    (tmp_path / "space.yaml").write_text(SPACE)
    return marker, url


def _stored(url: str) -> str:
    """Everything the study storage holds about its studies and trials, as text."""
    out = []
    for summary in optuna.get_all_study_summaries(url):
        study = optuna.load_study(study_name=summary.study_name, storage=url)
        system = study._storage.get_study_system_attrs(study._study_id)
        out.append(json.dumps({"study": study.user_attrs, "system": system}, default=str))
        out += [json.dumps([t.user_attrs, t.system_attrs, t.params], default=str) for t in study.trials]
    return "\n".join(out)


def test_a_password_on_the_command_line_stays_out_of_ray_and_the_study(marked, tmp_path):
    """The URL given as --storage (the worst case: it is on the driver's command line), with the
    password also in POSTGRES_PASSWORD, a search on a cluster it joins: Ray's job table records the
    command line masked, Ray's workers never see the password, the study stores none of it."""
    marker, url = marked
    clusters = _cluster({"num_cpus": 2})
    cluster = next(clusters)
    try:
        env = {**os.environ, "POSTGRES_PASSWORD": marker}
        result = subprocess.run([EXE, "search", *TINY, "--space", "space.yaml", "--trials", "2", "--no-progress",
                                 "--no-portfolio", "--storage", url, "--ray-address", cluster.address],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        assert marker not in result.stdout + result.stderr
        seen = subprocess.run([sys.executable, "-c", INSPECT, cluster.address], capture_output=True, text=True,
                              timeout=300, env={k: v for k, v in os.environ.items() if marker not in v})
        assert seen.returncode == 0, seen.stderr
        ray_state = json.loads(seen.stdout)
    finally:
        next(clusters, None)
    drivers = [job for job in ray_state["jobs"] if "automl-noisy" in job.get("Entrypoint", "")]
    assert drivers and "--storage postgresql+psycopg2://automl:***@" in drivers[0]["Entrypoint"]
    assert marker not in json.dumps(ray_state)  # the job table and four workers' environments
    study_text = _stored(url)
    assert "space" in study_text and marker not in study_text
    trials = optuna.load_study(study_name=None, storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2


def test_a_password_in_the_environment_stays_out_of_a_local_ray(marked, tmp_path):
    """The URL in AUTOML_NOISY_STORAGE, the password also in POSTGRES_PASSWORD, and a search that
    starts its own local Ray: while its trials run, no process the driver started (Ray's GCS, raylet,
    workers) holds the password in its environment, and the driver's command line does not show it."""
    marker, url = marked
    env = {**os.environ, "AUTOML_NOISY_STORAGE": url, "POSTGRES_PASSWORD": marker}
    (tmp_path / "space.yaml").write_text("epochs: 200\nfamilies:\n  model: {mlp: {width: 32, depth: 1}}\n")
    proc = subprocess.Popen([EXE, "search", *TINY, "--space", "space.yaml", "--trials", "2", "--no-progress",
                             "--no-portfolio", "--cv", "1"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline and not _an_epoch_reported(url):
            time.sleep(0.2)  # wait for the condition: a trial runs on a Ray worker
        assert proc.poll() is None, proc.communicate()[1]
        started = _descendants(proc.pid)
        names = {_read(f"/proc/{pid}/comm").strip() for pid in started}
        assert any("raylet" in n for n in names) and len(started) >= 3, names
        for pid in started:
            environ = _read(f"/proc/{pid}/environ")
            assert environ is not None and marker not in environ, _read(f"/proc/{pid}/cmdline")
            assert "AUTOML_NOISY_STORAGE=" not in environ
    finally:
        proc.send_signal(signal.SIGINT)  # the driver stops its local Ray on the way out
        try:
            proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert marker not in _stored(url)


def _an_epoch_reported(url: str) -> bool:
    try:
        return any(t.intermediate_values for s in optuna.get_all_study_summaries(url)
                   for t in optuna.load_study(study_name=s.study_name, storage=url).trials)
    except Exception:  # noqa: BLE001 - the driver has not created the schema or the study yet
        return False


def _read(path: str) -> str | None:
    try:
        return Path(path).read_bytes().replace(b"\0", b"\n").decode("utf-8", "replace")
    except OSError:  # the process has just ended
        return None


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children...), from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _read(str(entry / "stat"))
            if stat:
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found
