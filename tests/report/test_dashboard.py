"""`automl-noisy dashboard`: the analysis is attached to the study and optuna-dashboard serves it."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from optuna_dashboard import get_note

from automl_noisy.report.dashboard import GRAPHS, NOTE_TITLE, attach
from automl_noisy.search.study_analysis import load_or_compute


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, json.loads(response.read())


@pytest.fixture
def study_copy(effects_study, tmp_path) -> str:
    shutil.copy(effects_study.removeprefix("sqlite:///"), tmp_path / "study.db")
    return f"sqlite:///{tmp_path}/study.db"


def test_dashboard_serves_the_study_with_the_analysis_attached(study_copy, tmp_path):
    port = _free_port()
    exe = Path(sys.executable).with_name("automl-noisy")
    proc = subprocess.Popen([str(exe), "dashboard", "--storage", study_copy, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, studies = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, studies = _get(f"http://127.0.0.1:{port}/api/studies")
                break
            except OSError:
                time.sleep(0.5)
        assert studies is not None, proc.stderr.read() if proc.poll() is not None else "no answer in time"
        assert status == 200
        (entry,) = [s for s in studies["study_summaries"] if s["study_name"] == "effects"]
        status, detail = _get(f"http://127.0.0.1:{port}/api/studies/{entry['study_id']}")
        assert status == 200
        graphs = {g["id"]: json.loads(g["graph_object"]) for g in detail["plotly_graph_objects"]}
        assert set(GRAPHS) <= set(graphs)
        assert graphs["method-effects"]["data"][0]["type"] == "bar"
        assert graphs["method-interactions"]["data"][0]["type"] == "heatmap"
        note = detail["note"]["body"]
        assert note.startswith(NOTE_TITLE) and "**helps**: `loss=gce`" in note and "`mixing=mixup`" in note
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard", timeout=30) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        out = proc.stdout.read()
    assert code == 0
    assert f"http://127.0.0.1:{port}/dashboard" in out  # bound to this machine only by default


def test_attach_keeps_the_users_own_note(study_copy):
    from optuna_dashboard import save_note

    study = optuna.load_study(study_name="effects", storage=study_copy)
    save_note(study, "my own remarks")
    analysis = load_or_compute(study)
    attach(study, analysis)
    attach(study, analysis)  # refreshing replaces our section only
    note = get_note(study)
    assert note.count(NOTE_TITLE) == 1 and note.endswith("my own remarks")
