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


def commit() -> str:
    """The short commit hash of the code measured (with ``+changes`` when the work tree differs)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"commit {head}{' +changes' if dirty else ''}"


def machine() -> str:
    """One line: date, code commit, cores, CPU model, Python, torch and ray versions."""
    import torch

    try:
        import ray
        ray_version = ray.__version__
    except ImportError:
        ray_version = "not installed"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{datetime.date.today().isoformat()}; {commit()}; {cores} CPU cores ({cpu_model()}), {gpu}; "
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
    path.write_text(text, encoding="utf-8")


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (also readable as plain text on stdout)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(r) for r in rows)])


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for a table cell; None and NaN print as a dash."""
    return "—" if value is None or value != value else f"{value:.{digits}f}"


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
