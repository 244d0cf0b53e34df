"""`effects`, `report`, `dashboard` on the command line: the table, and one clear line + exit 2 per mistake."""

from __future__ import annotations

import socket
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from automl_noisy.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_of_the_new_commands_imports_neither_torch_nor_ray_nor_optuna():
    code = ("import sys\nfrom automl_noisy.cli import main\n"
            "for sub in ('effects', 'report', 'dashboard'):\n"
            "    try:\n        main([sub, '--help'])\n    except SystemExit:\n        pass\n"
            "print('LOADED', sorted(m for m in ('torch', 'ray', 'optuna') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("LOADED []")


def test_effects_prints_the_verdicts_and_the_interacting_pair(effects_study, capsys):
    code, out, err = run(capsys, "effects", "--storage", effects_study)
    assert code == 0, err
    lines = out.splitlines()
    for choice, verdict in (("gce", "helps"), ("mixup", "hurts"), ("gmm", "helps"), ("aum", "fails often"),
                            ("sce", "unclear")):
        row = next(line for line in lines if f" {choice} " in line and "=" not in line)
        assert verdict in row, row
    assert "90% interval" in out and "Interacting pairs" in out
    assert any("loss=gce" in line and "selection=gmm" in line and "hurts" in line for line in lines)


@pytest.fixture
def stores(tmp_path):
    empty = f"sqlite:///{tmp_path}/empty.db"
    optuna.storages.RDBStorage(empty)  # a database without a study
    unfinished = f"sqlite:///{tmp_path}/unfinished.db"
    study = optuna.create_study(storage=unfinished, study_name="s", direction="maximize")
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={"fail_reason": "boom"}))
    two = f"sqlite:///{tmp_path}/two.db"
    for name in ("a", "b"):
        optuna.create_study(storage=two, study_name=name)
    return dict(dir=tmp_path, empty=empty, unfinished=unfinished, two=two)


def _busy_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


CASES = {
    "effects without database": (lambda f: ["effects", "--storage", f"sqlite:///{f['dir']}/none.db"],
                                 "no study database"),
    "report without database": (lambda f: ["report", "--storage", f"sqlite:///{f['dir']}/none.db"],
                                "no study database"),
    "dashboard without database": (lambda f: ["dashboard", "--storage", f"sqlite:///{f['dir']}/none.db"],
                                   "no study database"),
    "no study in storage": (lambda f: ["effects", "--storage", f["empty"]], "no study in"),
    "unknown study": (lambda f: ["report", "--storage", f["unfinished"], "--study", "t"], "no study named 't'"),
    "several studies": (lambda f: ["effects", "--storage", f["two"]], "pass --study, one of: a, b"),
    "no complete trial": (lambda f: ["effects", "--storage", f["unfinished"]], "has no complete trial yet"),
    "unknown study, dashboard": (lambda f: ["dashboard", "--storage", f["unfinished"], "--study", "t"],
                                 "no study named 't'"),
    "allow-host with a port": (lambda f: ["dashboard", "--storage", f["unfinished"], "--allow-host", "proxy:443"],
                               "--allow-host takes a host name or address"),
    "allow-host with a scheme": (lambda f: ["dashboard", "--storage", f["unfinished"], "--allow-host", "http://x"],
                                 "without a scheme, a path or a port"),
    "report folder missing": (lambda f: ["report", "--storage", f["unfinished"], "-o", f"{f['dir']}/no/r.html"],
                              "does not exist"),
    "unreachable storage": (lambda f: ["effects", "--storage", "postgresql+psycopg2://me:s3cret@127.0.0.1:9/db"],
                            "cannot open storage postgresql+psycopg2://me:***@127.0.0.1:9/db"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_mistakes_give_one_line_and_exit_2(case, stores, capsys):
    argv, expected = CASES[case]
    code, out, err = run(capsys, *argv(stores))
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in err, err
    assert "s3cret" not in err + out


def test_dashboard_on_a_busy_port_is_one_line(effects_study, capsys, tmp_path):
    import shutil

    shutil.copy(effects_study.removeprefix("sqlite:///"), tmp_path / "copy.db")
    busy = _busy_port()
    try:
        code, _, err = run(capsys, "dashboard", "--storage", f"sqlite:///{tmp_path}/copy.db",
                           "--port", str(busy.getsockname()[1]))
    finally:
        busy.close()
    assert code == 2 and len(err.strip().splitlines()) == 1 and "pass another --port" in err
