"""Ship what was validated: the export rule and the model that ships, measured.

Run by ``benchmarks/model_selection.py --ship`` (it writes the BENCHMARKS.md section
``model-selection-ship``; ``--ship --report`` writes it again from ``model-selection-ship.json``).

Pre-registered here, before any run: the tasks, seeds, budget, arms and targets below.

Tasks: digits with symmetric:0.4, symmetric:0.8 and pair:0.4 noise, and the ``cars`` table of the
``vega_datasets`` package (406 cars, 7 numeric columns, the origin USA / Europe / Japan as the label;
its 14 missing values filled by ``--impute median``) with pair:0.3 noise. Seeds 0, 1, 2. Each a
default search (space ``default``, the portfolio, 20 trials: ``automl-noisy search``'s defaults,
3 folds), Ray on every core. Per search:

- **today**: the best trial (``--rule best``) and a refit on the whole pool (``--refit``), what
  ``export`` + ``train`` shipped before.
- **new**: the one-standard-error rule (``--rule one-se``), shipped both ways: the fold ensemble
  (``--ensemble``) and the refit.
- **ce-guard**: the rule ``--rule ce-guard`` (plain CE when it is within one paired standard error of
  the best, else the best), shipped as the fold ensemble. Added after the first complete run (commit
  7f27a2a, which had no such rule), where the one-se rule missed the worst-gap target by trading the
  best trial for a simpler one the noisy ranking could not separate from it; the tasks, seeds and
  targets did not change, and the same targets are read for it.
- **plain CE**: trial 0's pipeline shipped as the new default ships.
- **best trial**: the search's best trial as it recorded its clean test accuracy (the mean of its
  fold models at its best epoch; not retrained).

Every shipped model is trained by ``train_pipeline`` as ``train`` of the export trains it (the search's
encoders, and its kept fold models where they are exactly what it would train) and scored on the clean
test split (clean labels only score). Targets (the issue's): on every search the new default's model is not below plain CE by
more than one paired standard error on the test rows (``sd(d) / sqrt(n)``, ``d`` the difference of
the two models' correctness per test row); the new default is at most 1 point below its search's best
trial (median over all searches) and never more than 3. The default model to ship
(``DEFAULT_FINAL_MODEL``) is the one the table supports: the higher median over all searches of the
one-se pick shipped both ways (the ensemble on a tie).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from _common import (OtherLoad, busy_cores, code_tree, commit, finished_rows, keep_rows, machine,
                     publish, section_from_record, spread, table, train_reuse)

RECORD = Path(__file__).resolve().parent / "model-selection-ship.json"
#: the rows finished so far, kept after each search so that an interrupted run goes on where it stopped
PARTIAL = Path(__file__).resolve().parent / ".model-selection-ship.partial.json"
SECTION = "model-selection-ship"

SHIP_TASKS = (("digits", "symmetric:0.4"), ("digits", "symmetric:0.8"), ("digits", "pair:0.4"), ("cars", "pair:0.3"))
SHIP_SEEDS = (0, 1, 2)
SHIP_TRIALS = 20
#: the targets, fixed before the run
TARGET_MEDIAN_GAP, TARGET_WORST_GAP = -0.01, -0.03


def cars_csv(folder: Path) -> Path:
    """The cars table of vega_datasets as a CSV file (the label column ``Origin``; ``Name`` left out)."""
    from vega_datasets import data

    path = folder / "cars.csv"
    data.cars().drop(columns=["Name"]).to_csv(path, index=False)
    return path


def ship_spec(task: str, noise: str, seed: int, folder: Path):
    from automl_noisy.data import DataSpec

    if task == "digits":
        return DataSpec("digits", noise, seed=seed)
    return DataSpec(f"csv:{cars_csv(folder)}", noise, label_column="Origin", seed=seed, options={"impute": "median"})


def shipped(pipeline, final_model: str, data, **reuse) -> tuple[float, np.ndarray]:
    """Train ``pipeline`` as ``train`` does, shipping ``final_model`` (``reuse``: what ``train`` of the
    export takes from its search, ``_common.train_reuse``): its clean test accuracy and which test rows
    it gets right."""
    from automl_noisy import load
    from automl_noisy.train import train_pipeline

    with tempfile.TemporaryDirectory() as out:
        metrics = train_pipeline(pipeline, out, data=data, final_model=final_model, **reuse)
        model = load(out)
        right = model.probabilities(data.x_test).argmax(axis=1) == data.y_test
    assert abs(float(right.mean()) - metrics["test_accuracy"]) < 1e-9, (right.mean(), metrics["test_accuracy"])
    return float(right.mean()), right


def paired_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``a`` minus ``b`` in accuracy on the same test rows, with its paired standard error."""
    from automl_noisy.search.selection import paired_difference

    return paired_difference(a, b)


