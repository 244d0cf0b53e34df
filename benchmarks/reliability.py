"""Faults, measured: what a killed driver, a lost Ray node, a failing trial and a restarted
PostgreSQL server do to a search, each scenario repeated.

1. **Driver kill -9** mid-search (local Ray started by the driver): completed trials lost (must be
   0), trials left RUNNING and how the rerun marks them, whether the rerun reaches the total, and
   the Ray processes of the killed driver's session left behind and for how long.
2. **Second Ray node lost** mid-trial (a two-node cluster on loopback; the node running a trial is
   killed without a graceful stop): how its trials end, whether the search reaches its total.
3. **A trial that raises, a trial that diverges** (on Ray): the trial's state and reason, the total.
4. **PostgreSQL restarted** mid-search (``pg_ctl restart -m fast``): what the driver does (goes on,
   or stops with one line), completed trials lost (must be 0), the total after a rerun.

    .venv/bin/python benchmarks/reliability.py             # 3 runs of each scenario; writes BENCHMARKS.md
    .venv/bin/python benchmarks/reliability.py --runs 1 --no-write
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import OtherLoad, busy_cores, machine, table, write_section

EXE = str(Path(sys.executable).with_name("automl-noisy"))
TINY = ["--data", "synthetic", "--samples", "600", "--dims", "8", "--classes", "3", "--space", "quick",
        "--no-portfolio", "--no-progress"]
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}


def _trials(storage: str):
    import optuna

    try:
        [summary] = optuna.get_all_study_summaries(storage)
    except ValueError:  # no study yet
        return []
    return optuna.load_study(study_name=summary.study_name, storage=storage).get_trials(deepcopy=False)


def _wait(what: str, check, seconds: float = 600, every: float = 0.5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise RuntimeError(f"{what}: not after {seconds:.0f} s")


def _complete(storage: str) -> dict[int, float]:
    return {t.number: t.value for t in _trials(storage) if t.state.name == "COMPLETE"}


def _session_processes(sid: int) -> list[int]:
    """The processes of session ``sid`` (the killed driver's: it was started as a session leader)."""
    out = []
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            if os.getsid(pid) == sid:
                out.append(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return out


def _counted(trials) -> int:
    return sum(1 for t in trials if t.state.name in ("COMPLETE", "PRUNED")
               or (t.state.name == "FAIL" and "fail_reason" in t.user_attrs and not t.user_attrs.get("interrupted")))


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def driver_killed(folder: Path, total: int = 12) -> dict:
    storage = f"sqlite:///{folder}/killed.db"
    command = [EXE, "search", *TINY, "--trials", str(total), "--storage", storage, "--workers", "2"]
    proc = subprocess.Popen(command, env=ENV, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=folder)
    _wait("3 complete trials", lambda: len(_complete(storage)) >= 3)
    before = _complete(storage)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = time.monotonic()
    running = [t.number for t in _trials(storage) if t.state.name == "RUNNING"]
    left = len(_session_processes(proc.pid))
    gone = None
    while time.monotonic() - killed_at < 180:
        if not _session_processes(proc.pid):
            gone = time.monotonic() - killed_at
            break
        time.sleep(1)
    for pid in _session_processes(proc.pid):  # what outlived 180 s: end it, so runs stay apart
        os.kill(pid, signal.SIGKILL)
    rerun = subprocess.run(command, env=ENV, capture_output=True, text=True, cwd=folder, timeout=900)
    trials = _trials(storage)
    after = {t.number: t for t in trials}
    lost = sum(1 for n, v in before.items() if after[n].state.name != "COMPLETE" or after[n].value != v)
    marked = Counter(after[n].state.name + (" (interrupted)" if after[n].user_attrs.get("interrupted") else "")
                     for n in running)
    return {"completed before the kill": len(before), "lost": lost, "RUNNING after the kill": len(running),
            "marked by the rerun": dict(marked) or "-", "rerun exit": rerun.returncode,
            "total reached": f"{_counted(trials)}/{total}",
            "Ray processes left": left, "all gone after (s)": "> 180" if gone is None else f"{gone:.0f}"}


def node_lost(folder: Path, total: int = 8) -> dict:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False, shutdown_at_exit=False,
                      head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        second = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        storage = f"sqlite:///{folder}/node.db"
        proc = subprocess.Popen([EXE, "search", *TINY, "--trials", str(total), "--storage", storage, "--ray-address",
                                 cluster.address], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=folder)
        prefix = second.unique_id[:8]

        def running_there():
            return any(t.state.name == "RUNNING" and any(prefix in p for p in t.user_attrs.get("ran_on", []))
                       for t in _trials(storage))

        _wait("a trial running on the second node", running_there)
        cluster.remove_node(second, allow_graceful=False)
        out, err = proc.communicate(timeout=900)
        trials = _trials(storage)
        failed = [t for t in trials if t.state.name == "FAIL"]
        reasons = Counter(t.user_attrs.get("fail_reason", "no reason")[:70] for t in failed)
        return {"exit": proc.returncode, "failed trials": len(failed), "reasons": "; ".join(reasons) or "-",
                "total reached": f"{_counted(trials)}/{total}", "last line": _last_line(err) if proc.returncode else ""}
    finally:
        cluster.shutdown()


def failing_trials(folder: Path, kind: str, total: int = 4) -> dict:
    """Trial 1 raises (an unknown model) or diverges (lr 10, momentum 0.99, a wide deep MLP)."""
    from automl_noisy.data import DataSpec
    from automl_noisy.pipeline import ComponentSpec, OptimizerSpec, Pipeline
    from automl_noisy.search import controller

    def change(p):
        if kind == "raises":
            return Pipeline(**{**p.__dict__, "model": ComponentSpec("no_such_model")})
        return Pipeline(**{**p.__dict__, "model": ComponentSpec("mlp", {"width": 1024, "depth": 4}),
                           "optimizer": OptimizerSpec("sgd", lr=10.0, momentum=0.99, schedule="constant")})

    real = controller.SearchSpace.suggest
    controller.SearchSpace.suggest = lambda self, trial, data, seed=0: (change if trial.number == 1 else (lambda p: p))(
        real(self, trial, data, seed))
    try:
        study = controller.search(controller.SearchOptions(
            data=DataSpec("synthetic", options={"samples": 600, "features": 8, "classes": 3}), space="quick",
            trials=total, storage=f"sqlite:///{folder}/{kind}.db", workers=2, progress=False, portfolio=None))
    finally:
        controller.SearchSpace.suggest = real
    trial = study.trials[1]
    return {"trial 1": trial.state.name, "reason": trial.user_attrs.get("fail_reason", "")[:70],
            "other trials": dict(Counter(t.state.name for t in study.trials if t.number != 1)),
            "total reached": f"{_counted(study.trials)}/{total}"}


class Postgres:
    """A throwaway PostgreSQL server (initdb + pg_ctl), as the postgres user when run as root."""

    def __init__(self) -> None:
        import socket

        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
        self.bin = Path(shutil.which("pg_ctl") or bins[0] / "pg_ctl").parent
        self.root = Path(tempfile.mkdtemp(prefix="automl-noisy-pg-"))
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.prefix:
            shutil.chown(self.root, "postgres")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._run("initdb", "-D", str(self.root / "data"), "-U", "automl", "--auth=trust", "-E", "UTF8")
        self.ctl("start")
        self.url = f"postgresql+psycopg2://automl@127.0.0.1:{self.port}/postgres"

    def _run(self, name: str, *argv: str) -> None:
        subprocess.run([*self.prefix, str(self.bin / name), *argv], check=True, capture_output=True,
                       env={**os.environ, "LC_ALL": "C"})

    def ctl(self, action: str, *extra: str) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "pg.log"), "-w", "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.root}", *extra, action)

    def close(self) -> None:
        subprocess.run([*self.prefix, str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def postgres_restarted(folder: Path, total: int = 10) -> dict:
    server = Postgres()
    try:
        command = [EXE, "search", *TINY, "--trials", str(total), "--storage", server.url, "--workers", "2"]
        proc = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folder)
        _wait("2 complete trials", lambda: len(_complete(server.url)) >= 2)
        before = _complete(server.url)
        start = time.monotonic()
        server.ctl("restart", "-m", "fast")
        down = time.monotonic() - start
        out, err = proc.communicate(timeout=900)
        first = {"restart took (s)": f"{down:.1f}", "driver exit": proc.returncode,
                 "driver's last line": _last_line(err) if proc.returncode else "",
                 "driver's total": f"{_counted(_trials(server.url))}/{total}"}
        rerun = subprocess.run(command, env=ENV, capture_output=True, text=True, cwd=folder, timeout=900)
        trials = _trials(server.url)
        after = {t.number: t for t in trials}
        lost = sum(1 for n, v in before.items() if n not in after or after[n].value != v)
        return {**first, "lost": lost, "rerun exit": rerun.returncode, "total reached": f"{_counted(trials)}/{total}",
                "left RUNNING": sum(1 for t in trials if t.state.name == "RUNNING")}
    finally:
        server.close()


SCENARIOS = {
    "driver kill -9": driver_killed,
    "second Ray node lost": node_lost,
    "trial raises": lambda folder: failing_trials(folder, "raises"),
    "trial diverges": lambda folder: failing_trials(folder, "diverges"),
    "PostgreSQL restarted": postgres_restarted,
}


def _span(values: list) -> str:
    """``a`` when every value is ``a``, else ``a-b`` (smallest to largest)."""
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}-{high}"


