"""Helpers shared by the benchmark scripts: machine description and BENCHMARKS.md sections."""

from __future__ import annotations

import datetime
import os
import platform
import re
import time
from pathlib import Path

REPORT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
HEADER = ("# Benchmarks\n\nWritten by the scripts in `benchmarks/`; each script replaces only its own "
          "section (between its `<!-- name:start -->` / `<!-- name:end -->` markers). Do not edit by hand.\n")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def package_root() -> Path:
    """The checkout whose ``automl_noisy`` this process imports: the scripts' own, or another one put
    first on ``PYTHONPATH`` (a run of hours resumed at the package it started with, see efficiency.py)."""
    import automl_noisy

    return Path(automl_noisy.__file__).resolve().parent.parent


def commit() -> str:
    """The short commit hash of the code measured (with ``+changes`` when the work tree differs, apart
    from what the benchmark scripts write: BENCHMARKS.md and the JSON records beside them). Where the
    package is imported from another checkout (:func:`package_root`), its commit comes first and the
    scripts' follows."""
    import subprocess

    def head_of(root: Path, *paths: str) -> str:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *paths], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return f"{head}{' +changes' if dirty else ''}"

    root, package = Path(__file__).resolve().parent.parent, package_root()
    try:
        scripts = head_of(root, ".", ":(exclude)BENCHMARKS.md", ":(exclude)benchmarks/*.json")
        imported = head_of(package, "automl_noisy") if package != root else scripts
        if imported == scripts:
            return f"commit {scripts}"
        return f"commit {imported} (the package; the scripts of commit {scripts})"
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"


def code_tree() -> str:
    """The git tree hash of the package measured (the one imported, :func:`package_root`): rows of an
    interrupted run are reused only when the package is the same, byte for byte (a commit that changes
    only a script keeps them)."""
    import subprocess

    root = package_root()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "automl_noisy"], cwd=root,
                           capture_output=True, text=True, check=True).stdout.strip()
    tree = subprocess.run(["git", "rev-parse", "HEAD:automl_noisy"], cwd=root, capture_output=True, text=True,
                          check=True).stdout.strip()
    return "" if dirty else tree