def ship_one(task: str, noise: str, seed: int) -> dict:
    """One search and what it ships by each arm (see the module docstring)."""
    from automl_noisy.data import load_data
    from automl_noisy.final_model import DEFAULT_FINAL_MODEL
    from automl_noisy.pipeline import Pipeline
    from automl_noisy.search.controller import SearchOptions, search
    from automl_noisy.search.selection import baseline_of, choose, methods

    with tempfile.TemporaryDirectory() as tmp:
        spec = ship_spec(task, noise, seed, Path(tmp))
        start = time.perf_counter()
        study = search(SearchOptions(spec, space="default", trials=SHIP_TRIALS, storage=f"sqlite:///{tmp}/s.db",
                                     seed=seed, progress=False))
        minutes = (time.perf_counter() - start) / 60
        data = load_data(replace(spec, folds=study.user_attrs["data"]["folds"]))
        best, new, ce = choose(study, "best").trial, choose(study, "one-se").trial, baseline_of(study)
        guard = choose(study, "ce-guard").trial
        pipe = lambda t: replace(Pipeline.from_dict(t.user_attrs["pipeline"]), best_epoch=t.user_attrs["best_epoch"])  # noqa: E731
        cache: dict[tuple[int, str], tuple[float, np.ndarray]] = {}

        def ship(trial, how):
            if (trial.number, how) not in cache:
                cache[(trial.number, how)] = shipped(pipe(trial), how, data, **train_reuse(study, trial.number))
            return cache[(trial.number, how)]

        row = {"task": f"{task} {noise}", "seed": seed, "default": DEFAULT_FINAL_MODEL, "minutes": minutes, "trials": len(study.trials),
               "best_trial": best.number, "new_trial": new.number, "ce_trial": ce.number,
               "new_methods": new.user_attrs.get("combination"),
               "best_recorded": best.user_attrs["test_accuracy"], "ce_recorded": ce.user_attrs["test_accuracy"],
               "today": ship(best, "refit")[0], "new_ensemble": ship(new, "ensemble")[0],
               "new_refit": ship(new, "refit")[0], "ce_ensemble": ship(ce, "ensemble")[0],
               "guard_trial": guard.number, "guard_ensemble": ship(guard, "ensemble")[0],
               "guard_ensemble_vs_ce": paired_test(ship(guard, "ensemble")[1], ship(ce, "ensemble")[1]),
               "test_rows": len(data.y_test),
               # every complete trial, for reading other rules later: number, value, methods, own clean record
               "trials_record": [[t.number, t.value, methods(t.user_attrs.get("combination")),
                                  t.user_attrs.get("test_accuracy")] for t in study.trials if t.value is not None]}
        for how in ("ensemble", "refit"):
            row[f"new_{how}_vs_ce"] = paired_test(ship(new, how)[1], ship(ce, "ensemble")[1])
        print(f"{row['task']} seed {seed}: {row}", flush=True)
        return row


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def render(runs: dict) -> str:
    """The section from the stored runs: the table, the targets and which model to ship, as measured."""
    rows = runs["rows"]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    default = rows[0]["default"]
    lines = []
    for task in tasks:
        mine = [r for r in rows if r["task"] == task]
        lines.append([task, spread([r["ce_ensemble"] for r in mine]), spread([r["best_recorded"] for r in mine]),
                      spread([r["today"] for r in mine]), spread([r["new_ensemble"] for r in mine]),
                      spread([r["new_refit"] for r in mine]),
                      " ".join(f"{r['new_' + default] - r['best_recorded']:+.3f}" for r in mine),
                      " ".join(f"{d:+.3f}±{se:.3f}" for d, se in (r[f"new_{default}_vs_ce"] for r in mine)),
                      " ".join(f"{r['new_trial']}{'=' if r['new_trial'] == r['best_trial'] else '<'}{r['best_trial']}"
                               for r in mine)])
    guarded = all("guard_ensemble" in r for r in rows)  # runs before the ce-guard arm have none
    if guarded:
        for line, task in zip(lines, tasks):
            mine = [r for r in rows if r["task"] == task]
            line += [spread([r["guard_ensemble"] for r in mine]),
                     " ".join(f"{r['guard_ensemble'] - r['best_recorded']:+.3f}" for r in mine),
                     " ".join(f"{r['guard_trial']}{'=' if r['guard_trial'] == r['best_trial'] else '<'}{r['best_trial']}"
                              for r in mine)]
    text = table(["task", "plain CE", "best trial (its record)", "today: best + refit", "one-se + ensemble",
                  "one-se + refit", f"one-se + {default} − best trial, by seed",
                  f"one-se + {default} − plain CE (paired SE), by seed", "one-se pick vs best, by seed"]
                 + (["ce-guard + ensemble", "ce-guard + ensemble − best trial, by seed", "ce-guard pick vs best, by seed"]
                    if guarded else []), lines)
    searches = len(rows)
    below = [r for r in rows if r[f"new_{default}_vs_ce"][0] < -r[f"new_{default}_vs_ce"][1]]
    gaps = [r[f"new_{default}"] - r["best_recorded"] for r in rows]
    median_gap, worst_gap = statistics.median(gaps), min(gaps)
    ens = [r["new_ensemble"] for r in rows]
    ref = [r["new_refit"] for r in rows]
    wins = sum(e > f for e, f in zip(ens, ref)), sum(e < f for e, f in zip(ens, ref))
    supported = "ensemble" if statistics.median(ens) >= statistics.median(ref) else "refit"
    today = [r["today"] for r in rows]
    new = [r[f"new_{default}"] for r in rows]
    picked_other = sum(r["new_trial"] != r["best_trial"] for r in rows)
    reading = [
        f"- **Against plain CE**: the new default (one-se + {default}) is below plain CE by more than one paired "
        f"standard error on {len(below)} of {searches} searches"
        + (" (" + ", ".join(f"{r['task']} seed {r['seed']}" for r in below) + ")" if below else "")
        + f": {verdict(not below)} (target: none).",
        f"- **Against the best trial**: new default − the search's best trial, median {median_gap:+.3f} (target >= "
        f"{TARGET_MEDIAN_GAP:+.2f}: {verdict(median_gap >= TARGET_MEDIAN_GAP - 1e-9)}), worst {worst_gap:+.3f} (target >= "
        f"{TARGET_WORST_GAP:+.2f}: {verdict(worst_gap >= TARGET_WORST_GAP - 1e-9)}).",
        f"- **Today against new**: median {statistics.median(today):.3f} (best + refit) against "
        f"{statistics.median(new):.3f} (one-se + {default}) over the {searches} searches; the one-se rule picked "
        f"another trial than the best in {picked_other} of them.",
        *(guard_reading(rows) if guarded else []),
        f"- **Which model to ship**: the one-se pick shipped as the fold ensemble scores a median "
        f"{statistics.median(ens):.3f} against {statistics.median(ref):.3f} as a refit; the ensemble is higher on "
        f"{wins[0]}, the refit on {wins[1]} of {searches} searches. The table supports **{supported}**; "
        + ("that is the shipped default (`DEFAULT_FINAL_MODEL`)." if supported == default else
           f"the code ran with `{default}`, so the default should change."),
    ]
    return f"""## Ship what was validated: export rule and final model (`benchmarks/model_selection.py --ship`)

{runs['machine']}. {runs['load']} {runs['minutes']:.0f} minutes.

**Pre-registered** (in `benchmarks/ship.py` before the run): tasks digits symmetric:0.4, symmetric:0.8,
pair:0.4 and the vega_datasets cars table (406 rows, origin from 7 columns, missing values imputed by
the median) at pair:0.3; seeds {', '.join(map(str, SHIP_SEEDS))}; each a default {SHIP_TRIALS}-trial search
(the default space, the portfolio, 3 folds, Ray on every core). Per search, trained and scored on the
clean test split: plain CE shipped as the new default ships; **today** (best trial, refit on the
whole pool); the **one-se** rule's pick shipped as the fold ensemble and as a refit{
"; the **ce-guard** rule's pick (plain CE when within one paired standard error of the best, else the best; an arm added after the first complete run) as the fold ensemble" if guarded else ""}. "Best trial
(its record)": the search's best trial as it recorded its clean test accuracy (its fold models at
its best epoch, not retrained). Medians over seeds (min-max); the paired standard error is over the
{rows[0]['test_rows']} (digits) or {rows[-1]['test_rows']} (cars) test rows. "a=b" / "a<b": the one-se
pick a and the best trial b. Clean labels only score.

{text}

{chr(10).join(reading)}
"""



