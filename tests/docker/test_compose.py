"""docker/compose.yaml with a real Docker engine: PostgreSQL, a Ray head, two Ray workers, the dashboard and
the one-shot search job; the trials must run on both workers, and the database password must stay out of
Ray.

Test-only path: the base image of ``conftest.py`` (Debian made with ``debootstrap`` and ``docker import``,
no registry being reachable here), into which an override compose file bind-mounts, read-only, this
interpreter, its virtual environment and the checkout (``test_dockerfile.py`` builds the Dockerfile
itself). Everything else is the shipped compose file: its services, commands, env file and scaling.
Skipped, with the reason, where no Docker engine, ``docker-compose`` or ``debootstrap`` is at hand
(``.ci/run`` installs them and starts ``dockerd``).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import yaml

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
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
#: every process of a container but the shell that lists them: "@@PROCESS@@ PID COMMAND LINE", then its environment
PROCESSES = r"""for p in /proc/[0-9]*; do
  [ "${p#/proc/}" = "$$" ] && continue
  cmd=$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null) || continue
  [ -n "$cmd" ] || continue
  env=$(tr '\0' '\n' < "$p/environ" 2>/dev/null) || continue
  printf '@@PROCESS@@ %s %s\n%s\n' "${p#/proc/}" "$cmd" "$env"
done"""
#: Ray's job table as the head's GCS holds it, raw (runtime environments included) and as Ray lists it
JOB_TABLE = r"""import ray, ray._private.state as state
from ray.core.generated import gcs_pb2
ray.init(address="auto", logging_level="ERROR")
raw = state.state._connect_and_get_accessor().get_job_table(skip_submission_job_info_field=False,
                                                            skip_is_running_tasks_field=True)
print(repr(state.jobs()))
print("\n".join(str(gcs_pb2.JobTableData.FromString(entry)) for entry in raw))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _override(folder: Path, pg_port: int) -> Path:
    """The test-only compose override: the test image, this Python bind-mounted read-only, and
    PostgreSQL from Debian's package instead of the official image."""
    python_home, venv = Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()
    mounts = sorted({str(p) for p in (python_home, venv, ROOT)})
    app = {"volumes": [f"{m}:{m}:ro" for m in mounts],
           "environment": {"PATH": f"{venv}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "HOME": "/root", "RAY_AUTH_MODE": "disabled",
                           "PYTHONPATH": str(ROOT)}}  # this checkout, however the environment installed it
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


def _status(port: int, host: str) -> int:
    """The status of GET /api/studies on 127.0.0.1:``port`` sent with ``Host: host``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/api/studies", headers={"Host": host})
        return connection.getresponse().status
    finally:
        connection.close()


def _processes(container: str) -> dict[int, tuple[str, str]] | None:
    """PID -> (command line, environment) of every process in ``container``; None once it is gone. The
    listing shell starts with an empty environment (``docker exec`` would give it the container's)."""
    listed = subprocess.run(["docker", "exec", container, "env", "-i", "/bin/sh", "-c", PROCESSES],
                            capture_output=True, text=True, timeout=60)
    if listed.returncode != 0:
        return None
    found = {}
    for block in listed.stdout.split("@@PROCESS@@ ")[1:]:
        first, _, env = block.partition("\n")
        pid, _, cmd = first.partition(" ")
        found[int(pid)] = (cmd.strip(), env)
    return found


def _running(container: str) -> bool:
    state = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", container], capture_output=True,
                           text=True, timeout=60)
    return state.stdout.strip() == "true"


