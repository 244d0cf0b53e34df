"""`automl-noisy dashboard`: the analysis is attached to the study and optuna-dashboard serves it."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import optuna
import pytest
from optuna_dashboard import get_note

from automl_noisy.report.dashboard import GRAPHS, NOTE_TITLE, attach
from automl_noisy.search.study_analysis import load_or_compute


def _get(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, json.loads(response.read())


STOP_LIMIT = 20  # seconds: a hang, not slowness (the 2 s target is measured in benchmarks/dashboard_stop.py)


@pytest.fixture
def study_copy(effects_study, tmp_path) -> str:
    shutil.copy(effects_study.removeprefix("sqlite:///"), tmp_path / "study.db")
    return f"sqlite:///{tmp_path}/study.db"


@pytest.fixture(scope="module")
def served_study(effects_study, tmp_path_factory) -> str:
    """One copy of the effects study for the stop tests (its analysis is attached once, then reused)."""
    folder = tmp_path_factory.mktemp("served")
    shutil.copy(effects_study.removeprefix("sqlite:///"), folder / "study.db")
    return f"sqlite:///{folder}/study.db"


class _Output(threading.Thread):
    """Reads one of a process's streams to the end, line by line, so it never blocks on a full pipe."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream, self.lines, self.changed = stream, [], threading.Condition()

    def run(self) -> None:
        for line in self.stream:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()
        with self.changed:
            self.lines.append(None)  # the end of the stream
            self.changed.notify_all()

    def text(self) -> str:
        return "".join(line for line in self.lines if line is not None)