def guard_reading(rows: list[dict]) -> list[str]:
    """The issue's two targets read for the ce-guard rule shipped as the fold ensemble."""
    below = [r for r in rows if r["guard_ensemble_vs_ce"][0] < -r["guard_ensemble_vs_ce"][1]]
    gaps = [r["guard_ensemble"] - r["best_recorded"] for r in rows]
    median_gap, worst_gap = statistics.median(gaps), min(gaps)
    return [f"- **ce-guard + ensemble**: below plain CE by more than one paired standard error on {len(below)} of "
            f"{len(rows)} searches: {verdict(not below)}; − the best trial, median {median_gap:+.3f} ("
            f"{verdict(median_gap >= TARGET_MEDIAN_GAP - 1e-9)}), worst {worst_gap:+.3f} ({verdict(worst_gap >= TARGET_WORST_GAP - 1e-9)}); "
            f"median export {statistics.median(r['guard_ensemble'] for r in rows):.3f}; it picked another trial than "
            f"the best in {sum(r['guard_trial'] != r['best_trial'] for r in rows)} searches (plain CE each time)."]


def run(quick: bool = False) -> None:
    """Every task and seed (``quick``: the first task and seed, 4 trials, printed only), stored in
    ``RECORD`` and written to the section. Each finished search is kept in ``PARTIAL``; a rerun on the
    same package goes on after the last one kept."""
    global SHIP_TRIALS
    tasks, seeds = (SHIP_TASKS[:1], SHIP_SEEDS[:1]) if quick else (SHIP_TASKS, SHIP_SEEDS)
    if quick:
        SHIP_TRIALS = 4
    busy = busy_cores()
    start = time.perf_counter()
    code, tree = commit(), code_tree()
    rows = [] if quick else finished_rows(PARTIAL, tree)
    resumed = len(rows)
    done = {(r["task"], r["seed"]) for r in rows}
    with OtherLoad() as load:
        for task, noise in tasks:
            for seed in seeds:
                if (f"{task} {noise}", seed) in done:
                    continue
                rows.append(ship_one(task, noise, seed))
                if not quick and tree:
                    keep_rows(PARTIAL, tree, rows)
    order = {(f"{t} {n}", s): i for i, (t, n, s) in enumerate((t, n, s) for t, n in tasks for s in seeds)}
    rows.sort(key=lambda r: order[(r["task"], r["seed"])])
    resumed_note = (f" {resumed} of the {len(rows)} searches were kept from an interrupted run of the same package "
                    f"(git tree {tree[:10]} of automl_noisy); the minutes count this run only." if resumed else "")
    runs = {"machine": machine(code), "commit": code, "load": f"Other load when it started: {busy:.2f} cores busy. "
            + load.sentence() + resumed_note, "minutes": (time.perf_counter() - start) / 60, "rows": rows}
    publish(runs, render, RECORD, SECTION, PARTIAL, quick)


def report() -> None:
    """The section again from the stored runs."""
    section_from_record(SECTION, RECORD, render)

