"""Shared fixtures: tiny datasets, one local Ray for the session, a real PostgreSQL server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from automl_noisy.data import DataSpec, load_data

ROOT = Path(__file__).resolve().parents[1]
# Tests run in a temporary folder (see _working_directory), so the subprocesses and Ray workers they start
# find this checkout's code by PYTHONPATH, as the checkout as working directory gave them before.
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# Ray starts its workers at nice 15, so on a busy machine the trials of a test barely run at all;
# the tests' local Rays (this process's and the CLI's in subprocesses) give them a fair share.
os.environ.setdefault("RAY_worker_niceness", "0")

# A busy machine makes examples slow to run or to draw, not wrong: Hypothesis judges no speed here.
# On CI (CI set) it also draws the same examples every run, so CI passes or fails on the code alone.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

@pytest.fixture(autouse=True)
def _working_directory(tmp_path_factory, monkeypatch):
    """Every test runs in a fresh empty folder of its own, so nothing it or the code under test writes
    by a relative path (a default study file, ``./automl-noisy-encoders``, an output folder) lands in
    the repository, and a test that reads a repository file must build its path from its own file."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


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

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
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


class PostgresServer:
    """A throwaway PostgreSQL server on 127.0.0.1 (initdb + pg_ctl), as the 'postgres' user when
    the tests run as root (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; .ci/run installs them")
        # Not under pytest's basetemp: pytest resets /tmp/pytest-of-<user> to mode 0700 whenever a session
        # starts, which would shut the postgres user out of a running server's folder.
        self.root = Path(tempfile.mkdtemp(prefix="automl-noisy-pg-"))
        self.data = self.root / "data"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            self.prefix = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
        self.port = _free_port()
        self.env = {**os.environ, "LC_ALL": "C"}
        self._run([self.initdb, "-D", str(self.data), "-U", "automl", "--auth=trust", "-E", "UTF8"])
        self.ctl("start")
        self.url = f"postgresql+psycopg2://automl@127.0.0.1:{self.port}/postgres"
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.url)
        deadline = time.monotonic() + 300  # pg_ctl -w has waited already; this only guards a slow start
        while True:
            try:
                with engine.connect():
                    break
            except sqlalchemy.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        engine.dispose()

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run(self.prefix + argv, capture_output=True, text=True, env=self.env)
        if done.returncode:
            shutil.rmtree(self.root, ignore_errors=True)
            pytest.fail(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")

    def ctl(self, action: str, *extra: str) -> None:
        """``pg_ctl ACTION`` (start, stop, restart), waiting until it is done."""
        self._run([self.pg_ctl, "-D", str(self.data), "-l", str(self.root / "pg.log"), "-w", "-o",
                   f"-h 127.0.0.1 -p {self.port} -k {self.root}", *extra, action])

    def close(self) -> None:
        subprocess.run(self.prefix + [self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
                       capture_output=True, env=self.env)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url():
    """The URL of a PostgreSQL server shared by the session's tests."""
    server = PostgresServer()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def postgres_server():
    """A PostgreSQL server of the test's own, to stop and restart."""
    server = PostgresServer()
    try:
        yield server
    finally:
        server.close()


# -- a synthetic study with known effects, for the analysis, report and dashboard tests ----------
EFFECTS_BASELINE = {"model": "mlp", "loss": "ce", "mixing": "none", "selection": "none", "adjustment": "none",
                    "penalty": "none"}
EFFECTS_CHOICES = {"loss": ["ce", "gce", "sce", "mae"], "mixing": ["none", "mixup"],
                   "selection": ["none", "gmm", "small_loss"], "adjustment": ["none", "label_smoothing"],
                   "penalty": ["none", "l1", "weight_decay", "l1+weight_decay"]}
TRUE_EFFECTS = {("loss", "gce"): 0.05, ("mixing", "mixup"): -0.04, ("selection", "gmm"): 0.03}
TRUE_INTERACTION = (("loss", "gce"), ("selection", "gmm"), -0.06)


