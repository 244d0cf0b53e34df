"""Leave one task out: does the portfolio make a 20-trial search better than a 60-trial one?

Pre-registered here, before any run of this version (tasks, seeds, arms, what is scored, target):

- **Tasks** (``TASKS``): the even-numbered generated tasks of each kind of the suite
  (``benchmarks/portfolio.py``: vec00, vec02, ..., vec10 and img00, img02, ..., img10) and its two
  largest real tables (tab-cancer, tab-weather): 8 vector and 6 image tasks. Each is left out in
  turn: the portfolio (``SIZE`` entries, the greedy build) is built again from the other tasks of its
  kind only, without the entries a tuning search on the task found, so the task never chose an entry.
- **Seeds** 0-4 (the seed of the searches and of training; a task's split and noise stay its own).
- **Arms**: ``portfolio + TPE, 20`` (plain CE, the left-one-out portfolio in its fixed greedy order,
  then TPE), ``nearest portfolio + TPE, 20`` (the same entries in the order of the suite tasks nearest
  the task in rows, classes and estimated noise rate, ``--portfolio-order nearest``), ``TPE alone, 60``
  (no portfolio; a search sees its trials in number order, so its first 20 are ``TPE alone, 20``),
  ``random, 20``; the default space (20 epochs, 3-fold cross-validation, best epoch, pruning).
- **Scored**: what a user gets, the export rule's pick (``one-se``, the default of ``export``) among
  the arm's trials, trained as ``train`` ships it (the fold ensemble) and scored on the task's clean
  test split; and the trials each arm needed for its best-so-far trial (by the noisy objective) to come
  within 1 point of the best clean test accuracy any arm reached there.
- **Target**, for vectors and for images separately: paired over task-seeds, portfolio + TPE at 20
  minus TPE alone at 60, the 95 % bootstrap interval of the mean (task-seeds resampled 10,000 times,
  generator seed 0) lies above zero. The nearest order is worth keeping (as the default order) only
  where its paired interval against the fixed order lies above zero, per kind.
- **Preconditions**: the suite's rows are current (``portfolio.stale_tasks`` empty, as ``build``
  requires); otherwise the script refuses to run and names the stale tasks.
- **Order and resumption**: task by task, seeds inside; each finished task-seed is kept in
  ``.portfolio-eval.partial.json`` and reused only when the package's git tree is identical
  (``_common.code_tree``) and the plan is the same (the tasks, seeds, arms and size above, the suite's
  performance matrix and meta-features, the pool files); the section says how many were kept. The
  partial file is kept in git (the whole run outlasts a working session); while
  ``benchmarks/.portfolio-eval.pause`` exists the run waits before its next task-seed. Each
  shipped pick reuses its search's encoders and kept fold models, as ``train`` of its export does.
- **What ships** (``portfolio_verdict.py``, a rule added after 26 of the 70 task-seeds had run, all
  of them vector ones): per kind, the order (nearest where kept, else fixed) and whether the kind keeps
  its entries at all (only where the portfolio in that order beats TPE alone at the same 20 trials,
  the paired interval above zero); ``portfolio.py build`` applies it to each kind whose planned
  task-seeds this record has all run, on the suite it builds from.

    .venv/bin/python benchmarks/portfolio_eval.py            # 14 x 5 task-seeds: about 9 hours on 2 cores, resumable
    .venv/bin/python benchmarks/portfolio_eval.py --report   # the section again from portfolio-eval.json
    .venv/bin/python benchmarks/portfolio_eval.py --quick    # one task, one seed, 6 and 12 trials: prints only

Rewrites the ``portfolio`` section of BENCHMARKS.md whole, its reading included, and keeps every
task-seed's result in ``portfolio-eval.json`` with the commit and machine it ran on.
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
from _common import (OtherLoad, busy_cores, code_tree, commit, file_digest, finished_rows, keep_rows,  # noqa: E402
                     machine, paused_between, spread, study_of, table, train_reuse, write_record, write_section)
from portfolio import (POOL, STORAGE, TUNED, greedy, nearest_part, performance, pool_entries, stale_tasks,  # noqa: E402
                       suite_digest, task_meta, task_spec, tasks, tuned_on)
from portfolio_verdict import LONG, NEAR, OURS, RANDOM, SHORT, decision, paired, paired_text  # noqa: E402

TASKS = ("vec00", "vec02", "vec04", "vec06", "vec08", "vec10", "tab-cancer", "tab-weather",
         "img00", "img02", "img04", "img06", "img08", "img10")
SEEDS = (0, 1, 2, 3, 4)
SIZE = 8
RUNS = {OURS: ("fixed", "tpe", 20), NEAR: ("nearest", "tpe", 20), LONG: ("none", "tpe", 60),
        SHORT: ("none", "tpe", 20), RANDOM: ("none", "random", 20)}
RECORD = HERE / "portfolio-eval.json"
PARTIAL = HERE / ".portfolio-eval.partial.json"
PAUSE = HERE / ".portfolio-eval.pause"  # while it exists, the run waits before its next run (see paused_between)


def suite_task(prefix: str, suite: list[dict]) -> dict:
    """The suite task whose name starts with ``prefix`` and a dash."""
    (found,) = [t for t in suite if t["name"].startswith(prefix + "-")]
    return found


def portfolio_without(task: str, kind: str, matrix: dict, kinds: dict, meta: dict, folder: Path, size: int) -> Path:
    """The portfolio built from the other tasks of the kind only, with their ``nearest`` records."""
    pool = {e.name: e for entries in pool_entries().values() for e in entries}
    # the left-out task chose nothing: not its row, nor the entries a search on it found
    others = {t: {e: a for e, a in row.items() if not tuned_on(e, task)}
              for t, row in matrix.items() if kinds[t] == kind and t != task}
    chosen, _ = greedy(others, size)
    path = folder / f"portfolio-without-{task}.yaml"
    path.write_text(yaml.safe_dump({kind: [{"name": e, "params": dict(pool[e].params)} for e in chosen],
                                    "nearest": {kind: nearest_part(others, chosen, meta)}}))
    return path


def random_space(folder: Path) -> Path:
    from automl_noisy.search.space import SPACES_DIR

    doc = yaml.safe_load((SPACES_DIR / "default.yaml").read_text())
    doc["sampler"] = {"name": "random"}
    path = folder / "random.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def first_trials(study, trials: int):
    """A study of ``study``'s first ``trials`` trials (a shorter search of the same sampler)."""
    return study_of(sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)[:trials])


