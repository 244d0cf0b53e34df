"""optuna-dashboard on a study database, with the analysis attached to the study.

:func:`attach` saves the effect, interaction and importance figures under the study
(``optuna_dashboard.save_plotly_graph_object``, shown on the study's page) and puts a short
helps/hurts summary at the top of the study's note (``save_note``), keeping whatever else the
note holds. :func:`attach_when_ready` does so for the study a command names, or says why there is
nothing to analyse yet (no study, several, no complete trial). :func:`make_server` serves
optuna-dashboard's WSGI app on 127.0.0.1 unless told otherwise, answering requests in threads;
``serve_until_signal()`` runs it until SIGINT or SIGTERM and then closes the server and the storage.

The server answers only requests whose ``Host`` header names the address it serves
(:mod:`automl_noisy.report.host_check`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import optuna

from automl_noisy.errors import UserError
from automl_noisy.data.noise_profile import describe_profile
from automl_noisy.report import figures
from automl_noisy.report.host_check import HostCheck, allowed_name, normal_name, served_names
from automl_noisy.search.storage import mask_url, open_storage, resolve_study, study_names
from automl_noisy.search.study_analysis import Analysis, load_or_compute

GRAPHS = ("method-effects", "method-interactions", "param-importances")
NOTE_TITLE = "## Which methods help or hurt (automl-noisy)"
NOTE_END = "*Refreshed by `automl-noisy dashboard` from {n} trials; the figures are below on this page.*"


def note_markdown(analysis: Analysis, profile: dict | None = None, export: tuple[str, ...] = ()) -> str:
    """The helps/hurts summary as Markdown, with the labels' estimated noise (``profile``) when known
    and what ``export`` takes (its rule's reason, the pick against plain CE: :func:`export_lines`)."""
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
    if export:
        lines.append(f"- **export**: {'; '.join(export)}")
    lines += ["", f"Effects are changes in the objective against the baseline's choices, with "
              f"{table.confidence:.0%} simultaneous intervals; everything else is unclear so far.", "",
              NOTE_END.format(n=analysis.n_trials)]
    return "\n".join(lines)


def export_lines(study: optuna.Study) -> tuple[str, ...]:
    """What ranked the trials, what ``export`` takes by its default rule, and that trial and the best
    against plain CE (paired)."""
    from automl_noisy.search.export import ranked_by
    from automl_noisy.search.selection import choose, versus_baseline

    choice = choose(study)
    versus = [versus_baseline(study, study.trials[n]) for n in dict.fromkeys([choice.trial.number, choice.best.number])]
    return (f"trials ranked by {ranked_by(study)}", choice.reason, *(v for v in versus if v))


def attach(study: optuna.Study, analysis: Analysis) -> list[str]:
    """Save the analysis figures and note under ``study``; returns the graph object ids."""
    from optuna_dashboard import get_note, save_note, save_plotly_graph_object

    made = (figures.effects_figure(analysis.effects, figures.objective_name(study)), figures.interactions_figure(analysis.effects),
            figures.importances_figure(analysis))
    for graph_id, figure in zip(GRAPHS, made):
        save_plotly_graph_object(study, figure, graph_object_id=graph_id)
    old = get_note(study) or ""
    ours = re.compile(re.escape(NOTE_TITLE) + r".*?\*Refreshed by `automl-noisy dashboard`[^\n]*\*", re.S)
    rest = ours.sub("", old).strip()
    save_note(study, note_markdown(analysis, study.user_attrs.get("noise_profile"), export_lines(study))
              + (f"\n\n{rest}" if rest else ""))
    return list(GRAPHS)


def attach_when_ready(storage: optuna.storages.BaseStorage, storage_url: str, study_name: str | None) -> str:
    """Attach the analysis to study ``study_name`` (without a name, the storage's only study) when it
    has a complete trial; returns one line saying what was attached, or why nothing was (no study yet,
    several studies and no name, no complete trial yet). A named study that does not exist is a
    UserError."""
    from optuna.trial import TrialState

    where = mask_url(storage_url)
    if study_name is None:
        names = study_names(storage)
        if not names:
            return (f"no study in {where} to analyse yet; studies appear here as searches create them, "
                    "and running 'automl-noisy dashboard' again after a search attaches its analysis")
        if len(names) > 1:
            return (f"{where} holds several studies ({', '.join(names)}); pass --study NAME to attach "
                    "the analysis to one")
    study = resolve_study(storage, study_name, storage_url)
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return (f"study {study.study_name!r} has no complete trial to analyse yet; running 'automl-noisy "
                "dashboard' again once one has finished attaches the analysis")
    attach(study, load_or_compute(study))
    return f"study {study.study_name!r}: see its note and figures"


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
        if ":" in address[0]:  # an IPv6 address (:: listens on IPv4 too where the system allows it)
            self.address_family = socket.AF_INET6
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
        import select

        received: list[int] = []
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        old_handlers = {s: signal.signal(s, lambda number, _frame: received.append(number)) for s in signals}
        serving = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                   name="dashboard-serve", daemon=True)
        try:
            serving.start()
            # The handler records the signal; the pipe only wakes this thread. A signal that came in
            # just before the wakeup fd was set leaves no byte in the pipe, so the wait is bounded and
            # the record is looked at again.
            while not received:
                if select.select([read_fd], [], [], 0.5)[0]:
                    os.read(read_fd, 64)
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


def make_server(storage_url: str, host: str = "127.0.0.1", port: int = 8080,
                allow_hosts: Iterable[str] = ()) -> DashboardServer:
    """An optuna-dashboard server for the study database at ``storage_url`` on ``host:port`` (not yet
    serving; port 0 picks a free one, see ``server.server_port``), answering only requests for the
    names of :func:`served_names` (``server.host_names``). Run it with
    :meth:`DashboardServer.serve_until_signal`, which closes it."""
    from optuna_dashboard import wsgi

    names = served_names(host, [allowed_name(a) for a in allow_hosts])
    storage = open_storage(storage_url, must_exist=True)
    try:
        server = DashboardServer((host.strip("[]"), port), storage)
    except (OSError, OverflowError) as e:
        storage.engine.dispose()
        raise UserError(f"cannot serve the dashboard on {host}:{port}: {e.strerror or e}; "
                        "pass another --port or --host") from None
    bound = normal_name(str(server.server_address[0]))  # the address a host name given as --host resolved to
    server.host_names = names | ({bound} if not ipaddress.ip_address(bound).is_unspecified else set())
    server.set_app(HostCheck(wsgi(storage), server.host_names))
    return server
