"""docker/compose.yaml with a real Docker engine: PostgreSQL, a Ray head, two Ray workers,
optuna-dashboard and the one-shot search job; the trials must run on both workers.

No image registry is reachable here, so this test does not build ``docker/Dockerfile`` (which starts
from ``python:3.11-slim`` and installs torch from PyPI). Test-only path: a Debian base image made
with ``debootstrap`` (plus PostgreSQL 15 and the shared libraries CPython needs) and ``docker
import``, into which an override compose file bind-mounts, read-only, this interpreter, its virtual
environment and the checkout. Everything else is the shipped compose file: its services, commands,
env file and scaling. Skipped, with the reason, where no Docker engine, ``docker-compose`` or
``debootstrap`` is at hand (``.ci/run`` installs them and starts ``dockerd``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import yaml

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "automl-noisy-test-base:bookworm-1"
#: what the image adds to Debian's minimal base: the libraries CPython's modules load, PostgreSQL
PACKAGES = "libssl3,libffi8,libsqlite3-0,libbz2-1.0,liblzma5,libreadline8,libncursesw6,libuuid1,procps,postgresql-15"
TINY = "--data synthetic --samples 300 --dims 8 --classes 3 --space quick --trials 4 --no-portfolio"
#: PostgreSQL as the official image starts it (a user, a password and a database from the env file),
#: from Debian's package in the test image
POSTGRES = """set -e
export PGDATA=/var/lib/postgresql/data BIN=/usr/lib/postgresql/15/bin
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA" && chown postgres "$PGDATA"
  printf '%s' "$POSTGRES_PASSWORD" > /tmp/pw && chown postgres /tmp/pw
  su postgres -s /bin/sh -c "$BIN/initdb -D $PGDATA -U $POSTGRES_USER --pwfile=/tmp/pw --auth-local=trust --auth-host=scram-sha-256" >/dev/null
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  su postgres -s /bin/sh -c "$BIN/pg_ctl -D $PGDATA -o '-c listen_addresses= -c unix_socket_directories=/tmp' -w start" >/dev/null
  su postgres -s /bin/sh -c "$BIN/psql -h /tmp -U $POSTGRES_USER -d postgres -c 'CREATE DATABASE $POSTGRES_DB'" >/dev/null
  su postgres -s /bin/sh -c "$BIN/pg_ctl -D $PGDATA -w stop" >/dev/null