def evaluate(study, trials: int, data, folder: Path) -> dict:
    """What the study's first ``trials`` trials export (the default rule), trained as ``train`` ships
    it and scored on the clean test split; and the clean test accuracy of its best-so-far trial after
    each trial (by the noisy objective, each trial's own record at its best epoch)."""
    from dataclasses import replace

    from optuna.trial import TrialState

    from automl_noisy.pipeline import Pipeline
    from automl_noisy.search.selection import choose
    from automl_noisy.train import train_pipeline

    view = first_trials(study, trials)
    best, curve = None, []
    for t in view.get_trials(deepcopy=False):
        if t.state == TrialState.COMPLETE and (best is None or t.value > best.value):
            best = t
        curve.append(best.user_attrs.get("test_accuracy") if best is not None else None)
    chosen = choose(view).trial
    pipeline = replace(Pipeline.from_dict(chosen.user_attrs["pipeline"]), best_epoch=chosen.user_attrs["best_epoch"])
    number = chosen.user_attrs["number"]
    reuse = {**train_reuse(study, number), "encoders": folder / "encoders"}  # the search's encoders and kept fold models
    metrics = train_pipeline(pipeline, folder / f"train-{study.study_name}-{trials}", data=data, **reuse)
    return {"test": metrics["test_accuracy"], "curve": curve,
            "exported": chosen.user_attrs.get("portfolio") or chosen.user_attrs.get("reference")
            or ("plain CE" if chosen.user_attrs.get("baseline") else f"trial {number}")}