def _effects_trial(combination: dict, value: float | None, state, rng, **attrs):
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from automl_noisy.pipeline import ComponentSpec, Pipeline

    params = {"loss": combination["loss"], "optimizer.sgd.lr": float(rng.uniform(0.01, 0.2))}
    dists = {"loss": CategoricalDistribution(EFFECTS_CHOICES["loss"]), "optimizer.sgd.lr": FloatDistribution(0.01, 0.2)}
    if combination["loss"] == "gce":
        params["loss.gce.q"], dists["loss.gce.q"] = float(rng.uniform(0.05, 1.0)), FloatDistribution(0.05, 1.0)
    spec = {f: (ComponentSpec(c) if c != "none" else None) for f, c in combination.items()
            if f not in ("model", "penalty")}
    penalty = tuple(ComponentSpec(p) for p in combination["penalty"].split("+") if p != "none")
    pipeline = Pipeline(model=ComponentSpec("mlp"), penalty=penalty, epochs=4, **spec).to_dict()
    user_attrs = {"combination": dict(combination), "pipeline": pipeline, **attrs}
    if value is not None and state.name != "FAIL":
        user_attrs["test_accuracy"] = value + 0.2
    intermediate = {1: value - 0.01, 2: value} if value is not None else {}
    return optuna.trial.create_trial(state=state, value=value if state.name == "COMPLETE" else None,
                                     params=params, distributions=dists, user_attrs=user_attrs,
                                     intermediate_values=intermediate)


@pytest.fixture(scope="session")
def effects_study(tmp_path_factory):
    """An SQLite study: objective = 0.6 + TRUE_EFFECTS + TRUE_INTERACTION + N(0, 0.005) over 120 random
    combinations (trial 0 the baseline), 2 of them pruned; plus failures: 4 with selection=aum (2 aum
    trials complete), 1 with loss=gce, and 1 interrupted one that must not count."""
    import numpy as np
    import optuna
    from optuna.trial import TrialState

    url = f"sqlite:///{tmp_path_factory.mktemp('effects')}/effects.db"
    study = optuna.create_study(storage=url, study_name="effects", direction="maximize")
    study.set_user_attr("noise_rate", 0.4)
    study.set_user_attr("data", {"source": "synthetic", "noise": "symmetric:0.4"})
    rng = np.random.default_rng(0)

    def value(c: dict) -> float:
        v = 0.6 + sum(e for (f, ch), e in TRUE_EFFECTS.items() if c[f] == ch) + rng.normal(0, 0.005)
        (fa, ca), (fb, cb), e = TRUE_INTERACTION
        return float(v + (e if c[fa] == ca and c[fb] == cb else 0.0))

    study.add_trial(_effects_trial(EFFECTS_BASELINE, value(EFFECTS_BASELINE), TrialState.COMPLETE, rng, baseline=True))
    for i in range(1, 120):
        c = {"model": "mlp", **{f: str(rng.choice(ch)) for f, ch in EFFECTS_CHOICES.items()}}
        study.add_trial(_effects_trial(c, value(c), TrialState.PRUNED if i % 40 == 0 else TrialState.COMPLETE, rng))
    aum = {**EFFECTS_BASELINE, "selection": "aum"}
    for state in [TrialState.COMPLETE] * 2 + [TrialState.FAIL] * 4:
        study.add_trial(_effects_trial(aum, value(aum) if state == TrialState.COMPLETE else None, state, rng,
                                       **({"fail_reason": "NaN loss"} if state == TrialState.FAIL else {})))
    gce = {**EFFECTS_BASELINE, "loss": "gce"}
    study.add_trial(_effects_trial(gce, None, TrialState.FAIL, rng, fail_reason="NaN loss"))
    study.add_trial(_effects_trial({**EFFECTS_BASELINE, "mixing": "mixup"}, None, TrialState.FAIL, rng,
                                   fail_reason="interrupted: the search was stopped", interrupted=True))
    return url


@pytest.fixture(scope="session")
def effects_truth() -> dict:
    """What ``effects_study`` was made from: the choices, the true main effects and interaction."""
    return {"choices": EFFECTS_CHOICES, "effects": TRUE_EFFECTS, "interaction": TRUE_INTERACTION}
