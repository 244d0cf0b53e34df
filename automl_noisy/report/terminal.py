"""The ``automl-noisy effects`` table: family, choice, effect, interval, trials, verdict; then the pairs."""

from __future__ import annotations

import optuna
from rich.console import Console
from rich.table import Table

from automl_noisy.search.study_analysis import Analysis
from automl_noisy.search.selection import choose, versus_baseline
from automl_noisy.search.summary import baseline_warning, value_text

STYLES = {"helps": "green", "hurts": "red", "fails often": "dark_orange", "unclear": "", "baseline": "dim"}


def _interval(low: float | None, high: float | None) -> str:
    return f"[{low:+.4f}, {high:+.4f}]" if low is not None and high is not None else "-"


def print_effects(study: optuna.Study, analysis: Analysis, console: Console | None = None) -> None:
    console = console or Console()
    if not console.is_terminal:
        console = Console(width=120, file=console.file)
    table = analysis.effects
    counts = table.counts
    base = f"; the fit at the baseline: {table.baseline_value:.4f}" if table.baseline_value is not None else ""
    console.print(f"Study [bold]{study.study_name}[/]: {analysis.n_trials} trials analysed ({counts['complete']} "
                  f"complete, {counts['pruned']} pruned, {counts['failed']} failed){base}", highlight=False)
    conf = f"{table.confidence:.0%}"
    out = Table(title=f"Effect on the objective against the baseline's choice ({conf} simultaneous intervals)",
                title_justify="left")
    for name, justify in (("family", "left"), ("choice", "left"), ("effect", "right"),
                          (f"{conf} interval", "center"), ("trials", "right"), ("verdict", "left")):
        out.add_column(name, justify=justify)  # type: ignore[arg-type]
    last = None
    for r in table.rows:
        extra = ", ".join(f"{n} {what}" for n, what in ((r.pruned, "pruned"), (r.failed, "failed")) if n)
        effect = "0 (ref.)" if r.reference else f"{r.effect:+.4f}" if r.effect is not None else "-"
        out.add_row(r.family if r.family != last else "", r.choice, effect, _interval(r.low, r.high),
                    f"{r.trials}" + (f" ({extra})" if extra else ""), r.verdict, style=STYLES[r.verdict])
        last = r.family
    console.print(out)
    clear = [p for p in table.pairs if p.verdict != "unclear"]
    if not clear:
        console.print(f"Interacting pairs: none clear of 0 ({len(table.pairs)} pair(s) estimated).", highlight=False)
    else:
        pairs = Table(title=f"Interacting pairs ({conf} simultaneous intervals)", title_justify="left")
        for name in ("first", "second", "interaction", f"{conf} interval", "together", "verdict"):
            pairs.add_column(name)
        for p in clear:
            pairs.add_row(f"{p.first[0]}={p.first[1]}", f"{p.second[0]}={p.second[1]}", f"{p.effect:+.4f}",
                          _interval(p.low, p.high), str(p.together), p.verdict, style=STYLES[p.verdict])
        console.print(pairs)
    if study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        best = study.best_trial
        console.print(f"Best trial {best.number}: {value_text(best)} (± its standard error)", highlight=False)
        choice = choose(study)
        console.print(f"Export takes {choice.reason}.", highlight=False)
        for number in dict.fromkeys([choice.trial.number, best.number]):
            line = versus_baseline(study, study.trials[number])
            if line:
                console.print(f"{line[0].upper()}{line[1:]}.", highlight=False)
        warning = baseline_warning(study)
        if warning:
            console.print(f"warning: {warning}", style=STYLES["hurts"], highlight=False)
    for note in table.notes + analysis.notes:
        console.print(f"note: {note}", style="dim", highlight=False)
