"""Does the search export a good pipeline on small noisy data? Three ways of selecting, at equal wall time.

On digits (1,797 images; 1,437 rows of train + validation) with pair:0.4, symmetric:0.4 and
symmetric:0.8 noise, per seed:

- **kfold-best**: the default, ``--cv 3``; a trial's value is the best epoch of its out-of-fold
  noisy curve; ``train`` keeps that epoch and ships what it validated: the three fold models as one
  model averaging their probabilities (the default final model; ``--refit`` would train one more on
  all 1,437 rows, see ``ship.py``).
- **holdout-best**: ``--cv 1`` (144 validation rows); best epoch; ``train`` keeps it.
- **holdout-last**: the same holdout search, but trials ranked by their last epoch's noisy
  accuracy and the pipeline trained to its last epoch: how selection worked before the
  cross-validation change. (Its trials were steered by best-epoch values; only the ranking and the
  retraining differ.)

The k-fold search runs ``--trials`` trials; the holdout search then runs, five trials at a time,
until it has used as much wall time. The pipeline each rule picks (the trial with the best value, or
the best last epoch: this benchmark compares ways of ranking, not the export rule of ``ship.py``) is
trained again with ``train_pipeline`` as ``train`` ships it and scored on the clean test split, next to
trial 0 (plain CE) trained the same way and to the oracle, the best clean test accuracy any trial of
that search reached (at its best epoch; for a k-fold trial the mean of its fold models'). Selection
loss = oracle - the selected trial's own accuracy on the same footing.
Spearman: between the trials' values and their clean test accuracy. The first seed's searches run
``--repeat`` times, to show how much one command's result varies. Clean labels only score: they
never choose.

    .venv/bin/python benchmarks/model_selection.py            # 3 noises x 3 seeds x 30 trials: about 4 hours on 2 cores

A run keeps each finished noise and seed in ``.model-selection.partial.json``; run again with the same
arguments, it goes on where it stopped, for an identical package (``_common.code_tree``), and the
section says how many were kept.
    .venv/bin/python benchmarks/model_selection.py --quick    # 1 noise, 1 seed, 4 trials: prints only
    .venv/bin/python benchmarks/model_selection.py --ship     # export rule and final model: benchmarks/ship.py
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from _common import (OtherLoad, busy_cores, code_tree, commit, finished_rows, fmt, keep_rows, machine, spread, table,
                     write_section)

NOISES = ("pair:0.4", "symmetric:0.4", "symmetric:0.8")
#: the noises and seeds finished so far, kept so that an interrupted run goes on where it stopped
PARTIAL = Path(__file__).resolve().parent / ".model-selection.partial.json"
MODES = ("holdout-last", "holdout-best", "kfold-best")


def run_search(folder: Path, name: str, noise: str, seed: int, cv: int, trials: int | None = None,
               seconds: float | None = None, workers: int | None = None):
    """A digits search; with ``seconds``, five trials at a time until that much wall time is used."""
    from automl_noisy.data import DataSpec
    from automl_noisy.search.controller import SearchOptions, search

    options = SearchOptions(DataSpec("digits", noise, seed=seed), space="default", storage=f"sqlite:///{folder}/{name}.db",
                            cv=cv, seed=seed, progress=False, workers=workers, trials=trials or 5)
    start = time.perf_counter()
    study = search(options)
    while seconds is not None and time.perf_counter() - start < seconds:
        study = search(replace(options, trials=len(study.trials) + 5))
    return study, time.perf_counter() - start


def pick(rule: str, trial):
    """The pipeline of ``trial`` as a rule exports it: to its best epoch, or to its last."""
    from automl_noisy.pipeline import Pipeline

    pipeline = Pipeline.from_dict(trial.user_attrs["pipeline"])
    return replace(pipeline, best_epoch=None if rule == "last" else trial.user_attrs["best_epoch"])


def clean_test_accuracy(pipeline) -> float:
    from automl_noisy.train import train_pipeline

    with tempfile.TemporaryDirectory() as out:
        return float(train_pipeline(pipeline, out)["test_accuracy"])


def evaluate(study, rule: str) -> dict:
    """Scores of one search under one selection rule. ``exported``: the picked pipeline trained again as
    ``train`` ships it (for k-fold, its fold models as one ensemble), what a user gets. ``oracle``: the
    best clean test accuracy any trial reached in the search (at its best epoch); ``loss``: the oracle
    minus the selected trial's accuracy on the same footing (its recorded accuracy at the best epoch;
    for the last-epoch rule, its last-epoch model, which the retraining reproduces)."""
    from optuna.trial import TrialState
    from scipy.stats import spearmanr

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    baseline = next(t for t in study.trials if t.user_attrs.get("baseline"))
    last = lambda t: t.intermediate_values[max(t.intermediate_values)]  # noqa: E731
    chosen = max(complete, key=last if rule == "last" else lambda t: t.value)
    exported = clean_test_accuracy(pick(rule, chosen))
    oracle = max(t.user_attrs["test_accuracy"] for t in complete)
    selected = exported if rule == "last" else chosen.user_attrs["test_accuracy"]
    values = [last(t) if rule == "last" else t.value for t in complete]
    rho = spearmanr(values, [t.user_attrs["test_accuracy"] for t in complete]).statistic if len(complete) > 2 else float("nan")
    return {"exported": exported, "plain_ce": clean_test_accuracy(pick(rule, baseline)), "oracle": oracle,
            "loss": oracle - selected, "spearman": float(rho), "trials": len(study.trials)}


def one_setting(noise: str, seed: int, trials: int, repeat: int, modes=MODES) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeat):
            kfold, seconds = run_search(Path(tmp), f"kfold{r}", noise, seed, cv=3, trials=trials)
            holdout = None
            if any(m.startswith("holdout") for m in modes):
                holdout, _ = run_search(Path(tmp), f"holdout{r}", noise, seed, cv=1, trials=trials, seconds=seconds)
            for mode, study, rule in (("kfold-best", kfold, "best"), ("holdout-best", holdout, "best"),
                                      ("holdout-last", holdout, "last")):
                if mode not in modes:
                    continue
                rows[mode].append({**evaluate(study, rule), "seconds": seconds, "run": r})
                print(f"{noise} seed {seed} run {r} {mode}: {rows[mode][-1]}", flush=True)
    return rows


def reading(results: dict, noises: list[str], modes: tuple[str, ...], seeds: int, test_rows: int) -> str:
    """What the table says, in words, from the results alone: per noise and rule, how the exported
    pipeline did against plain CE (in standard errors of plain CE's accuracy); k-fold against the
    holdout rules where both ran; and how far two runs of one command were apart."""
    parts = []
    for noise in noises:
        for mode in modes:
            first = [results[(noise, s)][mode][0] for s in range(seeds)]
            gaps = [r["exported"] - r["plain_ce"] for r in first]
            ses = [math.sqrt(r["plain_ce"] * (1 - r["plain_ce"]) / test_rows) or 1.0 for r in first]
            above = sum(g > 0 for g in gaps)
            text = (f"{noise}, {mode}: the export beat plain CE on {above} of {seeds} seeds (exported − plain CE "
                    f"{min(gaps):+.3f} to "
                    f"{max(gaps):+.3f}, {min(g / se for g, se in zip(gaps, ses)):+.1f} to "
                    f"{max(g / se for g, se in zip(gaps, ses)):+.1f} standard errors)")
            below = [f"seed {s}: {r['exported']:.3f} against {r['plain_ce']:.3f}" for s, (r, g, se)
                     in enumerate(zip(first, gaps, ses)) if g < -se]
            parts.append(text + (f"; below it by more than one standard error on {', '.join(below)}" if below else "")
                         + ".")
        if "kfold-best" in modes and "holdout-last" in modes:
            loss = {m: statistics.median(results[(noise, s)][m][0]["loss"] for s in range(seeds))
                    for m in ("holdout-last", "kfold-best")}
            rho = {m: statistics.median(results[(noise, s)][m][0]["spearman"] for s in range(seeds))
                   for m in ("holdout-last", "kfold-best")}
            parts.append(f"At {noise}, against holdout-last, kfold-best took the median selection loss from "
                         f"{loss['holdout-last']:.3f} to {loss['kfold-best']:.3f} and the rank correlation of trial "
                         f"values with clean accuracy from {rho['holdout-last']:.2f} to {rho['kfold-best']:.2f}.")
    again = [abs(run["exported"] - results[(noise, 0)][mode][0]["exported"])
             for noise in noises for mode in modes for run in results[(noise, 0)][mode][1:]]
    if again:
        parts.append("The same command run again gave the same export in every mode (gap 0.000)." if max(again) == 0
                     else f"The same command run again gave exports up to {max(again):.3f} apart.")
    return "**Reading.** " + " ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="symmetric:0.8, seed 0, 4 trials, once; prints only")
    parser.add_argument("--ship", action="store_true",
                        help="the export rule and the model that ships (benchmarks/ship.py: its tasks, seeds and "
                             "targets are fixed there); with --quick its first task and seed, 4 trials, printed only")
    parser.add_argument("--report", action="store_true", help="with --ship: the section from the stored runs")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=2, help="runs of the first seed's searches with that seed")
    parser.add_argument("--noise", action="append", help="noise spec(s) (default: the three above)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                        help="selection rules to run (kfold-best alone skips the holdout searches)")
    parser.add_argument("--section", default="model-selection",
                        help="the BENCHMARKS.md section to write (another name keeps an earlier run's table)")
    args = parser.parse_args()
    if args.ship:
        import ship

        ship.report() if args.report else ship.run(quick=args.quick)
        return
    noises = ["symmetric:0.8"] if args.quick else (args.noise or list(NOISES))
    seeds, trials, repeat = (1, 4, 1) if args.quick else (args.seeds, args.trials, args.repeat)
    busy = busy_cores()
    # the same command runs ``repeat`` times for the first seed (how much one command's result varies)
    modes = tuple(m for m in MODES if m in args.modes)
    plan = {"trials": trials, "seeds": seeds, "repeat": repeat, "modes": list(modes)}
    tree, code = "" if args.quick else code_tree(), commit()
    kept = {(r["noise"], r["seed"]): r["modes"] for r in finished_rows(PARTIAL, tree) if r["plan"] == plan}
    results, resumed = dict(kept), len(kept)
    with OtherLoad() as other:
        for noise in noises:
            for seed in range(seeds):
                if (noise, seed) in results:
                    continue
                results[(noise, seed)] = one_setting(noise, seed, trials, repeat if seed == 0 else 1, modes)
                if tree:
                    keep_rows(PARTIAL, tree, [{"noise": n, "seed": s, "plan": plan, "modes": m}
                                              for (n, s), m in results.items()])
    from automl_noisy.data import DataSpec, load_data

    test_rows = len(load_data(DataSpec("digits")).y_test)  # the clean test split every retrained model is scored on
    rows = []
    for noise in noises:
        for mode in modes:
            first = [results[(noise, s)][mode][0] for s in range(seeds)]  # run 0 of each seed
            again = [abs(run["exported"] - results[(noise, 0)][mode][0]["exported"])
                     for run in results[(noise, 0)][mode][1:]]
            rows.append([noise, mode, spread([r["exported"] for r in first]), spread([r["plain_ce"] for r in first]),
                         spread([r["oracle"] for r in first]), spread([r["loss"] for r in first]),
                         spread([r["spearman"] for r in first]), spread([float(r["trials"]) for r in first]),
                         fmt(max(again)) if again else "—",
                         " ".join(f"{r['exported'] - r['plain_ce']:+.3f}" for r in first),
                         " ".join(f"{math.sqrt(r['plain_ce'] * (1 - r['plain_ce']) / test_rows):.3f}" for r in first)])
    text = table(["noise", "selection", "exported", "plain CE (trial 0)", "oracle", "selection loss", "Spearman",
                  "trials", "same command: max gap", "exported − CE, by seed", "1 SE of CE's accuracy, by seed"], rows)
    words = reading(results, noises, modes, seeds, test_rows)
    print(text, words, sep="\n\n")
    if args.quick:
        return
    load = ""
    if busy > 0.2 or other.skewed:
        load = (" The k-fold searches ran their fixed number of trials in trial-number order, so their results do not "
                "depend on the load" + ("; the wall time each holdout search was given does."
                                       if any(m.startswith("holdout") for m in modes) else "."))
    title = "Model selection on small noisy data" + (f" ({', '.join(noises)})" if args.section != "model-selection" else "")
    body = f"""## {title} (`benchmarks/model_selection.py`)

{machine(code)}. Other load when the run started: {busy:.2f} cores busy. {other.sentence()}{load}{
f" {resumed} of the {len(noises) * seeds} noise-seeds were kept from an interrupted run of the same package (git tree "
f"{tree[:10]} of automl_noisy); the load describes this run only." if resumed else ""}

**Method.** Digits, default space, Ray with every core; per noise and seed a {trials}-trial 3-fold search{
", then a holdout search given the same wall time" if len(modes) > 1 else " (the holdout searches not run)"}; the
pipeline each rule picks (best value, or best last epoch: ways of ranking, not the export rule of the
ship section) trained again as `train` ships it (3-fold: the fold models as one ensemble; holdout: its
one model) and scored on the clean test split. Medians over {seeds} seeds (min-max); "same command" is the largest gap between the
exported accuracies of {repeat} runs of the first seed's searches. See the script's docstring for the three
selection rules. "1 SE": the binomial standard error of plain CE's clean test accuracy on the
{test_rows} test rows.

{text}

{words}
"""
    write_section(args.section, body)
    print(f"\nwrote the {args.section} section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
