"""optuna-dashboard on a study database, with the analysis attached to the study.

:func:`attach` saves the effect, interaction and importance figures under the study
(``optuna_dashboard.save_plotly_graph_object``, shown on the study's page) and puts a short
helps/hurts summary at the top of the study's note (``save_note``), keeping whatever else the
note holds. :func:`make_server` serves optuna-dashboard's WSGI app on 127.0.0.1 unless told
otherwise; ``serve_forever()`` runs it and ``shutdown()`` stops it from another thread.
"""

from __future__ import annotations

import re
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server as _make_server

import optuna

from automl_noisy.errors import UserError
from automl_noisy.report import figures
from automl_noisy.search.storage import open_storage
from automl_noisy.search.study_analysis import Analysis

GRAPHS = ("method-effects", "method-interactions", "param-importances")
NOTE_TITLE = "## Which methods help or hurt (automl-noisy)"
NOTE_END = "*Refreshed by `automl-noisy dashboard` from {n} trials; the figures are below on this page.*"


def note_markdown(analysis: Analysis) -> str:
    """The helps/hurts summary as Markdown."""
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
    save_note(study, note_markdown(analysis) + (f"\n\n{rest}" if rest else ""))
    return list(GRAPHS)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def make_server(storage_url: str, host: str = "127.0.0.1", port: int = 8080) -> WSGIServer:
    """An optuna-dashboard server for the study database at ``storage_url`` on ``host:port`` (not yet
    serving; port 0 picks a free one, see ``server.server_port``)."""
    from optuna_dashboard import wsgi

    app = wsgi(open_storage(storage_url, must_exist=True))
    try:
        return _make_server(host, port, app, handler_class=_QuietHandler)
    except OSError as e:
        raise UserError(f"cannot serve the dashboard on {host}:{port}: {e.strerror or e}; "
                        "pass another --port or --host") from None
