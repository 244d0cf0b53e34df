"""Leave one task out: does the portfolio make a 20-trial search as good as a 60-trial one?

For each evaluated suite task (``benchmarks/portfolio.py``), the portfolio is built again from the
other tasks of its kind only, then four searches run on the task with the default space (20 epochs,
3-fold cross-validation, best epoch), each for two seeds: portfolio + TPE (20 trials), TPE alone
(60 trials; its first 20 are "TPE alone, 20", since a search sees its trials in number order, so a
longer search starts as the shorter one), and random sampling (20 trials). For each, the exported
pipeline (best noisy cross-validated value) is trained by ``train`` and scored on the task's clean
test split; and the trials it needed to come within 1 point of the best clean test accuracy any of
the four reached on that task and seed (each trial's own clean test accuracy at its best epoch,
best-so-far by the search's objective).

    .venv/bin/python benchmarks/portfolio_eval.py [--tasks 8] [--seeds 2] [--reuse | --report]

Rewrites the ``portfolio`` section of BENCHMARKS.md, its reading included, and keeps every run's result
(clean test accuracy, best-so-far curve, exported entry) in ``portfolio-eval.json``, with the commit it
ran at, and each run's machine, load and duration (``runs``).
TPE alone and random do not depend on the portfolio and repeat exactly for a task and seed, so
``--reuse`` takes their results from that file where it has them and runs only the portfolio arm
(1.3 min against 2.9 for one task and seed): for trying another portfolio, not after a change to
training or search. ``--report`` runs nothing and writes the section from that file alone (the
task-seeds it has for every arm), e.g. after a run cut short.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import busy_cores, commit, machine, table, write_section  # noqa: E402
from portfolio import STORAGE, greedy, performance, pool_entries, task_spec, tasks, tuned_on  # noqa: E402

RUNS = {"portfolio + TPE, 20": ("portfolio", "tpe", 20), "TPE alone, 20": ("none", "tpe", 20),
        "TPE alone, 60": ("none", "tpe", 60), "random, 20": ("none", "random", 20)}
RECORD = HERE / "portfolio-eval.json"  # arm -> "task/seed" -> result, and the commit of each; "runs": how each ran
BASELINES = [name for name, (pf, _, _) in RUNS.items() if pf == "none"]  # what --reuse may take


def load_record() -> dict:
    return json.loads(RECORD.read_text(encoding="utf-8")) if RECORD.is_file() else {}


def save_record(record: dict) -> None:
    RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def portfolio_without(task: str, kind: str, matrix: dict, kinds: dict, folder: Path, size: int) -> Path:
    pool = {e.name: e for entries in pool_entries().values() for e in entries}
    # the left-out task chose nothing: not its row, nor the entries a search on it found
    others = {t: {e: a for e, a in row.items() if not tuned_on(e, task)}
              for t, row in matrix.items() if kinds[t] == kind and t != task}
    chosen, _ = greedy(others, size)
    path = folder / f"portfolio-without-{task}.yaml"
    path.write_text(yaml.safe_dump({kind: [{"name": e, "params": dict(pool[e].params)} for e in chosen]}))
    return path


def random_space(folder: Path) -> Path:
    from automl_noisy.search.space import SPACES_DIR

    doc = yaml.safe_load((SPACES_DIR / "default.yaml").read_text())
    doc["sampler"] = {"name": "random"}
    path = folder / "random.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def evaluate(study, trials: int, folder: Path) -> dict:
    """The exported pipeline of the study's first ``trials`` trials, retrained; and the curve of
    clean test accuracy of the best-so-far trial."""
    from dataclasses import replace

    from optuna.trial import TrialState

    from automl_noisy.pipeline import Pipeline
    from automl_noisy.train import train_pipeline

    first = sorted(study.trials, key=lambda t: t.number)[:trials]
    best, curve = None, []
    for t in first:
        if t.state == TrialState.COMPLETE and (best is None or t.value > best.value):
            best = t
        curve.append(best.user_attrs.get("test_accuracy") if best is not None else None)
    pipeline = replace(Pipeline.from_dict(best.user_attrs["pipeline"]), best_epoch=best.user_attrs["best_epoch"])
    metrics = train_pipeline(pipeline, folder / f"train-{study.study_name}-{trials}", encoders=folder / "encoders")
    return {"test": metrics["test_accuracy"], "curve": curve, "exported": best.user_attrs.get("portfolio")
            or ("plain CE" if best.user_attrs.get("baseline") else f"trial {best.number}")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8, help="evaluated tasks (spread over both kinds)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--kind", choices=("vectors", "images", "both"), default="both")
    parser.add_argument("--reuse", action="store_true",
                        help="take TPE alone and random from portfolio-eval.json where it has them")
    parser.add_argument("--report", action="store_true",
                        help="run nothing: write the section from portfolio-eval.json (task-seeds with every arm)")
    args = parser.parse_args()
    from automl_noisy.search.controller import SearchOptions, search

    kinds, matrix = performance(STORAGE)
    suite = {t["name"]: t for t in tasks()}
    pick = [t for t in sorted(matrix) if args.kind == "both" or kinds[t] == args.kind]
    if args.kind == "both":
        per = args.tasks // 2
        pick = ([t for t in pick if kinds[t] == "vectors"][::2][:per]
                + [t for t in pick if kinds[t] == "images"][::2][:args.tasks - per])
    else:
        pick = pick[::max(1, len(pick) // args.tasks)][:args.tasks]
    if args.report:
        report_from_record(pick, args)
        return
    info, busy = machine(), busy_cores()
    began = time.perf_counter()
    results: dict = {}
    done: list[str] = []
    record, reused, measured = load_record(), 0, commit()
    run = {"commit": measured, "machine": info, "busy": round(busy, 2), "planned": len(pick), "seeds": args.seeds,
           "tasks": 0, "minutes": 0.0, "reused": 0}
    record.setdefault("runs", []).append(run)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rspace = random_space(folder)
        for task in pick:
            spec = task_spec(suite[task])
            portfolio = portfolio_without(task, kinds[task], matrix, kinds, folder, args.size)
            for seed in range(args.seeds):
                storage = f"sqlite:///{folder}/{task}-{seed}.db"
                key = f"{task}/{seed}"
                kept = ({name: dict(record[name][key]) for name in BASELINES}
                        if args.reuse and all(key in record.get(name, {}) for name in BASELINES) else {})
                reused += bool(kept)
                studies = {}
                for name, (pf, sampler, trials) in RUNS.items():
                    if name == "TPE alone, 20" or name in kept:
                        continue  # the first 20 trials of the 60-trial search; or reused
                    studies[name] = search(SearchOptions(
                        data=spec, space=str(rspace) if sampler == "random" else "default", trials=trials,
                        storage=storage, study=f"{task}-{name.split(',')[0].replace(' ', '')}", seed=seed,
                        portfolio=str(portfolio) if pf == "portfolio" else None, progress=False,
                        encoders=str(folder / "encoders")))
                if "TPE alone, 60" in studies:
                    studies["TPE alone, 20"] = studies["TPE alone, 60"]
                out = {name: kept.get(name) or {**evaluate(studies[name], trials, folder), "commit": measured}
                       for name, (_, _, trials) in RUNS.items()}
                for name, r in out.items():
                    record.setdefault(name, {})[key] = {k: v for k, v in r.items() if k != "needed"}
                save_record(record)
                add_results(results, task, seed, out)
                print(task, seed, {n: (round(r["test"], 3), r["needed"], r["exported"]) for n, r in out.items()},
                      flush=True)
            done.append(task)
            run.update(tasks=len(done), reused=reused, minutes=round((time.perf_counter() - began) / 60, 1))
            save_record(record)
            report(results, done, args, run_header(run))


def run_header(run: dict) -> str:
    """How a run went: its machine line, the load when it started, the tasks done and its minutes."""
    return (f"{run['machine']}. Other load when the run started: {run['busy']:.2f} cores busy. {run['tasks']} of "
            f"{run['planned']} planned tasks x {run['seeds']} seeds took\n{run['minutes']:.1f} min"
            f"{reused_text(run.get('reused', 0))}.")


def add_results(results: dict, task: str, seed: int, out: dict) -> None:
    """Add one task-seed's results of every arm, each with the trials it needed to come within 1 point
    of the best clean test accuracy any arm reached there."""
    best = max(max((c for c in r["curve"] if c is not None), default=0) for r in out.values())
    for name, r in out.items():
        within = [i + 1 for i, c in enumerate(r["curve"]) if c is not None and c >= best - 0.01]
        r["needed"] = within[0] if within else None
        results.setdefault(name, []).append({"task": task, "seed": seed, **r})


def clean_test_rows(task: dict) -> int:
    """How many rows the clean test split of a suite task holds."""
    from automl_noisy.data import DataSpec

    return round(task["rows"] * DataSpec("digits").test_fraction)


REFERENCES = {"plain CE": "plain CE (trial 0): its own clean test, not retrained",
              "best leader": "best trial that led any of the searches: its own clean test, not retrained"}


def reference_points(results: dict) -> dict[str, dict]:
    """Per task-seed, the clean test accuracy (at its best epoch, as a trial scores it) of plain CE,
    trial 0 of every search, and the best of those of the trials that led a search by its noisy value
    at some point (the points of the best-so-far curves; the record keeps no other trial's)."""
    plain: dict = {}
    best: dict = {}
    for rs in results.values():
        for r in rs:
            key = (r["task"], r["seed"])
            plain.setdefault(key, r["curve"][0] if r["curve"] else None)
            points = [c for c in r["curve"] if c is not None]
            if points:
                best[key] = max(best.get(key, 0.0), max(points))
    return {"plain CE": plain, "best leader": best}


def paired(results: dict, a: str, b: str) -> dict | None:
    """``a`` minus ``b`` on the same task-seeds: how many, the mean, a 95 % bootstrap interval of the mean
    (task-seeds resampled, seed 0), wins / ties / losses; None when they share no task-seed."""
    pairs = {(r["task"], r["seed"]): r["test"] for r in results[a]}
    diffs = np.array([pairs[(r["task"], r["seed"])] - r["test"] for r in results[b] if (r["task"], r["seed"]) in pairs])
    if len(diffs) == 0:
        return None
    means = np.random.default_rng(0).choice(diffs, size=(10000, len(diffs))).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    ties, wins = int((np.abs(diffs) < 1e-9).sum()), int((diffs > 1e-9).sum())
    return {"n": len(diffs), "mean": float(diffs.mean()), "low": float(low), "high": float(high), "wins": wins,
            "ties": ties, "losses": len(diffs) - wins - ties}


def paired_difference(results: dict, a: str, b: str, pick: list[str]) -> str:
    """``a`` minus ``b`` on the same task-seeds (``paired``), in one line; and the size of one test
    sample on those tasks."""
    p = paired(results, a, b)
    if p is None:
        return ""
    sizes = [clean_test_rows(t) for t in tasks() if t["name"] in pick]
    return (f"Paired on the same {p['n']} task-seeds, {a} minus {b}: mean {p['mean']:+.3f}, 95 % bootstrap "
            f"interval {p['low']:+.3f} to {p['high']:+.3f}; {p['wins']} wins, {p['ties']} ties, {p['losses']} losses. "
            f"One test sample is worth {1 / max(sizes):.4f} to {1 / min(sizes):.4f} of accuracy on these tasks "
            f"(test splits of {min(sizes)} to {max(sizes)} rows).")


def reused_text(reused: int) -> str:
    return (f"; TPE alone and random of {reused} task-seeds were taken from `{RECORD.name}` (`--reuse`: they do "
            "not depend on the portfolio), the portfolio arm ran" if reused else "")


def report_from_record(pick: list[str], args) -> None:
    """The section from the stored runs alone (``--report``): the task-seeds that have every arm."""
    record, results, done = load_record(), {}, []
    for task in pick:
        keys = [f"{task}/{seed}" for seed in range(args.seeds)]
        if all(key in record.get(name, {}) for key in keys for name in RUNS):
            for seed, key in enumerate(keys):
                add_results(results, task, seed, {name: dict(record[name][key]) for name in RUNS})
            done.append(task)
    if not done:
        sys.exit(f"error: {RECORD.name} has no task with all {args.seeds} seeds of every arm")
    commits = sorted({r["commit"] for rs in results.values() for r in rs})
    runs = [run for run in record.get("runs", []) if run["commit"] in commits]
    told = {run["commit"] for run in runs}
    lines = [run_header(run) for run in runs] + [f"{c}: no record of how it ran." for c in commits if c not in told]
    report(results, done, args, "\n".join(lines) + f" Written from the record of {'that run' if len(lines) == 1 else 'those runs'}, "
                                f"`{RECORD.name}` (`--report`), for {len(done)} of {len(pick)} planned tasks x {args.seeds} seeds.")


def reading(results: dict, median_task: dict[str, float], seeds: int, verdict: str) -> str:
    """What the numbers of the section say, in words: the target on the median task, the paired
    difference behind it, how far one seed alone moves the median task, the trials each arm needed to
    come within a point, and sixty trials of TPE against twenty."""
    ours, tpe60, tpe20 = "portfolio + TPE, 20", "TPE alone, 60", "TPE alone, 20"
    p = paired(results, ours, tpe60)
    if p is None:
        return ""
    if p["low"] > 0 or p["high"] < 0:
        who = "portfolio + TPE" if p["low"] > 0 else "TPE alone at 60"
        tie = f"the difference favours {who}"
    else:
        tie = "the two are a tie"
    by_seed = {name: [float(np.median([r["test"] for r in results[name] if r["seed"] == seed])) for seed in range(seeds)]
               for name in (ours, tpe60)}

    def needed(name: str) -> float | None:
        reached = [r["needed"] for r in results[name] if r["needed"] is not None]
        return float(np.median(reached)) if reached else None

    fast, slow = needed(ours), needed(tpe60)
    if fast is None or slow is None:
        speed = ""
    elif fast < slow:
        speed = (f" What the portfolio measurably gives is speed: its best-so-far trial comes within a point of the "
                 f"best any search found after {fast:.0f} trials (median, where it got there) where TPE alone "
                 f"at 60 needs {slow:.0f}.")
    else:
        speed = (f" The portfolio does not make the search faster: its best-so-far trial comes within a point of the "
                 f"best any search found after {fast:.0f} trials (median, where it got there), TPE alone at 60 "
                 f"after {slow:.0f}.")
    more = "better" if median_task[tpe60] > median_task[tpe20] else "not better"
    return (f"**Reading.** On the median task portfolio + TPE at 20 trials gives {median_task[ours]:.3f} against TPE "
            f"alone at 60 {median_task[tpe60]:.3f}: {verdict}; but read it with the paired line at the end: over the "
            f"{p['n']} task-seeds {tie} (mean difference {p['mean']:+.3f}, 95 % interval {p['low']:+.3f} to "
            f"{p['high']:+.3f}, {p['wins']} wins and {p['losses']} losses), and the median task of one seed alone "
            f"ranges from {min(by_seed[tpe60]):.3f} to {max(by_seed[tpe60]):.3f} for TPE alone at 60 (from "
            f"{min(by_seed[ours]):.3f} to {max(by_seed[ours]):.3f} for portfolio + TPE).{speed} Sixty trials of TPE "
            f"alone are {more} than twenty here ({median_task[tpe60]:.3f} against {median_task[tpe20]:.3f} on the "
            "median task).")


def report(results: dict, pick: list[str], args, header: str) -> None:
    """Write the portfolio section from the task-seeds done so far (a partial run says so)."""
    rows = []
    for name, rs in results.items():
        tests = [r["test"] for r in rs]
        needed = [r["needed"] for r in rs]
        reached = [n for n in needed if n is not None]
        rows.append([name, f"{np.median(tests):.3f} ({min(tests):.3f}-{max(tests):.3f})",
                     f"{np.median(reached):.0f}" if reached else "—", f"{len(reached)}/{len(needed)}"])
    references = reference_points(results)
    for name, points in references.items():
        values = [v for v in points.values() if v is not None]
        rows.append([REFERENCES[name], f"{np.median(values):.3f} ({min(values):.3f}-{max(values):.3f})" if values else "—",
                     "—", "—"])
    task_median = {name: {task: float(np.median([r["test"] for r in results[name] if r["task"] == task]))
                           for task in pick} for name in RUNS}  # per arm, each task's median over seeds
    per_task = []
    for task in pick:
        cells = [task, *(f"{task_median[name][task]:.3f}" for name in RUNS)]
        for points in references.values():
            values = [v for (t, _), v in points.items() if t == task and v is not None]
            cells.append(f"{np.median(values):.3f}" if values else "—")
        per_task.append(cells)
    median_task = {name: float(np.median(list(task_median[name].values()))) for name in RUNS}
    per_seed = [", ".join(f"{name} {np.median([r['test'] for r in results[name] if r['seed'] == seed]):.3f}"
                          for name in ("portfolio + TPE, 20", "TPE alone, 60"))
                for seed in range(args.seeds)]
    paired_line = paired_difference(results, "portfolio + TPE, 20", "TPE alone, 60", pick)
    verdict = ("met" if median_task["portfolio + TPE, 20"] >= median_task["TPE alone, 60"] else "not met")
    text = f"""
## Warm start from the portfolio, leave one task out (`benchmarks/portfolio_eval.py`)

{header}

{reading(results, median_task, args.seeds, verdict)}

**Setup.** Tasks of the suite (`benchmarks/portfolio.py`, whose section lists them), each left out in turn:
the portfolio ({args.size} entries) is built again from the other tasks of its kind only, so the
evaluated task never chose an entry. On each task and seed (the seed of the search and of the
training; the task's split and noise stay its own), four searches with the default space (20
epochs, 3-fold cross-validation, best epoch, pruning on): **portfolio + TPE** (plain CE, the
portfolio, then TPE; 20 trials), **TPE alone** (60 trials; its first 20 are the 20-trial run),
**random** (20 trials). The exported pipeline (the best noisy out-of-fold value) is trained by
`train` (final model on the whole pool) and scored on the clean test split. "Trials to within 1
point": the first trial after which the best-so-far trial's own clean test accuracy (at its best
epoch) is within 0.01 of the best any of the four reached on that task and seed; "reached": in how
many task-seeds it got there at all.

| search | exported, retrained: clean test, median (min-max) over tasks and seeds | trials to within 1 point (median) | reached |
|---|---|---|---|
{chr(10).join('| ' + ' | '.join(r) + ' |' for r in rows)}

Per task (median over seeds):

{table(["task", *RUNS, *REFERENCES], per_task)}

Median over tasks: {', '.join(f'{n} {v:.3f}' for n, v in median_task.items())}. Target (portfolio + TPE at
20 trials at least matches TPE alone at 60 on the median task): **{verdict}**.

Each seed alone, median over tasks: {'; '.join(f'seed {seed}: {text}' for seed, text in enumerate(per_seed))}.
{paired_line}
"""
    print(text)
    write_section("portfolio", text)


if __name__ == "__main__":
    main()