def package_since(code: str) -> str:
    """A sentence for a section written from a record measured at ``code`` (as :func:`commit` says it)
    when the package has changed since: which files of it differ now. Empty when it is the same package
    (or the record's commit is not in this checkout's history).

    >>> package_since("unknown commit")
    ''
    """
    import subprocess

    parts = code.split()
    if len(parts) < 2 or parts[0] != "commit":
        return ""
    root = Path(__file__).resolve().parent.parent
    try:
        changed = subprocess.run(["git", "diff", "--name-only", parts[1], "--", "automl_noisy"], cwd=root,
                                 capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return ""
    if not changed:
        return ""
    shown = ", ".join(f"`{name.removeprefix('automl_noisy/')}`" for name in changed[:6])
    more = f" and {len(changed) - 6} more" if len(changed) > 6 else ""
    return (f"Measured at the package of commit {parts[1]}; this section was written later, when the package differed from "
            f"it in {len(changed)} file{'s' if len(changed) > 1 else ''} ({shown}{more}).")


def finished_rows(partial: Path, tree: str, plan: dict | None = None) -> list[dict]:
    """The rows an interrupted run of the same package kept in ``partial`` (none when the package
    changed since, see :func:`code_tree`, or, with ``plan``, when the run kept another plan: the
    script's tasks, seeds, arms, budgets or the files it reads).

    >>> import json, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "p.json"
    ...     _ = path.write_text(json.dumps({"tree": "t1", "plan": {"marks": [90, 180]}, "rows": [{"a": 1}]}))
    ...     finished_rows(path, "t1", {"marks": (90, 180)}), finished_rows(path, "t1", {"marks": (90,)})
    ([{'a': 1}], [])
    """
    import json

    if not tree or not partial.exists():
        return []
    kept = json.loads(partial.read_text(encoding="utf-8"))
    if plan is not None and kept.get("plan") != json.loads(json.dumps(plan, default=plain)):
        return []
    return kept["rows"] if kept.get("tree") == tree else []


def keep_rows(partial: Path, tree: str, rows: list, plan: dict | None = None) -> None:
    """Keep the finished ``rows`` of a run of the package with git tree ``tree`` (and ``plan``) in
    ``partial``, for :func:`finished_rows`; written whole or not at all (see :func:`write_whole`), so a
    run stopped while it writes keeps the rows it had.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "p.json"
    ...     keep_rows(path, "t1", [{"a": 1}], {"marks": (90,)})
    ...     finished_rows(path, "t1", {"marks": (90,)})
    [{'a': 1}]
    """
    import json

    kept = {"tree": tree, "rows": rows} if plan is None else {"tree": tree, "plan": plan, "rows": rows}
    write_whole(partial, json.dumps(kept, default=plain))


def write_record(path: Path, record: dict) -> None:
    """A benchmark's record (the JSON its section is written from, kept in git), written whole."""
    import json

    write_whole(path, json.dumps(record, indent=1, default=plain))


def write_whole(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it and one rename: a reader (or a run
    stopped mid-write) sees the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def file_digest(*paths: Path) -> str:
    """A short digest of the files' bytes (a missing file counts as empty), for a plan that depends on them."""
    import hashlib

    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:16]


def train_reuse(study, number: int) -> dict:
    """What ``train`` of trial ``number``'s export reuses from its search, as keyword arguments of
    ``train_pipeline``: the search's encoder folder and its encoder thread count (a missing encoder is
    pretrained again as the search did) and the trial's kept fold models (shipped as they are when
    they are exactly what it would train), as ``export`` writes them into the provenance."""
    attrs = study.user_attrs
    folder = attrs.get("fold_models")
    return {"encoders": attrs.get("encoder_folder"), "encoder_threads": attrs.get("encoder_threads", 1),
            "kept": str(Path(folder) / f"trial-{number}") if folder else None}


def study_of(trials):
    """An in-memory study holding copies of ``trials`` (each keeps its own number as the user attribute
    ``number``): a search seen at an earlier moment, for what the export rule would have picked then."""
    import optuna

    view = optuna.create_study(direction="maximize")
    for t in trials:
        view.add_trial(optuna.trial.create_trial(
            state=t.state, value=t.value, params=t.params, distributions=t.distributions,
            user_attrs={**t.user_attrs, "number": t.number}, intermediate_values=t.intermediate_values))
    return view


def plain(value):
    """``json.dumps``'s ``default``: numpy numbers as Python numbers, anything else as text."""
    import numpy as np

    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return str(value)


def machine(code: str | None = None) -> str:
    """One line: date, code commit, cores, CPU model, Python, torch and ray versions. ``code`` is the
    commit a run took when it started (:func:`commit`), so a record written while the checkout moves on
    names the code it measured; by default the checkout's commit now."""
    import torch

    try:
        import ray
        ray_version = ray.__version__
    except ImportError:
        ray_version = "not installed"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{datetime.date.today().isoformat()}; {code or commit()}; {cores} CPU cores ({cpu_model()}), {gpu}; "
            f"Python {platform.python_version()}, torch {torch.__version__}, ray {ray_version}")


def busy_cores(seconds: float = 2.0) -> float:
    """How many cores other processes keep busy, sampled from /proc/stat while this one sleeps."""
    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(values), values[3] + values[4]  # all jiffies, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores * (1 - (idle1 - idle0) / max(1, total1 - total0))


def _tree_ticks(root: int) -> dict[tuple[int, int], int]:
    """CPU time (clock ticks, user + system) of process ``root`` and each of its live descendants, keyed
    by (pid, start time) so that a reused pid is another process. Children's reaped time is left out: a
    reaped child was counted while it lived, and adding it again when it ends would count it twice."""
    stats: dict[int, tuple[int, int, int]] = {}  # pid -> (parent, start time, ticks)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone since the listing
            continue
        stats[int(entry.name)] = (int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12]))
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, (parent, _, _) in stats.items() if parent in tree} - tree
        tree, grew = tree | more, bool(more)
    return {(pid, stats[pid][1]): stats[pid][2] for pid in tree if pid in stats}


def _ticks_between(before: dict[tuple[int, int], int], now: dict[tuple[int, int], int]) -> int:
    """The clock ticks the processes of ``now`` used since ``before`` (all of them for one started since).
    A process that ended in between is left out, so its end never reads as negative time, which made the
    other load of a whole sample jump when a local Ray shut down; its last moments count as other load.

    >>> _ticks_between({(7, 1): 50, (8, 1): 900}, {(7, 1): 80, (9, 5): 4})
    34
    """
    return sum(ticks - before.get(key, 0) for key, ticks in now.items())


