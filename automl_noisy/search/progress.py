"""What the driver shows while it runs, on stderr: a live bar on a terminal (trials complete / pruned /
failed and the best value), one plain line per finished trial where stderr is a file or a pipe (a
log, ``docker compose logs``, CI), so a long search is never silent there.

>>> from optuna.trial import TrialState
>>> trial_line(7, TrialState.COMPLETE, 0.91234, 0.0101, {"model": "mlp", "loss": "gce", "mixing": "none"}, 8, 20)
'trial 7 complete: 0.9123 ± 0.0101 (mlp, loss gce) [8/20]'
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import TracebackType
from typing import TextIO

import optuna
from optuna.trial import TrialState

from automl_noisy.errors import shorten
from automl_noisy.search.selection import NO_METHOD
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn



def short_combination(combination: Mapping[str, object]) -> str:
    """The model and the methods a trial combines, without the families it leaves empty."""
    model = combination.get("model")
    parts = [str(model)] if model else []
    parts += [f"{family} {choice}" for family, choice in combination.items()
              if family not in ("model", "preset") and str(choice) not in NO_METHOD]
    return ", ".join(parts) or "plain"


def trial_line(number: int, state: TrialState, value: float | None, stderr: float | None,
               combination: Mapping[str, object], done: int, total: int, reason: str | None = None) -> str:
    """One line for a finished trial: its number, state, value (the best epoch's, so far for a pruned
    trial) with its standard error, methods, and why it failed."""
    result = "" if value is None else f": {value:.4f}" + (f" ± {stderr:.4f}" if stderr is not None else "")
    why = f"; {shorten(reason, 200)}" if reason else ""
    return f"trial {number} {state.name.lower()}{result} ({short_combination(combination)}) [{done}/{total}]{why}"


class SearchProgress:
    """Counts finished trials (earlier runs of the study included) against the requested total: a bar
    when ``stream`` (stderr) is a terminal, else a line per finished trial; nothing when not
    ``enabled``."""

    def __init__(self, study: optuna.Study, total: int, enabled: bool = True, stream: TextIO | None = None) -> None:
        from automl_noisy.search.shared import counts

        trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                      TrialState.FAIL)) if counts(t)]
        self.counts = {state: sum(t.state == state for t in trials)
                       for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
        self.best = max((t.value for t in trials if t.state == TrialState.COMPLETE), default=None)
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.lines = enabled and not self.stream.isatty()
        self._bar = Progress(TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.description}"), TimeElapsedColumn(),
                             console=Console(file=self.stream), disable=not enabled or self.lines)
        self._task = self._bar.add_task("", total=total)

    def __enter__(self) -> "SearchProgress":
        self._bar.__enter__()
        self._refresh()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._bar.__exit__(kind, exc, tb)

    def say(self, line: str) -> None:
        """A line (e.g. what pretraining does): above the bar, or as it is."""
        if self.lines:
            print(line, file=self.stream, flush=True)
        elif self.enabled:
            self._bar.console.print(line, markup=False, highlight=False)

    def finished(self, number: int, state: TrialState, value: float | None = None, stderr: float | None = None,
                 combination: Mapping[str, object] | None = None, reason: str | None = None) -> None:
        """Count trial ``number``, which ended in ``state`` (see :func:`trial_line` for the rest)."""
        self.counts[state] += 1
        if state == TrialState.COMPLETE and value is not None and (self.best is None or value > self.best):
            self.best = value
        if self.lines:
            print(trial_line(number, state, value, stderr, combination or {}, sum(self.counts.values()), self.total,
                             reason), file=self.stream, flush=True)
        self._refresh()

    def _refresh(self) -> None:
        c = self.counts
        text = (f"complete {c[TrialState.COMPLETE]} · pruned {c[TrialState.PRUNED]} · failed {c[TrialState.FAIL]}"
                + (f" · best {self.best:.4f}" if self.best is not None else ""))
        self._bar.update(self._task, completed=sum(c.values()), description=text)