def task_seed(task: dict, seed: int, portfolio: Path, rspace: Path, folder: Path, short: bool) -> dict:
    """Every arm on one task and seed: arm -> its result."""
    from dataclasses import replace

    from automl_noisy.data import load_data
    from automl_noisy.search.controller import SearchOptions, search

    spec, storage, studies = task_spec(task), f"sqlite:///{folder}/{task['name']}-{seed}.db", {}
    for name, (pf, sampler, trials) in RUNS.items():
        if name == SHORT:
            continue  # the first 20 trials of the 60-trial search
        studies[name] = search(SearchOptions(
            data=spec, space=str(rspace) if sampler == "random" else "default",
            trials=(6 if trials == 20 else 12) if short else trials, storage=storage,
            study=f"{name.split(',')[0].replace(' ', '').replace('+', '-')}", seed=seed,
            portfolio=str(portfolio) if pf != "none" else None,
            portfolio_order="nearest" if pf == "nearest" else "fixed", progress=False,
            encoders=str(folder / "encoders")))
    studies[SHORT] = studies[LONG]
    data = load_data(replace(spec, folds=studies[LONG].user_attrs["data"]["folds"]))  # as the searches had it
    return {name: evaluate(studies[name], (6 if trials == 20 else 12) if short else trials, data, folder)
            for name, (_, _, trials) in RUNS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="run nothing: the section again from portfolio-eval.json")
    parser.add_argument("--quick", action="store_true", help="the first task, seed 0, 6- and 12-trial searches: "
                                                             "prints only")
    args = parser.parse_args()
    if args.report:
        record = json.loads(RECORD.read_text(encoding="utf-8"))
        if "rows" not in record:
            sys.exit(f"error: {RECORD.name} was written by an earlier version of this script (another plan); "
                     "run the script to measure this plan")
        write_section("portfolio", render(record))
        return
    kinds, matrix = performance(STORAGE)
    stale = stale_tasks(matrix)
    meta = task_meta()
    missing = [t for t in TASKS if not any(name.startswith(t + "-") for name in matrix)]
    missing += [f"{t} (no meta-features)" for t in TASKS if not any(name.startswith(t + "-") for name in meta)]
    if stale or missing:
        sys.exit("error: the suite's rows are not current; run `benchmarks/portfolio.py suite` first "
                 f"(stale: {', '.join(stale) or 'none'}; not measured: {', '.join(missing) or 'none'})")
    suite = tasks()
    todo = [(TASKS[0], SEEDS[0])] if args.quick else [(t, s) for t in TASKS for s in SEEDS]
    busy, code, tree = busy_cores(), commit(), code_tree()
    plan = {"tasks": TASKS, "seeds": SEEDS, "size": SIZE, "runs": RUNS,
            "suite": suite_digest(kinds, matrix, meta),
            "pool": file_digest(POOL, TUNED)}  # rows of a run on another suite are not mixed in
    rows = [] if args.quick else finished_rows(PARTIAL, tree, plan)
    kept = len(rows)
    started = time.perf_counter()
    with OtherLoad() as load, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rspace = random_space(folder)
        for prefix, seed in todo:
            task = suite_task(prefix, suite)
            if any((r["task"], r["seed"]) == (task["name"], seed) for r in rows):
                continue
            paused_between(PAUSE, load)
            portfolio = portfolio_without(task["name"], task["kind"], matrix, kinds, meta, folder, SIZE)
            arms = task_seed(task, seed, portfolio, rspace, folder, args.quick)
            rows.append({"task": task["name"], "kind": task["kind"], "seed": seed, "arms": arms})
            print(task["name"], seed, {n: (round(r["test"], 3), r["exported"]) for n, r in arms.items()}, flush=True)
            if args.quick:
                continue
            if tree:
                keep_rows(PARTIAL, tree, rows, plan)
            record = {"machine": machine(code), "commit": code, "plan": plan,
                      "minutes": (time.perf_counter() - started) / 60,
                      "load": f"Other load when it started: {busy:.2f} cores busy. " + load.sentence()
                      + (f" {kept} task-seeds were kept from an interrupted run of the same package (git tree "
                         f"{tree[:10]} of automl_noisy); the minutes count this run only." if kept else ""),
                      "rows": rows}
            write_record(RECORD, record)
            write_section("portfolio", render(record))
    if args.quick:
        print(render({"machine": machine(code), "commit": code, "minutes": (time.perf_counter() - started) / 60,
                      "load": "", "rows": rows}))


def needed(arms: dict) -> dict[str, int | None]:
    """Per arm of one task-seed, the trials after which its best-so-far trial's clean test accuracy is
    within 0.01 of the best any arm reached there (None: never)."""
    best = max(max((c for c in r["curve"] if c is not None), default=0.0) for r in arms.values())
    return {name: next((i + 1 for i, c in enumerate(r["curve"]) if c is not None and c >= best - 0.01), None)
            for name, r in arms.items()}


def clean_test_rows(task: dict) -> int:
    """How many rows the clean test split of a suite task holds."""
    from automl_noisy.data import DataSpec

    return round(task["rows"] * DataSpec("digits").test_fraction)