def _machine_jiffies() -> tuple[int, int]:
    """All clock ticks of the machine's CPUs so far, and the idle ones (idle + iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values), values[3] + values[4]


class OtherLoad:
    """While a benchmark runs, how many cores processes other than it (this process and its
    descendants: worker processes, a local Ray) keep busy, sampled every ``every`` seconds in a thread;
    ``sentence()`` says it for the section, so a run beside other work is written as such.

    >>> with OtherLoad(every=0.05) as load:
    ...     _ = sum(range(10 ** 6))
    >>> load.sentence().startswith("Other load during the run:")
    True
    """

    def __init__(self, every: float = 10.0, threshold: float = 0.2) -> None:
        import threading

        self.every, self.threshold = every, threshold
        self._cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self.samples: list[tuple[float, float]] = []  # (minutes since the start, cores busy with other work)
        self._stop = threading.Event()
        self.paused = threading.Event()  # set while the run waits between measurements: no samples then
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        hz = os.sysconf("SC_CLK_TCK")
        began = last_time = time.monotonic()
        try:
            last_machine, last_own = _machine_jiffies(), _tree_ticks(os.getpid())
        except (OSError, ValueError, IndexError):
            return  # no /proc here: nothing to say
        while not self._stop.wait(self.every):
            now, machine_now, own = time.monotonic(), _machine_jiffies(), _tree_ticks(os.getpid())
            if self.paused.is_set():  # between measurements (see paused_between): nothing is measured
                last_time, last_machine, last_own = now, machine_now, own
                continue
            seconds = max(now - last_time, 1e-6)
            busy = ((machine_now[0] - last_machine[0]) - (machine_now[1] - last_machine[1])) / hz / seconds
            other = busy - _ticks_between(last_own, own) / hz / seconds
            self.samples.append(((now - began) / 60, min(max(0.0, other), float(self._cores))))
            last_time, last_machine, last_own = now, machine_now, own

    def __enter__(self) -> "OtherLoad":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def busy_minutes(self) -> list[float]:
        """The minutes (since the start) of the samples with more than ``threshold`` cores of other work."""
        return [minute for minute, cores in self.samples if cores > self.threshold]

    @property
    def skewed(self) -> bool:
        """Whether other work took more than ``threshold`` cores at any sample."""
        return bool(self.busy_minutes)

    def sentence(self) -> str:
        """One sentence on the other load during the run, from the samples."""
        if not self.samples:
            return "Other load during the run: not measured (the run was shorter than one sample)."
        cores = [c for _, c in self.samples]
        mean = sum(cores) / len(cores)
        if not self.skewed:
            return (f"Other load during the run: at most {max(cores):.2f} cores busy ({len(cores)} samples, one "
                    f"every {self.every:g} s).")
        busy = self.busy_minutes
        return (f"Other load during the run: {mean:.2f} cores busy on average; more than {self.threshold:g} in "
                f"{len(busy)} of {len(cores)} samples (one every {self.every:g} s), from minute {busy[0]:.0f} to "
                f"minute {busy[-1]:.0f} of {self.samples[-1][0]:.0f}, up to {max(cores):.2f}.")


def write_section(name: str, body: str, path: Path = REPORT) -> None:
    """Replace the ``name`` section of BENCHMARKS.md with ``body`` (append it if absent)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    write_whole(path, text)


def section_from_record(section: str, record: Path, render) -> None:
    """A script's ``--report``: its ``section`` of BENCHMARKS.md written again by ``render`` from the
    stored ``record``."""
    import json

    write_section(section, render(json.loads(record.read_text(encoding="utf-8"))))
    print(f"wrote the {section} section of BENCHMARKS.md from {record.name}")


def publish(runs: dict, render, record: Path, section: str, partial: Path | None = None, quick: bool = False) -> None:
    """The end of a script's run: ``render(runs)`` printed; unless ``quick``, the record and the section
    written whole and the ``partial`` rows of an interrupted run deleted (the run is complete)."""
    print(render(runs))
    if quick:
        return
    write_record(record, runs)
    write_section(section, render(runs))
    if partial is not None:
        partial.unlink(missing_ok=True)
    print(f"wrote the {section} section of BENCHMARKS.md and {record.name}")