def _reached(row: dict) -> bool:
    done, _, total = str(row.get("total reached", "")).partition("/")
    return bool(total) and done == total


def reading(results: dict[str, list[dict]]) -> str:
    """What the tables say, in words, from the scenarios' rows alone."""
    rows = [r for rs in results.values() for r in rs]
    broke = [f"{name} run {i + 1} ({r['error']})" for name, rs in results.items() for i, r in enumerate(rs) if "error" in r]
    lost = sum(int(r.get("lost", 0)) for r in rows if "error" not in r)
    short = [name for name, rs in results.items() if any("error" not in r and not _reached(r) for r in rs)]
    stuck = [name for name, rs in results.items() if any(int(r.get("left RUNNING", 0)) for r in rs)]
    if not (lost or short or stuck or broke):
        parts = ["No scenario lost a completed trial or left a study stuck."]
    else:
        parts = [f"Completed trials lost: {lost}." if lost else "No completed trial was lost."]
        if short:
            parts.append(f"Short of the total in some run: {', '.join(short)}.")
        if stuck:
            parts.append(f"Trials left RUNNING in some run: {', '.join(stuck)}.")
        if broke:
            parts.append(f"Runs that broke: {'; '.join(broke)}.")
    ok = {name: [r for r in rs if "error" not in r] for name, rs in results.items()}

    def reached(name: str) -> str:
        return f"{sum(_reached(r) for r in ok[name])} of {len(results[name])} runs reached the total"

    if ok.get("driver kill -9"):
        rs = ok["driver kill -9"]
        marks = sorted({m for r in rs if isinstance(r["marked by the rerun"], dict) for m in r["marked by the rerun"]})
        gone = [r["all gone after (s)"] for r in rs]
        parts.append(f"A driver killed with kill -9 left {_span([r['RUNNING after the kill'] for r in rs])} trials "
                     f"RUNNING; the rerun marked them {' or '.join(marks) or 'nothing'}, which a resume does not count, and "
                     f"{reached('driver kill -9')}. The local Ray it had started "
                     f"({_span([r['Ray processes left'] for r in rs])} processes) "
                     + ("exited on its own after " + _span([int(g) for g in gone]) + " s."
                        if all(str(g).isdigit() for g in gone) else f"was still there after 180 s in some run ({gone})."))
    if ok.get("second Ray node lost"):
        rs = ok["second Ray node lost"]
        reasons = sorted({r["reasons"] for r in rs})
        parts.append(f"A Ray node lost mid-trial failed {_span([r['failed trials'] for r in rs])} trial(s) "
                     f"({'; '.join(reasons)}); the search exited {_span([r['exit'] for r in rs])} and "
                     f"{reached('second Ray node lost')}.")
    for kind in ("trial raises", "trial diverges"):
        if ok.get(kind):
            rs = ok[kind]
            states = sorted({r["trial 1"] for r in rs})
            reasons = sorted({r["reason"] for r in rs})
            parts.append(f"A trial that {kind.split()[1].removesuffix('s')}s ended {' or '.join(states)} "
                         f"(\"{'; '.join(reasons)}\"); {reached(kind)}.")
    if ok.get("PostgreSQL restarted"):
        rs = ok["PostgreSQL restarted"]
        rode = sum(r["driver exit"] == 0 and _reached({"total reached": r["driver's total"]}) for r in rs)
        parts.append(f"PostgreSQL restarted mid-search ({_span([r['restart took (s)'] for r in rs])} s): the driver "
                     f"rode the restart out and finished on its own in {rode} of {len(rs)} runs"
                     + ("" if rode == len(rs) else f" (exits {_span([r['driver exit'] for r in rs])})")
                     + f"; after a rerun {reached('PostgreSQL restarted')}.")
    return "**Reading.** " + " ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", action="append", choices=list(SCENARIOS))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    busy = busy_cores()
    sections, results = [], {}
    with OtherLoad() as other:
        for name, scenario in SCENARIOS.items():
            if args.only and name not in args.only:
                continue
            rows = results[name] = []
            for run in range(args.runs):
                with tempfile.TemporaryDirectory() as tmp:
                    try:
                        result = scenario(Path(tmp))
                    except Exception as e:  # noqa: BLE001 - a scenario that breaks is a finding too
                        result = {"error": f"{type(e).__name__}: {e}"[:200]}
                print(f"{name} run {run + 1}: {result}", flush=True)
                rows.append(result)
            keys = list(dict.fromkeys(k for r in rows for k in r))
            sections.append(f"**{name}**\n\n" + table(["run", *keys], [[str(i + 1), *(str(r.get(k, "")) for k in keys)]
                                                                       for i, r in enumerate(rows)]))
    text = "\n\n".join(sections) + "\n\n" + reading(results)
    if args.no_write:
        print(text)
        return
    body = f"""## Reliability (`benchmarks/reliability.py`)

{machine()}. Other load when the run started: {busy:.2f} cores busy. {other.sentence()}

Each scenario {args.runs} times, on synthetic data (600 rows, the quick space, 3-fold trials), SQLite unless
said otherwise. "total reached" counts the trials a resume counts (complete, pruned, failed by their
method; not those interrupted by a stopped driver). See the script's docstring for the scenarios.

{text}
"""
    write_section("reliability", body)
    print("wrote the reliability section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