@pytest.mark.timeout(1800)
def test_compose_stack_runs_a_search_on_two_workers(docker_compose, docker_engine, tmp_path):
    password = f"marker{secrets.token_hex(12)}"  # must appear nowhere in Ray
    env_file = tmp_path / "automl-noisy.env"
    env_file.write_text(f"POSTGRES_USER=automl\nPOSTGRES_PASSWORD={password}\nPOSTGRES_DB=studies\nSEARCH_ARGS={TINY}\n")
    pg_port, dashboard_port = _free_port(), _free_port()
    env = {**os.environ, "AUTOML_NOISY_IMAGE": docker_engine, "POSTGRES_IMAGE": docker_engine,
           "AUTOML_NOISY_ENV_FILE": str(env_file), "DASHBOARD_PORT": str(dashboard_port),
           "OBJECT_STORE_BYTES": "100000000", "WORKER_CPUS": "1"}
    project = f"automlnoisytest{secrets.token_hex(4)}"
    compose = [*docker_compose, "-p", project, "-f", str(ROOT / "docker" / "compose.yaml"),
               "-f", str(_override(tmp_path, pg_port))]
    job = None

    def run(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([*compose, *argv], env=env, capture_output=True, text=True, timeout=timeout)

    def dashboard_log() -> str:
        return run("ps").stdout + run("logs", "--tail=20", "dashboard").stdout[-3000:]

    try:
        up = run("up", "-d", "--no-build", "--scale", "ray-worker=2", "postgres", "ray-head", "ray-worker", "dashboard")
        assert up.returncode == 0, up.stderr[-3000:]

        # The dashboard serves before any search, on the empty database, as automl-noisy, PID 1 of its
        # container, with the password in no command line; through Docker's port mapping the loopback
        # name answers (the port is not checked), another name does not.
        _wait_for("the dashboard", lambda: _dashboard_studies(dashboard_port) == [], explain=dashboard_log)
        assert _status(dashboard_port, f"127.0.0.1:{dashboard_port}") == 200
        assert _status(dashboard_port, f"localhost:{dashboard_port}") == 200
        assert _status(dashboard_port, f"evil.example:{dashboard_port}") == 403
        pid1 = run("exec", "-T", "dashboard", "cat", "/proc/1/cmdline").stdout.split("\0")
        assert any(part.endswith("automl-noisy") for part in pid1) and "dashboard" in pid1, pid1
        assert password not in "".join(pid1)

        def cpus() -> str:  # "0.0/2.0 CPU" once both workers have joined the head
            return run("exec", "-T", "ray-head", "ray", "status", timeout=60).stdout

        _wait_for("two Ray workers", lambda: "/2.0 CPU" in cpus(), explain=cpus)
        workers = run("ps", "-q", "ray-worker").stdout.split()
        assert len(workers) == 2, workers

        # The search job, detached, so that the environment of the Ray processes can be read while it
        # runs: its own node's (started by the job's `ray start`) and the workers' (the search's tasks).
        started = run("run", "-d", "search")
        assert started.returncode == 0, started.stderr[-3000:]
        job = started.stdout.split()[-1]
        seen: dict[tuple[str, int], tuple[str, str]] = {}
        deadline = time.monotonic() + 900
        while _running(job):
            assert time.monotonic() < deadline, "the search job still runs after 900 s"
            for container in (*workers, job):
                seen.update({(container, pid): found for pid, found in (_processes(container) or {}).items()})
            time.sleep(0.5)
        code = subprocess.run(["docker", "wait", job], capture_output=True, text=True, timeout=60).stdout.strip()
        logs = subprocess.run(["docker", "logs", job], capture_output=True, text=True, timeout=60)
        assert code == "0", (logs.stdout + logs.stderr)[-4000:]
        assert "4 trials (4 complete" in logs.stdout, logs.stdout[-2000:]

        storage = f"postgresql+psycopg2://automl:{password}@127.0.0.1:{pg_port}/studies"
        [summary] = optuna.get_all_study_summaries(storage)
        trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
        assert [t.state.name for t in trials] == ["COMPLETE"] * 4
        nodes = {place.split()[1] for t in trials for place in t.user_attrs["ran_on"]}  # "node 1a2b3c4d (172...)"
        assert len(nodes) == 2, nodes  # two workers with one CPU each, three folds per trial: both ran jobs

        # The password is in no Ray process's environment or command line: on the workers (Ray's workers
        # among them, seen while the search ran), on the job's own node (every process but PID 1, the
        # driver, which holds the storage URL), on the head; and nowhere in Ray's job table.
        after = {("head", pid): found for pid, found in (_processes(run("ps", "-q", "ray-head").stdout.strip())
                                                          or {}).items()}
        for container in workers:
            after.update({(container, pid): found for pid, found in (_processes(container) or {}).items()})
        looked_at = {key: found for key, found in {**seen, **after}.items() if key != (job, 1)}
        leaks = [f"{key}: {cmd}" for key, (cmd, environ) in looked_at.items() if password in cmd + environ]
        assert not leaks, leaks
        # Not vacuous: the environments read whole (Ray's agents overwrite theirs with their process title,
        # so theirs cannot be read; they inherit the raylet's) include each node's raylet and the Ray
        # workers that ran the search's tasks (bound to its job: RAY_JOB_ID is not the nil ffffffff).
        whole = {key: cmd for key, (cmd, environ) in looked_at.items() if "RAY_AUTH_MODE=disabled" in environ}
        for container in (*workers, job, "head"):
            assert any(c == container and "/raylet " in cmd for (c, _), cmd in whole.items()), (container, whole)
        job_workers = [cmd for (c, pid), cmd in whole.items() if c in workers and cmd.startswith("ray::")
                       and re.search(r"^RAY_JOB_ID=(?!ffffffff)", looked_at[c, pid][1], re.M)]
        assert job_workers, whole
        jobs = run("exec", "-T", "ray-head", "python", "-c", JOB_TABLE, timeout=120)
        assert jobs.returncode == 0, jobs.stderr[-3000:]
        assert "automl-noisy search --ray-address ray-head:6379" in jobs.stdout, jobs.stdout[-3000:]  # the driver
        assert password not in jobs.stdout + jobs.stderr

        _wait_for("the dashboard", lambda: _dashboard_studies(dashboard_port) == [summary.study_name],
                  explain=dashboard_log)

        # docker stop: SIGTERM to PID 1, the dashboard, which stops by itself (exit code 0), long before
        # Docker's 30 s grace would end in SIGKILL (exit code 137)
        dashboard = run("ps", "-q", "dashboard").stdout.strip()
        began = time.monotonic()
        stop = subprocess.run(["docker", "stop", "-t", "30", dashboard], capture_output=True, text=True, timeout=120)
        took = time.monotonic() - began
        assert stop.returncode == 0, stop.stderr
        exit_code = subprocess.run(["docker", "inspect", "-f", "{{.State.ExitCode}}", dashboard], capture_output=True,
                                   text=True, timeout=60).stdout.strip()
        print(f"\ndocker stop: the dashboard exited with code {exit_code} after {took:.2f} s")
        assert exit_code == "0", f"the dashboard exited with {exit_code} after {took:.1f} s: {dashboard_log()}"
    finally:
        if job is not None:
            subprocess.run(["docker", "rm", "-f", job], capture_output=True, timeout=120)
        down = run("down", "-v", "--remove-orphans", timeout=300)
        assert down.returncode == 0, down.stderr[-2000:]
