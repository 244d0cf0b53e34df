"""A live progress bar for the driver: trials complete / pruned / failed and the best value."""

from __future__ import annotations

from types import TracebackType

import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class SearchProgress:
    """Counts finished trials (earlier runs of the study included) against the requested total."""

    def __init__(self, study: optuna.Study, total: int, enabled: bool = True) -> None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
        self.counts = {state: sum(t.state == state for t in trials)
                       for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
        self.best = max((t.value for t in trials if t.state == TrialState.COMPLETE), default=None)
        self._bar = Progress(TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.description}"), TimeElapsedColumn(),
                             console=Console(stderr=True), disable=not enabled)
        self._task = self._bar.add_task("", total=total)
        self.enabled = enabled

    def __enter__(self) -> "SearchProgress":
        self._bar.__enter__()
        self._refresh()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._bar.__exit__(kind, exc, tb)

    def say(self, line: str) -> None:
        """A line above the bar (e.g. what pretraining does), when progress is shown."""
        if self.enabled:
            self._bar.console.print(line, markup=False, highlight=False)

    def finished(self, state: TrialState, value: float | None) -> None:
        """Count one trial that ended in ``state`` (with its objective, when complete)."""
        self.counts[state] += 1
        if value is not None and (self.best is None or value > self.best):
            self.best = value
        self._refresh()

    def _refresh(self) -> None:
        c = self.counts
        text = (f"complete {c[TrialState.COMPLETE]} · pruned {c[TrialState.PRUNED]} · failed {c[TrialState.FAIL]}"
                + (f" · best {self.best:.4f}" if self.best is not None else ""))
        self._bar.update(self._task, completed=sum(c.values()), description=text)