def kind_part(rows: list[dict], kind: str) -> tuple[str, str]:
    """The tables of one data kind, and its reading line (the target's verdict first)."""
    mine = [r for r in rows if r["kind"] == kind]
    if not mine:
        return "", ""
    names = list(RUNS)
    reached = {name: [needed(r["arms"])[name] for r in mine] for name in names}
    overall = [[name, spread([r["arms"][name]["test"] for r in mine]),
                f"{np.median([n for n in reached[name] if n is not None]):.0f}"
                if any(n is not None for n in reached[name]) else "—",
                f"{sum(n is not None for n in reached[name])}/{len(mine)}"] for name in names]
    plain_ce = [r["arms"][LONG]["curve"][0] for r in mine if r["arms"][LONG]["curve"][0] is not None]
    overall.append(["plain CE (trial 0, its own record)", spread(plain_ce), "—", "—"])
    per_task = []
    for task in dict.fromkeys(r["task"] for r in mine):
        of = [r for r in mine if r["task"] == task]
        per_task.append([task, str(len(of)), *(f"{np.median([r['arms'][n]['test'] for r in of]):.3f}" for n in names)])
    target = paired(mine, OURS, LONG)
    verdict = "met" if target["low"] > 0 else "**missed**"
    others = "; ".join(paired_text(paired(mine, OURS, b), OURS, b) for b in (SHORT, RANDOM))
    near = paired(mine, NEAR, OURS)
    keep = "kept: better than the fixed order" if near["low"] > 0 else "not kept: not shown better than the fixed order"
    tables = f"""**{kind}** ({len(mine)} task-seeds, clean test accuracy of the export, median (min-max))

{table(["search", "exported", "trials to within 1 point (median)", "reached"], overall)}

Per task (median over seeds):

{table(["task", "seeds", *names], per_task)}
"""
    ships = decision(mine, kind)
    line = (f"- **{kind}**: {paired_text(target, OURS, LONG)}. Target (the interval above zero): {verdict}. "
            f"Beside it: {others}. Order by the nearest tasks: {paired_text(near, NEAR, OURS)}; {keep}. "
            f"What the shipped portfolio holds for {kind} (`portfolio_verdict.py`'s rule, which `portfolio.py build` "
            f"applies): {ships['why']}.")
    return tables, line


def render(record: dict) -> str:
    rows = record["rows"]
    planned = len(TASKS) * len(SEEDS)
    partial = (f"\n\n**Partial**: {len(rows)} of {planned} planned task-seeds so far (task by task); the lines "
               "below read what ran and are not the verdict." if len(rows) < planned else "")
    parts = [kind_part(rows, kind) for kind in ("vectors", "images")]
    sizes = [clean_test_rows(t) for t in tasks() if t["name"] in {r["task"] for r in rows}]
    return f"""## Warm start from the portfolio, leave one task out (`benchmarks/portfolio_eval.py`)

{record['machine']}. {record['load']} {record['minutes']:.0f} minutes.{partial}

**Pre-registered** (in the script's docstring before the run): {len(TASKS)} suite tasks ({', '.join(TASKS)}),
each left out in turn (the portfolio of {SIZE} entries built again from the other tasks of its kind,
without the entries a tuning search on it found); seeds {', '.join(map(str, SEEDS))}; the default space (20
epochs, 3 folds, pruning); arms {OURS} (plain CE, the portfolio in its fixed order, then TPE), {NEAR}
(its entries in the order of the suite tasks nearest the task in rows, classes and estimated noise
rate), {LONG} (no portfolio; its first 20 trials are {SHORT}) and {RANDOM}. Scored: the export rule's pick (`one-se`) among the arm's
trials, shipped as `train` ships it (the fold ensemble), on the task's clean test split; "trials to
within 1 point": the first trial after which the arm's best-so-far trial (by the noisy objective; its
own clean test record) is within 0.01 of the best any arm reached on that task-seed. Target, per kind:
the paired 95 % bootstrap interval of {OURS} minus {LONG} lies above zero; the nearest order is kept only
where its interval against the fixed order lies above zero. One test row is worth
{1 / max(sizes, default=1):.4f} to {1 / min(sizes, default=1):.4f} of accuracy on these tasks.

{chr(10).join(t for t, _ in parts if t)}
{chr(10).join(line for _, line in parts if line)}
"""


if __name__ == "__main__":
    main()
