"""Plotly figures of a study and its analysis, shared by the HTML report and the dashboard.

The effect, interaction and importance figures are drawn from the stored analysis
(:mod:`automl_noisy.search.study_analysis`), so no figure computes anything again; the history is
Optuna's own ``plot_optimization_history``.
"""

from __future__ import annotations

import math

import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState

from automl_noisy.search.analysis import EffectsTable
from automl_noisy.search.study_analysis import Analysis

COLORS = {"helps": "#2e7d32", "hurts": "#c62828", "unclear": "#9e9e9e", "fails often": "#ef6c00",
          "baseline": "#1565c0"}
OBJECTIVE = "validation accuracy (noisy labels)"
TRUSTED_OBJECTIVE = "validation accuracy (trusted rows)"


def objective_name(study: optuna.Study) -> str:
    """What the study's objective is, for axis titles: noisy, or (a clean objective) trusted rows."""
    return TRUSTED_OBJECTIVE if (study.user_attrs.get("objective") or {}).get("ranked_by") == "trusted" else OBJECTIVE


def label(family: str, choice: str) -> str:
    return f"{family}={choice}"


def _layout(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    fig.update_layout(title=title, height=height, template="plotly_white", margin=dict(l=10, r=10, t=60, b=40))
    return fig


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, 240)


def effects_figure(table: EffectsTable, objective: str = OBJECTIVE) -> go.Figure:
    """Horizontal bars: each choice's effect on the ``objective`` (its name) with its simultaneous
    interval, coloured by verdict."""
    title = f"Effect of each choice on the {objective}, against the baseline ({table.confidence:.0%} intervals)"
    rows = [r for r in table.rows if not r.reference and r.effect is not None]
    if not rows:
        return _empty(title, "No effect could be estimated yet: more trials are needed.")
    rows = rows[::-1]  # plotly draws the first bar at the bottom
    plus = [(r.high - r.effect) if r.high is not None else 0 for r in rows]
    minus = [(r.effect - r.low) if r.low is not None else 0 for r in rows]
    fig = go.Figure(go.Bar(
        x=[r.effect for r in rows], y=[label(r.family, r.choice) for r in rows], orientation="h",
        marker_color=[COLORS[r.verdict] for r in rows],
        error_x=dict(type="data", symmetric=False, array=plus, arrayminus=minus, color="#424242"),
        customdata=[[r.verdict, r.trials, r.pruned, r.failed, _interval(r.low, r.high)] for r in rows],
        hovertemplate="%{y}: %{x:+.4f} %{customdata[4]}<br>%{customdata[0]}; %{customdata[1]} trials "
                      "(%{customdata[2]} pruned), %{customdata[3]} failed<extra></extra>"))
    fig.add_vline(x=0, line_color="#212121", line_width=1)
    fig.update_xaxes(title=f"change in {objective} vs. the baseline's choice", zeroline=False)
    return _layout(fig, title, max(320, 26 * len(rows) + 120))


def _interval(low: float | None, high: float | None) -> str:
    return f"[{low:+.4f}, {high:+.4f}]" if low is not None and high is not None else "(no interval)"


def interactions_figure(table: EffectsTable) -> go.Figure:
    """A symmetric heatmap of the estimated pairwise interactions (blank: not estimated)."""
    title = "Interactions: what two choices add together beyond their separate effects"
    if not table.pairs:
        return _empty(title, "No two choices were tried together and apart often enough (3 trials each).")
    names = sorted({label(*p.first) for p in table.pairs} | {label(*p.second) for p in table.pairs})
    index = {n: i for i, n in enumerate(names)}
    z: list[list[float | None]] = [[None] * len(names) for _ in names]
    text = [[""] * len(names) for _ in names]
    for p in table.pairs:
        i, j = index[label(*p.first)], index[label(*p.second)]
        mark = {"helps": " +", "hurts": " -"}.get(p.verdict, "")
        for a, b in ((i, j), (j, i)):
            z[a][b] = p.effect
            text[a][b] = f"{p.effect:+.3f}{mark}"
    limit = max(abs(p.effect) for p in table.pairs) or 1.0
    fig = go.Figure(go.Heatmap(z=z, x=names, y=names, text=text, texttemplate="%{text}", colorscale="RdBu",
                               zmid=0, zmin=-limit, zmax=limit, hoverongaps=False,
                               colorbar=dict(title="interaction"),
                               hovertemplate="%{x} with %{y}: %{z:+.4f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    side = max(420, 34 * len(names) + 200)
    return _layout(fig, title + " ('+'/'-': interval clear of 0)", side)


def importances_figure(analysis: Analysis) -> go.Figure:
    """PED-ANOVA importances of the numeric parameters, as stored by the analysis."""
    title = "Importance of the numeric parameters (Optuna PED-ANOVA, conditional)"
    if not analysis.importances:
        return _empty(title, "; ".join(analysis.notes) or "No importances were computed.")
    ranked = sorted(analysis.importances.items(), key=lambda kv: -kv[1])
    items = [kv for kv in ranked if kv[1] >= 0.001][:25][::-1]
    if len(items) < len(ranked):
        title += f": the {len(items)} largest of {len(ranked)}"
    fig = go.Figure(go.Bar(x=[v for _, v in items], y=[k for k, _ in items], orientation="h",
                           marker_color="#5c6bc0", hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_xaxes(title="importance (sums to 1)")
    return _layout(fig, title, max(320, 22 * len(items) + 120))


def history_figure(study: optuna.Study) -> go.Figure:
    fig = optuna.visualization.plot_optimization_history(study, target_name=objective_name(study))
    return _layout(fig, "Optimization history")


def accuracy_figure(study: optuna.Study) -> go.Figure | None:
    """Clean test accuracy against the objective per trial, when the test labels are known clean."""
    groups: dict[str, list] = {"complete": [], "pruned": []}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        test = t.user_attrs.get("test_accuracy")
        value = t.value if t.state == TrialState.COMPLETE else (
            t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None)
        if test is None or value is None or not math.isfinite(value):
            continue
        groups["complete" if t.state == TrialState.COMPLETE else "pruned"].append((t.number, value, test))
    if not any(groups.values()):
        return None
    fig = go.Figure()
    for state, points in groups.items():
        if points:
            fig.add_trace(go.Scatter(
                x=[p[1] for p in points], y=[p[2] for p in points], mode="markers", name=state,
                text=[f"trial {p[0]}" for p in points], marker=dict(size=9, symbol="circle" if state == "complete"
                                                                   else "x"),
                hovertemplate="%{text}: validation %{x:.4f}, test %{y:.4f}<extra></extra>"))
    objective = objective_name(study)
    fig.update_xaxes(title=f"{objective} (pruned: last reported)")
    fig.update_yaxes(title="test accuracy (clean labels)")
    which = "trusted-row" if objective == TRUSTED_OBJECTIVE else "noisy"
    return _layout(fig, f"Does the {which} validation accuracy track the clean test accuracy?")