def _start_dashboard(storage: str, *extra: str) -> tuple[subprocess.Popen, int]:
    """``automl-noisy dashboard`` on port 0 (a free port), returned with its port once it has said where it
    listens (it accepts connections from then on)."""
    exe = Path(sys.executable).with_name("automl-noisy")
    proc = subprocess.Popen([str(exe), "dashboard", "--storage", storage, "--port", "0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.out, proc.err = _Output(proc.stdout), _Output(proc.stderr)
    proc.out.start()
    proc.err.start()
    with proc.out.changed:
        proc.out.changed.wait_for(lambda: None in proc.out.lines or re.search(r"/dashboard ", proc.out.text()),
                                  timeout=120)
    found = re.search(r"http://[^ ]+:(\d+)/dashboard ", proc.out.text())
    if found is None:
        proc.kill()
        proc.wait()
        proc.err.join(timeout=10)
        pytest.fail(f"the dashboard did not start: {proc.out.text()} {proc.err.text()}")
    return proc, int(found[1])


def _stop(proc: subprocess.Popen, sig: int) -> tuple[int, str, str]:
    proc.send_signal(sig)
    try:
        proc.wait(timeout=STOP_LIMIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        proc.err.join(timeout=10)
        pytest.fail(f"the dashboard was still running {STOP_LIMIT} s after {signal.Signals(sig).name}; "
                    f"stderr: {proc.err.text()[-2000:]}")
    proc.out.join(timeout=10)
    proc.err.join(timeout=10)
    return proc.returncode, proc.out.text(), proc.err.text()


def test_dashboard_serves_the_study_with_the_analysis_attached(study_copy):
    proc, port = _start_dashboard(study_copy)
    try:
        status, studies = _get(f"http://127.0.0.1:{port}/api/studies")
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
        code, out, err = _stop(proc, signal.SIGINT)
    assert code == 0, err
    assert f"http://127.0.0.1:{port}/dashboard" in out  # bound to this machine only by default


class _Browser(threading.Thread):
    """Loads what a browser loads (the page, its script bundle, the study list, the study) over and
    over until the server goes away; ``wait_loads(n)`` returns once n responses have been read."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        base = f"http://127.0.0.1:{port}"
        self.urls = [f"{base}/dashboard", f"{base}/static/bundle.js", f"{base}/api/studies"]
        self.loads = 0
        self.changed = threading.Condition()
        self.gone = False

    def run(self) -> None:
        study_url = None
        while True:
            for url in self.urls + ([study_url] if study_url else []):
                request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})  # as browsers ask
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        body = response.read()
                except (OSError, http.client.HTTPException):  # refused, reset, or cut off mid-body
                    # (IncompleteRead: the server stopped while it sent the 1.8 MB script bundle)
                    with self.changed:
                        self.gone = True
                        self.changed.notify_all()
                    return
                if url.endswith("/api/studies"):
                    study_url = f"{url}/{json.loads(body)['study_summaries'][0]['study_id']}"
                with self.changed:
                    self.loads += 1
                    self.changed.notify_all()

    def wait_loads(self, n: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.loads >= n or self.gone, timeout=120)
            assert not self.gone, "the dashboard stopped answering before it was told to stop"


# When the signal comes, alternately SIGINT (Ctrl+C) and SIGTERM (docker stop, systemd): with no
# request, while a browser loads page after page (the signal lands after n responses, most often in
# the middle of the next one), or while a connection is held open with half a request sent.
MOMENTS = ["idle", "idle", 1, 2, 3, 5, 8, 13, 21, 34, "held connection", "held connection"]
STOPS = [(moment, (signal.SIGINT, signal.SIGTERM)[i % 2]) for i, moment in enumerate(MOMENTS)]


@pytest.mark.parametrize(("moment", "sig"), STOPS, ids=[
    f"{m if isinstance(m, str) else f'after-{m}-loads'}-{s.name}".replace(" ", "-") for m, s in STOPS])
def test_dashboard_stops_cleanly_on_a_signal_at_any_moment(served_study, moment, sig):
    proc, port = _start_dashboard(served_study)
    browser, held = None, None
    try:
        if moment == "held connection":
            held = socket.create_connection(("127.0.0.1", port))
            held.sendall(b"GET /api/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        elif isinstance(moment, int):
            browser = _Browser(port)
            browser.start()
            browser.wait_loads(moment)
        code, out, err = _stop(proc, sig)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if held is not None:
            held.close()
    assert code == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    if browser is not None:
        browser.join(timeout=STOP_LIMIT)
        assert browser.gone  # the server is closed: nothing answers on its port any more


def test_a_dashboard_beyond_loopback_warns_what_it_exposes(served_study):
    """optuna-dashboard's API has no login: bound to every interface, anyone on the network may delete
    a study. The command says so before it serves; on loopback it says nothing."""
    for host, warned in (("0.0.0.0", True), ("127.0.0.1", False)):
        proc, _ = _start_dashboard(served_study, "--host", host)
        code, _, err = _stop(proc, signal.SIGINT)
        assert code == 0
        lines = [line for line in err.splitlines() if line.startswith("warning:")]
        if warned:
            assert len(lines) == 1 and "listens on 0.0.0.0" in lines[0] and "delete" in lines[0], err
        else:
            assert lines == [], err


def test_attach_keeps_the_users_own_note(study_copy):
    from optuna_dashboard import save_note

    study = optuna.load_study(study_name="effects", storage=study_copy)
    save_note(study, "my own remarks")
    analysis = load_or_compute(study)
    attach(study, analysis)
    attach(study, analysis)  # refreshing replaces our section only
    note = get_note(study)
    assert note.count(NOTE_TITLE) == 1 and note.endswith("my own remarks")


# The Host check: a page from another site, loaded by a browser on this machine, must not reach the API
# through a DNS name that resolves to 127.0.0.1 (DNS rebinding); only the names of the served address do.

@pytest.fixture
def served(tmp_path):
    """A real dashboard server (``make_server``, port 0) on a database holding one study, serving from a
    thread; yields (server, storage URL, study id)."""
    from automl_noisy.report.dashboard import make_server

    url = f"sqlite:///{tmp_path}/hosts.db"
    study_id = optuna.create_study(storage=url, study_name="kept", direction="maximize")._study_id
    server = make_server(url, "127.0.0.1", 0)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    serving.start()
    try:
        yield server, url, study_id
    finally:
        server.shutdown()
        server.close()


def _request(port: int, method: str, path: str, host: str | None, body: dict | None = None) -> tuple[int, str, str]:
    """One real HTTP request to 127.0.0.1:``port`` with the given Host header (None: no Host header);
    returns the status, the content type and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            connection.putheader("Host", host)
        data = json.dumps(body).encode() if body is not None else b""
        if body is not None:
            connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(data)))
        connection.endheaders(data)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read().decode()
    finally:
        connection.close()


def _names(url: str) -> list[str]:
    return sorted(optuna.get_all_study_names(url))


def _system_attrs(url: str, name: str) -> dict:
    """The study's system attributes, where optuna-dashboard keeps notes and figures."""
    storage = optuna.storages.RDBStorage(url)
    try:
        return storage.get_study_system_attrs(storage.get_study_id_from_name(name))
    finally:
        storage.engine.dispose()


HOSTILE = ["evil.example", "evil.example:{port}", "EVIL.example.", "127.0.0.1.nip.io:{port}", "localhost.evil.example",
           "[::2]:{port}", "127.0.0.2", "127.0.0.1,evil.example", "127.0.0.1:{port}@evil.example", ""]


@pytest.mark.parametrize("host", HOSTILE)
def test_the_dashboard_refuses_requests_for_any_other_host_and_changes_nothing(served, host):
    server, url, study_id = served
    port = server.server_port
    host = host.format(port=port)
    refused = (400, 403)
    status, kind, body = _request(port, "GET", "/api/studies", host)
    assert status in refused and kind.startswith("text/plain") and body.count("\n") == 1, (status, body)
    assert "study_summaries" not in body
    assert _request(port, "GET", "/dashboard", host)[0] in refused
    assert _request(port, "POST", "/api/studies", host, {"study_name": "planted", "directions": ["maximize"]})[0] \
        in refused
    assert _request(port, "DELETE", f"/api/studies/{study_id}", host)[0] in refused
    assert _request(port, "PUT", f"/api/studies/{study_id}/note", host, {"version": 0, "body": "x"})[0] in refused
    assert _names(url) == ["kept"]
    assert _system_attrs(url, "kept") == {}  # no note was written


def test_a_request_without_a_host_header_is_refused(served):
    server, url, study_id = served
    status, kind, body = _request(server.server_port, "DELETE", f"/api/studies/{study_id}", None)
    assert status == 400 and kind.startswith("text/plain") and "Host header" in body
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=30) as raw:  # HTTP/1.0, no Host
        raw.sendall(b"GET /api/studies HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.0 400 ") and b"study_summaries" not in answer
    assert _names(url) == ["kept"]


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "127.0.0.1", "LOCALHOST.:{port}",
                                  "[::1]:{port}"])