def task_seeds_main(description: str, tasks, seeds, runs_of, render, record: Path, partial: Path,
                    section: str) -> None:
    """The command line of a script that runs ``runs_of`` task by seed (:func:`run_task_seeds`):
    ``--report`` writes its section again from ``record`` (:func:`section_from_record`)."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--report", action="store_true", help=f"the section again from {record.name}")
    if parser.parse_args().report:
        section_from_record(section, record, render)
    else:
        run_task_seeds(tasks, seeds, runs_of, render, record, partial, section)


def run_task_seeds(tasks, seeds, runs_of, render, record: Path, partial: Path, section: str) -> None:
    """Run ``runs_of(task, seed)`` (a list of rows) for every task and seed that an interrupted run of
    the same package did not keep in ``partial``; after each, the rows are kept there and the record
    and the section (``render``) are written whole, with the machine and the other load."""
    busy = busy_cores()
    start = time.perf_counter()
    code, tree = commit(), code_tree()
    rows = finished_rows(partial, tree)
    with OtherLoad() as load:
        for task in tasks:
            for seed in seeds:
                if any(r["task"] == task and r["seed"] == seed for r in rows):
                    continue
                rows += runs_of(task, seed)
                if tree:
                    keep_rows(partial, tree, rows)
                runs = {"machine": machine(code), "commit": code, "minutes": (time.perf_counter() - start) / 60,
                        "load": f"Other load when it started: {busy:.2f} cores busy. " + load.sentence(), "rows": rows}
                write_record(record, runs)
                write_section(section, render(runs))
    print(f"wrote the {section} section of BENCHMARKS.md and {record.name}")


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (also readable as plain text on stdout)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(r) for r in rows)])


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for a table cell; None and NaN print as a dash."""
    return "—" if value is None or value != value else f"{value:.{digits}f}"


def spread(values: list[float | None]) -> str:
    """Median (min-max) of the values given (None left out) for a table cell; a dash for none."""
    import statistics

    values = [v for v in values if v is not None]
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}-{fmt(max(values))})" if values else "—"


def median(rows: list[dict], key: str) -> float:
    """The median of ``row[key]`` over the rows that have a number there (NaN if none)."""
    import statistics

    values = [r[key] for r in rows if r.get(key) is not None and r[key] == r[key]]
    return statistics.median(values) if values else float("nan")


def detection(flags, truth) -> dict[str, float]:
    """Share flagged, precision (NaN with no flags), recall and F1 of boolean flags against truth."""
    import numpy as np

    flags, truth = np.asarray(flags, dtype=bool), np.asarray(truth, dtype=bool)
    hits, n_flags, n_true = int((flags & truth).sum()), int(flags.sum()), int(truth.sum())
    return {"flagged": n_flags / max(1, len(flags)),
            "precision": hits / n_flags if n_flags else float("nan"),
            "recall": hits / n_true if n_true else float("nan"),
            "f1": 2 * hits / (n_flags + n_true) if n_flags + n_true else float("nan")}


def top_count_flags(scores, truth):
    """Flags on the ``truth.sum()`` highest scores (ties broken by index)."""
    import numpy as np

    flags = np.zeros(len(scores), dtype=bool)
    flags[np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:int(np.sum(truth))]] = True
    return flags


def waited_for_idle(load: OtherLoad | None = None, cores: float = 0.2, seconds: float = 10.0,
                    sample=None) -> float:
    """Wait, before the next timed measurement, until other processes keep at most ``cores`` cores
    busy over a ``seconds`` sample (``busy_cores``; ``load`` takes no samples meanwhile); the seconds
    waited. A timed search beside other work (a test run, another benchmark) measures the machine
    that is left to it, not the search.

    >>> waited_for_idle(sample=lambda: 0.0)  # idle at once
    0.0
    """
    sample = sample or (lambda: busy_cores(seconds))
    began, told = time.monotonic(), False
    if load is not None:
        load.paused.set()
    try:
        while (busy := sample()) > cores:
            if not told:
                print(f"waiting for an idle machine: other work keeps {busy:.2f} cores busy", flush=True)
                told = True
    finally:
        if load is not None:
            load.paused.clear()
    waited = time.monotonic() - began if told else 0.0
    if told:
        print(f"idle after {waited:.0f} s", flush=True)
    return waited


def other_load_since(load: OtherLoad, first: int) -> float:
    """The mean cores of other work over ``load``'s samples from index ``first`` on (0.0 with none)."""
    cores = [c for _, c in load.samples[first:]]
    return sum(cores) / len(cores) if cores else 0.0


def paused_between(flag: Path, load: OtherLoad | None = None, every: float = 5.0) -> None:
    """Wait, before the next measurement of a run of hours, while the file ``flag`` exists: the machine
    can then do other work without skewing a timed search (none is under way, and ``load`` takes no
    samples meanwhile). Remove the file to go on.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paused_between(Path(tmp) / "absent.pause")  # no flag: returns at once
    """
    if not flag.exists():
        return
    print(f"paused before the next measurement until {flag} is removed", flush=True)
    if load is not None:
        load.paused.set()
    try:
        while flag.exists():
            time.sleep(every)
    finally:
        if load is not None:
            load.paused.clear()
    print("resumed", flush=True)