fi
exec su postgres -s /bin/sh -c "exec $BIN/postgres -D $PGDATA -c listen_addresses='*' -c unix_socket_directories=/tmp"
"""


def _ok(*argv: str, timeout: float = 30) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and _ok("docker", "compose", "version"):
        return ["docker", "compose"]
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _base_image() -> None:
    """The test image: built once per Docker engine (debootstrap takes about a minute)."""
    if _ok("docker", "image", "inspect", IMAGE):
        return
    with tempfile.TemporaryDirectory(prefix="automl-noisy-rootfs-") as root:
        built = subprocess.run(["debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", root,
                                "http://deb.debian.org/debian"], capture_output=True, text=True, timeout=900)
        if built.returncode != 0:
            pytest.skip(f"debootstrap could not build the test image: {built.stderr.strip().splitlines()[-1:]}")
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", "-", IMAGE], stdin=tar.stdout, check=True, capture_output=True, timeout=600)
        assert tar.wait() == 0


@pytest.fixture(scope="module")
def docker_ready() -> list[str]:
    if not shutil.which("docker") or not _ok("docker", "info"):
        pytest.skip("no Docker engine answers 'docker info' (.ci/run starts dockerd where it can)")
    compose = _compose_command()
    if compose is None:
        pytest.skip("neither docker-compose nor 'docker compose' is installed")
    if not _ok("docker", "image", "inspect", IMAGE) and (not shutil.which("debootstrap") or os.geteuid() != 0):
        pytest.skip("the test image is missing and building it needs debootstrap, run as root")
    _base_image()
    return compose


def _override(folder: Path, pg_port: int) -> Path:
    """The test-only compose override: the test image, this Python bind-mounted read-only, and
    PostgreSQL from Debian's package instead of the official image."""
    python_home, venv = Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()
    mounts = sorted({str(p) for p in (python_home, venv, ROOT)})
    app = {"volumes": [f"{m}:{m}:ro" for m in mounts],
           "environment": {"PATH": f"{venv}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "HOME": "/root", "RAY_AUTH_MODE": "disabled"}}
    services = {name: app for name in ("ray-head", "ray-worker", "dashboard", "search")}
    services["postgres"] = {
        "command": ["sh", "-c", POSTGRES.replace("$", "$$")], "ports": [f"127.0.0.1:{pg_port}:5432"],
        "healthcheck": {"test": ["CMD-SHELL", "/usr/lib/postgresql/15/bin/pg_isready -h 127.0.0.1 -U $$POSTGRES_USER"]}}
    path = folder / "compose.test.yaml"
    path.write_text(yaml.safe_dump({"services": services}, sort_keys=False))
    return path


def _wait_for(what: str, check, seconds: float = 120, explain=lambda: "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"{what} not ready after {seconds:.0f} s: {explain()}")


def _dashboard_studies(port: int) -> list[str] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
            return [s["study_name"] for s in json.load(r)["study_summaries"]]
    except (OSError, ValueError, KeyError):
        return None


def test_compose_stack_runs_a_search_on_two_workers(docker_ready, tmp_path):
    password = secrets.token_hex(12)
    env_file = tmp_path / "automl-noisy.env"
    env_file.write_text(f"POSTGRES_USER=automl\nPOSTGRES_PASSWORD={password}\nPOSTGRES_DB=studies\nSEARCH_ARGS={TINY}\n")
    pg_port, dashboard_port = _free_port(), _free_port()
    env = {**os.environ, "AUTOML_NOISY_IMAGE": IMAGE, "POSTGRES_IMAGE": IMAGE, "AUTOML_NOISY_ENV_FILE": str(env_file),
           "DASHBOARD_PORT": str(dashboard_port), "OBJECT_STORE_BYTES": "100000000", "WORKER_CPUS": "1"}
    project = f"automlnoisytest{secrets.token_hex(4)}"
    compose = [*docker_ready, "-p", project, "-f", str(ROOT / "docker" / "compose.yaml"),
               "-f", str(_override(tmp_path, pg_port))]

    def run(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([*compose, *argv], env=env, capture_output=True, text=True, timeout=timeout)

    try:
        up = run("up", "-d", "--no-build", "--scale", "ray-worker=2", "postgres", "ray-head", "ray-worker", "dashboard")
        assert up.returncode == 0, up.stderr[-3000:]
        def cpus() -> str:  # "0.0/2.0 CPU" once both workers have joined the head
            return run("exec", "-T", "ray-head", "ray", "status", timeout=60).stdout

        _wait_for("two Ray workers", lambda: "/2.0 CPU" in cpus(), explain=cpus)
        search = run("run", "--rm", "search", timeout=600)
        assert search.returncode == 0, (search.stdout + search.stderr)[-4000:]
        assert "4 trials (4 complete" in search.stdout, search.stdout[-2000:]

        storage = f"postgresql+psycopg2://automl:{password}@127.0.0.1:{pg_port}/studies"
        [summary] = optuna.get_all_study_summaries(storage)
        trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
        assert [t.state.name for t in trials] == ["COMPLETE"] * 4
        nodes = {place.split()[1] for t in trials for place in t.user_attrs["ran_on"]}  # "node 1a2b3c4d (172...)"
        assert len(nodes) == 2, nodes  # two workers with one CPU each, three folds per trial: both ran jobs

        _wait_for("optuna-dashboard", lambda: _dashboard_studies(dashboard_port) is not None,
                  explain=lambda: run("ps").stdout + run("logs", "--tail=20", "dashboard").stdout[-3000:])
        assert _dashboard_studies(dashboard_port) == [summary.study_name]
        worker_env = run("exec", "-T", "--index=2", "ray-worker", "env")
        assert worker_env.returncode == 0 and "RAY_AUTH_MODE" in worker_env.stdout
        assert password not in worker_env.stdout  # only the driver and the dashboard hold credentials
    finally:
        down = run("down", "-v", "--remove-orphans", timeout=300)
        assert down.returncode == 0, down.stderr[-2000:]