def test_the_loopback_names_read_and_write(served, host):
    server, url, _ = served
    port = server.server_port
    host = host.format(port=port)
    status, _, body = _request(port, "GET", "/api/studies", host)
    assert status == 200 and [s["study_name"] for s in json.loads(body)["study_summaries"]] == ["kept"]
    status, _, body = _request(port, "POST", "/api/studies", host, {"study_name": "made", "directions": ["maximize"]})
    assert status == 201, body
    assert _names(url) == ["kept", "made"]
    made = json.loads(body)["study_summary"]["study_id"]
    assert _request(port, "DELETE", f"/api/studies/{made}", host)[0] == 204
    assert _names(url) == ["kept"]


def test_served_names_follow_the_bound_address():
    import socket as sockets

    from automl_noisy.report.host_check import LOOPBACK_NAMES, served_names

    assert served_names("127.0.0.1") == LOOPBACK_NAMES
    assert served_names("10.1.2.3") == LOOPBACK_NAMES | {"10.1.2.3"}
    assert served_names("127.0.0.1", ["Proxy.Example."]) == LOOPBACK_NAMES | {"proxy.example"}
    everywhere = served_names("0.0.0.0")
    assert LOOPBACK_NAMES | {sockets.gethostname().lower()} <= everywhere
    assert "evil.example" not in everywhere and "0.0.0.0" not in everywhere
    assert served_names("::") == everywhere


def test_a_dashboard_on_every_interface_answers_this_machines_name(tmp_path):
    from automl_noisy.report.dashboard import make_server

    url = f"sqlite:///{tmp_path}/all.db"
    optuna.create_study(storage=url, study_name="kept")
    server = make_server(url, "0.0.0.0", 0)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    serving.start()
    try:
        port = server.server_port
        assert _request(port, "GET", "/api/studies", f"{socket.gethostname()}:{port}")[0] == 200
        assert _request(port, "GET", "/api/studies", f"127.0.0.1:{port}")[0] == 200
        assert _request(port, "GET", "/api/studies", f"evil.example:{port}")[0] == 403
        assert _request(port, "GET", "/api/studies", f"0.0.0.0:{port}")[0] == 403  # not a name of this machine
    finally:
        server.shutdown()
        server.close()


