"""optuna-dashboard on a study database, with the analysis attached to the study.

:func:`attach` saves the effect, interaction and importance figures under the study
(``optuna_dashboard.save_plotly_graph_object``, shown on the study's page) and puts a short
helps/hurts summary at the top of the study's note (``save_note``), keeping whatever else the
note holds. :func:`make_server` serves optuna-dashboard's WSGI app on 127.0.0.1 unless told
otherwise, answering requests in threads; ``serve_until_signal()`` runs it until SIGINT or SIGTERM
and then closes the server and the storage.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import optuna

from automl_noisy.errors import UserError
from automl_noisy.data.noise_profile import describe_profile
from automl_noisy.report import figures
from automl_noisy.search.storage import open_storage
from automl_noisy.search.study_analysis import Analysis

GRAPHS = ("method-effects", "method-interactions", "param-importances")
NOTE_TITLE = "## Which methods help or hurt (automl-noisy)"
NOTE_END = "*Refreshed by `automl-noisy dashboard` from {n} trials; the figures are below on this page.*"


def note_markdown(analysis: Analysis, profile: dict | None = None) -> str:
    """The helps/hurts summary as Markdown, with the labels' estimated noise (``profile``) when known."""
    table = analysis.effects
    lines = [NOTE_TITLE, ""]
    for verdict in ("helps", "hurts", "fails often"):
        rows = [r for r in table.rows if r.verdict == verdict]
        found = ", ".join(f"`{figures.label(r.family, r.choice)}`"
                          + (f" ({r.effect:+.3f})" if r.effect is not None and verdict != "fails often"
                             else f" ({r.failed} failed)" if verdict == "fails often" else "") for r in rows)
        lines.append(f"- **{verdict}**: {found or 'none'}")
    pairs = [f"`{figures.label(*p.first)}` with `{figures.label(*p.second)}` ({p.effect:+.3f}, {p.verdict})"
             for p in table.pairs if p.verdict != "unclear"]
    lines.append(f"- **interacting pairs**: {'; '.join(pairs) or 'none'}")
    if profile:
        lines.append(f"- **labels**: {describe_profile(profile)}")
    lines += ["", f"Effects are changes in the objective against the baseline's choices, with "
              f"{table.confidence:.0%} simultaneous intervals; everything else is unclear so far.", "",
              NOTE_END.format(n=analysis.n_trials)]
    return "\n".join(lines)


def attach(study: optuna.Study, analysis: Analysis) -> list[str]:
    """Save the analysis figures and note under ``study``; returns the graph object ids."""
    from optuna_dashboard import get_note, save_note, save_plotly_graph_object

    made = (figures.effects_figure(analysis.effects), figures.interactions_figure(analysis.effects),
            figures.importances_figure(analysis))
    for graph_id, figure in zip(GRAPHS, made):
        save_plotly_graph_object(study, figure, graph_object_id=graph_id)
    old = get_note(study) or ""
    ours = re.compile(re.escape(NOTE_TITLE) + r".*?\*Refreshed by `automl-noisy dashboard`[^\n]*\*", re.S)
    rest = ours.sub("", old).strip()
    save_note(study, note_markdown(analysis, study.user_attrs.get("noise_profile"))
              + (f"\n\n{rest}" if rest else ""))
    return list(GRAPHS)


class _QuietHandler(WSGIRequestHandler):
    timeout = 60  # seconds a connection may sit idle before its thread gives up on it

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


class DashboardServer(ThreadingMixIn, WSGIServer):
    """optuna-dashboard's WSGI app, each request answered in a thread of its own.

    The thread that calls :meth:`serve_until_signal` only waits for a stop signal, so a signal never
    lands inside request code (wsgiref's handler would swallow the ``KeyboardInterrupt`` as a failed
    request and serve on). A stop closes the listening socket, gives requests in flight
    ``STOP_GRACE`` seconds to finish, then closes the storage; idle or half-sent connections (a
    browser's preconnect) hold nothing up.
    """

    daemon_threads = True
    block_on_close = False  # the bounded wait in close() replaces the unbounded join
    STOP_GRACE = 1.0

    def __init__(self, address: tuple[str, int], storage: optuna.storages.RDBStorage) -> None:
        super().__init__(address, _QuietHandler)
        self.storage = storage
        self._requests: set[threading.Thread] = set()  # threads answering a request (not idle connections)
        self._requests_lock = threading.Lock()
        self._closed = False

    def get_app(self) -> Any:
        """The app, for the request this thread has just read: from now on it is in flight."""
        with self._requests_lock:
            self._requests.add(threading.current_thread())
        return super().get_app()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._requests_lock:
                self._requests.discard(threading.current_thread())

    def serve_until_signal(self, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> int:
        """Serve from a background thread until one of ``signals`` arrives, then :meth:`close`;
        returns the signal's number.

        Call from the main thread. Until the server is closed, the signals' handlers only wake this
        thread (through ``signal.set_wakeup_fd``, whichever thread the operating system delivers
        them to), so a second Ctrl+C cannot cut the closing short; the previous handlers are back
        when this returns.
        """
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        old_handlers = {s: signal.signal(s, lambda *_: None) for s in signals}
        serving = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                   name="dashboard-serve", daemon=True)
        try:
            serving.start()
            while True:
                received = [s for s in os.read(read_fd, 64) if s in signals]
                if received:
                    return received[0]
        finally:
            if serving.is_alive():
                self.shutdown()
            self.close()
            for s, handler in old_handlers.items():
                signal.signal(s, handler)
            signal.set_wakeup_fd(old_wakeup)
            os.close(read_fd)
            os.close(write_fd)

    def close(self) -> None:
        """Stop accepting, let requests in flight finish for up to ``STOP_GRACE`` s, close the storage.
        Closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        self.server_close()
        deadline = time.monotonic() + self.STOP_GRACE
        with self._requests_lock:
            requests = list(self._requests)
        for thread in requests:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.storage.remove_session()
        self.storage.engine.dispose()


def is_loopback(host: str) -> bool:
    """Whether ``host`` only reaches this machine (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: whatever it resolves to may be reachable from elsewhere
        return False


def make_server(storage_url: str, host: str = "127.0.0.1", port: int = 8080) -> DashboardServer:
    """An optuna-dashboard server for the study database at ``storage_url`` on ``host:port`` (not yet
    serving; port 0 picks a free one, see ``server.server_port``). Run it with
    :meth:`DashboardServer.serve_until_signal`, which closes it."""
    from optuna_dashboard import wsgi

    storage = open_storage(storage_url, must_exist=True)
    try:
        server = DashboardServer((host, port), storage)
    except (OSError, OverflowError) as e:
        storage.engine.dispose()
        raise UserError(f"cannot serve the dashboard on {host}:{port}: {e.strerror or e}; "
                        "pass another --port or --host") from None
    server.set_app(wsgi(storage))
    return server
