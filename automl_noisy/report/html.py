"""The report: one self-contained HTML page (plotly.js inline, nothing fetched from the network).

>>> import optuna
>>> study = optuna.create_study(direction="maximize", study_name="doc")
>>> for i in range(4):
...     study.add_trial(optuna.trial.create_trial(value=0.5 + 0.1 * (i % 2), user_attrs={
...         "combination": {"loss": "gce" if i % 2 else "ce"}, "baseline": i == 0}))
>>> page = render_report(study)
>>> "<script src=" in page, page.count('class="plotly-graph-div"')
(False, 4)
"""

from __future__ import annotations

import html
from pathlib import Path
from string import Template

import optuna
from optuna.trial import TrialState

from automl_noisy.data.noise_profile import describe_profile
from automl_noisy.errors import UserError
from automl_noisy.outputs import check_writable_folder, refuse_inputs, sqlite_file, write_text
from automl_noisy.report import figures
from automl_noisy.search.analysis import EffectsTable
from automl_noisy.search.export import best_pipeline, ranked_by, study_inputs
from automl_noisy.search.summary import baseline_warning, value_text
from automl_noisy.search.storage import mask_url
from automl_noisy.search.study_analysis import Analysis, load_or_compute, open_analysis

PAGE = Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>automl-noisy report: $title</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 1.5rem; color: #212121; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem;
  border-bottom: 1px solid #e0e0e0; padding-bottom: .3rem; }