def test_allow_host_admits_a_name(tmp_path):
    url = f"sqlite:///{tmp_path}/allow.db"
    study_id = optuna.create_study(storage=url, study_name="kept")._study_id
    proc, port = _start_dashboard(url, "--allow-host", "dashboard.example.org", "--allow-host", "10.9.8.7")
    try:
        assert _request(port, "GET", "/api/studies", "dashboard.example.org")[0] == 200
        assert _request(port, "GET", "/api/studies", f"10.9.8.7:{port}")[0] == 200
        assert _request(port, "GET", "/api/studies", f"127.0.0.1:{port}")[0] == 200
        assert _request(port, "DELETE", f"/api/studies/{study_id}", "other.example.org")[0] == 403
        assert _names(url) == ["kept"]
    finally:
        code, out, err = _stop(proc, signal.SIGTERM)
    assert code == 0, err
    assert "dashboard.example.org" in out and "10.9.8.7" in out  # the names it answers are printed


# The dashboard before any search (compose starts it with the database): it serves, and says why nothing
# is analysed; the analysis goes only to a study with a complete trial.

def _unfinished(url: str, name: str) -> None:
    from optuna.trial import TrialState

    study = optuna.create_study(storage=url, study_name=name, direction="maximize")
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={"fail_reason": "boom"}))


@pytest.mark.parametrize("case", ["no study", "no complete trial", "several studies", "named, no complete trial"])
def test_the_dashboard_serves_a_database_with_nothing_to_analyse(tmp_path, case):
    url = f"sqlite:///{tmp_path}/early.db"
    optuna.storages.RDBStorage(url).engine.dispose()  # Optuna's tables, no study
    if case != "no study":
        _unfinished(url, "s")
    if case == "several studies":
        _unfinished(url, "t")
    extra = ("--study", "s") if case.startswith("named") else ()
    proc, port = _start_dashboard(url, *extra)
    try:
        status, studies = _get(f"http://127.0.0.1:{port}/api/studies")
        assert status == 200
        assert sorted(s["study_name"] for s in studies["study_summaries"]) == \
            {"no study": [], "several studies": ["s", "t"]}.get(case, ["s"])
    finally:
        code, out, err = _stop(proc, signal.SIGTERM)
    assert code == 0 and "Traceback" not in err, err
    expected = {"no study": "no study in", "several studies": "holds several studies (s, t); pass --study NAME",
                "no complete trial": "study 's' has no complete trial to analyse yet"}
    assert expected.get(case, "study 's' has no complete trial to analyse yet") in out, out
    for name in _names(url):  # nothing attached: no figures, no note
        attrs = _system_attrs(url, name)
        assert not any(key.startswith("dashboard:") for key in attrs), attrs  # optuna-dashboard's keys


def test_the_dashboard_starts_on_an_empty_database_and_analyses_a_study_once_restarted(study_copy, tmp_path):
    """An empty database, then a study with complete trials copied in: the second start attaches."""
    url = f"sqlite:///{tmp_path}/later.db"
    optuna.storages.RDBStorage(url).engine.dispose()
    proc, _ = _start_dashboard(url)
    code, out, _ = _stop(proc, signal.SIGINT)
    assert code == 0 and "no study in" in out
    optuna.copy_study(from_study_name="effects", from_storage=study_copy, to_storage=url)
    proc, port = _start_dashboard(url)
    try:
        (entry,) = _get(f"http://127.0.0.1:{port}/api/studies")[1]["study_summaries"]
        detail = _get(f"http://127.0.0.1:{port}/api/studies/{entry['study_id']}")[1]
        assert set(GRAPHS) <= {g["id"] for g in detail["plotly_graph_objects"]}
    finally:
        code, out, _ = _stop(proc, signal.SIGTERM)
    assert code == 0 and "study 'effects': see its note and figures" in out


@pytest.mark.parametrize(("header", "name"), [
    ("127.0.0.1:8080", "127.0.0.1"), ("LocalHost.", "localhost"), ("[::1]:80", "::1"), ("[0:0::1]", "::1"),
    ("evil.example:1", "evil.example"), ("a,b", None), ("", None), ("x y", None), ("127.0.0.1:abc", None),
    ("[::1", None), ("::1", None), ("user@127.0.0.1", None), ("127.0.0.1/x", None), ("[fe80::1%25eth0]", None)])
def test_host_of_reads_a_host_header(header, name):
    from automl_noisy.report.host_check import host_of

    assert host_of(header) == name
