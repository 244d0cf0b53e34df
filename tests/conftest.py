"""Shared fixtures: tiny datasets, one local Ray for the session, a real PostgreSQL server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from automl_noisy.data import DataSpec, load_data

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

TINY = DataSpec(source="synthetic", noise="symmetric:0.3", options={"samples": 300, "features": 8, "classes": 3})


@pytest.fixture(scope="session")
def tiny_spec() -> DataSpec:
    return TINY


@pytest.fixture(scope="session")
def tiny_data():
    return load_data(TINY)


@pytest.fixture(scope="session")
def image_data():
    return load_data(DataSpec(source="digits", noise="symmetric:0.2"))


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray (2 CPUs) shared by every test that needs it."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A throwaway PostgreSQL server on 127.0.0.1 (initdb + pg_ctl), as the 'postgres' user when
    the tests run as root (PostgreSQL refuses to run as root)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; .ci/run installs them")
    root = tmp_path_factory.mktemp("pg")
    data = root / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix = ["runuser", "-u", "postgres", "--"]
        os.chmod(root, 0o777)
        for parent in root.parents:  # the postgres user must reach the folder
            if str(parent).startswith(("/tmp", str(tmp_path_factory.getbasetemp()))):
                os.chmod(parent, os.stat(parent).st_mode | 0o711)
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run(prefix + [initdb, "-D", str(data), "-U", "automl", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True, env=env)
    log = root / "pg.log"
    subprocess.run(prefix + [pg_ctl, "-D", str(data), "-l", str(log), "-w", "-o",
                             f"-h 127.0.0.1 -p {port} -k {root}", "start"], check=True, capture_output=True, env=env)
    url = f"postgresql+psycopg2://automl@127.0.0.1:{port}/postgres"
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(url)
        for _ in range(50):
            try:
                with engine.connect():
                    break
            except sqlalchemy.exc.OperationalError:
                time.sleep(0.2)
        engine.dispose()
        yield url
    finally:
        subprocess.run(prefix + [pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, env=env)