.meta { color: #616161; } .figure { margin: .5rem 0 1rem; }
pre { background: #f5f5f5; padding: 1rem; overflow-x: auto; font-size: .85rem; }
.helps { color: #2e7d32; } .hurts { color: #c62828; } .fails { color: #ef6c00; }
table.summary td { padding: .15rem .8rem .15rem 0; vertical-align: top; }
</style>
<script type="text/javascript">$plotlyjs</script>
</head><body>
<h1>Which methods help or hurt: $title</h1>
<p class="meta">$meta</p>
<h2>Verdicts</h2>
$summary
<h2>Effects against the baseline</h2>
<div class="figure">$effects</div>
<h2>Interactions</h2>
<div class="figure">$interactions</div>
<h2>Parameter importances</h2>
<div class="figure">$importances</div>
<h2>Optimization history</h2>
<div class="figure">$history</div>
<h2>Label noise</h2>
$detection
<h2>The pipeline export takes</h2>
<p>$best_line</p>
<pre>$pipeline</pre>
<h2>How to read this</h2>
<ul>$notes</ul>
</body></html>
""")

METHOD_NOTES = (
    "Effects come from a ridge regression of the objective on the choices (baseline choices as reference, "
    "centered products for pairs tried together and apart at least 3 times each); intervals are simultaneous "
    "{conf:.0%} bootstrap intervals over trials. <b>helps</b> / <b>hurts</b>: the interval is clear of 0.",
    "Completed trials count with their objective, pruned trials with their last reported value; failed "
    "trials are counted per choice (fails often: at least 30% of its trials and 2); trials stopped with the "
    "search are left out.",
)


def _div(fig, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def _summary(table: EffectsTable) -> str:
    def names(verdict: str) -> str:
        found = [figures.label(r.family, r.choice) for r in table.rows if r.verdict == verdict]
        return html.escape(", ".join(found)) or "none"

    pairs = [f"{figures.label(*p.first)} with {figures.label(*p.second)} ({p.effect:+.3f})"
             for p in table.pairs if p.verdict != "unclear"]
    rows = [("helps", "helps", names("helps")), ("hurts", "hurts", names("hurts")),
            ("fails", "fails often", names("fails often")),
            ("", "interacting pairs", html.escape("; ".join(pairs)) or "none")]
    return '<table class="summary">' + "".join(
        f'<tr><td class="{c}"><b>{h}</b></td><td>{v}</td></tr>' for c, h, v in rows) + "</table>"


def _detection(study: optuna.Study) -> str:
    noise = study.user_attrs.get("noise_rate")
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    auroc = study.best_trial.user_attrs.get("label_issue_auroc") if complete else None
    parts = []
    profile = study.user_attrs.get("noise_profile")
    if profile:
        parts.append(f"<p>Labels, before any trial: {html.escape(describe_profile(profile))}.</p>")
    if auroc is not None:
        parts.append(f"<p>Label-issue detection of the best trial: AUROC <b>{auroc:.3f}</b> against the true "
                     f"noise mask (noise rate {noise}).</p>")
    elif noise:
        parts.append(f"<p>The true noise mask is known (realized noise rate {float(noise):.3f}), but search trials "
                     "do not score training labels. <code>automl-noisy export -o best.yaml &amp;&amp; automl-noisy "
                     "train best.yaml -o out/</code> writes the best pipeline's label-issue AUROC to "
                     "<code>out/metrics.json</code>.</p>")
    else:
        parts.append("<p>The labels' true noise is not known for this data, so detection cannot be scored.</p>")
    fig = figures.accuracy_figure(study)
    if fig is not None:
        parts.append('<div class="figure">' + _div(fig, "fig-accuracy") + "</div>")
    return "\n".join(parts)


def render_report(study: optuna.Study, analysis: Analysis | None = None, storage_url: str = "") -> str:
    """The report page of ``study`` as a string (the stored analysis, computed if stale)."""
    from plotly.offline import get_plotlyjs

    analysis = analysis or load_or_compute(study)
    table = analysis.effects
    counts = table.counts
    data = study.user_attrs.get("data") or {}
    meta = [f"study <b>{html.escape(study.study_name)}</b>"]
    if storage_url:
        meta.append(f"in {html.escape(mask_url(storage_url))}")
    if data:
        meta.append(f"data {html.escape(str(data.get('source')))}, noise {html.escape(str(data.get('noise')))}")
    meta.append(f"{analysis.n_trials} trials analysed ({counts['complete']} complete, {counts['pruned']} pruned, "
                f"{counts['failed']} failed)")
    meta.append(f"trials ranked by {html.escape(ranked_by(study))}")
    if table.baseline_value is not None:
        meta.append(f"baseline (fit) {table.baseline_value:.4f}")
    try:
        pipeline, provenance = best_pipeline(study, storage_url)
        warning = baseline_warning(study)
        chosen = study.trials[provenance["trial"]]
        versus = provenance.get("versus_plain_ce")
        best_line = (f"Trial {provenance['trial']}, {figures.objective_name(study)} {value_text(chosen)} "
                     f"({html.escape(provenance['validation'])}"
                     + (f", best epoch {pipeline.best_epoch})" if pipeline.best_epoch else ")")
                     + (f", clean test accuracy {provenance['test_accuracy']:.4f}"
                        if provenance.get("test_accuracy") is not None else "")
                     + f". Export takes it by {html.escape(provenance['selection'])}"
                     + (f"; {html.escape(versus)}" if versus else "")
                     + ". Save it with <code>automl-noisy export -o best.yaml</code>."
                     + (f' <b class="hurts">Warning:</b> {html.escape(warning)}' if warning else ""))
        yaml_text = pipeline.to_yaml(provenance)
    except UserError as e:
        best_line, yaml_text = html.escape(str(e)), ""
    notes = [n.format(conf=table.confidence) for n in METHOD_NOTES] + [html.escape(n) for n in
                                                                        table.notes + analysis.notes]
    return PAGE.substitute(
        title=html.escape(study.study_name), meta="; ".join(meta), summary=_summary(table),
        plotlyjs=get_plotlyjs(),
        effects=_div(figures.effects_figure(table, figures.objective_name(study)), "fig-effects"),
        interactions=_div(figures.interactions_figure(table), "fig-interactions"),
        importances=_div(figures.importances_figure(analysis), "fig-importances"),
        history=_div(figures.history_figure(study), "fig-history"),
        detection=_detection(study), best_line=best_line, pipeline=html.escape(yaml_text),
        notes="".join(f"<li>{n}</li>" for n in notes))


def write_report(storage_url: str, study_name: str | None, path: str | Path) -> tuple[optuna.Study, Analysis]:
    """Write the report of a stored study to ``path``."""
    path = Path(path)
    check_writable_folder(path)
    refuse_inputs([path], {"the study database": sqlite_file(storage_url)})  # before the analysis is stored
    study, analysis = open_analysis(storage_url, study_name)
    refuse_inputs([path], study_inputs(study, storage_url))
    write_text(path, render_report(study, analysis, storage_url))
    return study, analysis

