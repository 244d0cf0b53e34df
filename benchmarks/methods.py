"""Each noisy-label method alone on plain cross entropy: clean-test accuracy and label-issue detection.

Every registered method of every family but the model (losses, adjustments, mixings, penalties,
selections, any other family, and the schemes besides ``single``), with small-loss selection where
a method needs a selector, is added alone at its registry defaults to one fixed base pipeline, once
with an mlp and once with a small cnn, and trained on digits with pair and symmetric noise over
several seeds. Presets are applied per run, to the run's data (its declared noise and size), as
``train PRESET --data ...`` does. Each selector's final decision
is scored as label-issue flags against the known noise, beside cleanlab's ``find_label_issues`` on
out-of-sample logistic-regression probabilities.

    .venv/bin/python benchmarks/methods.py [--quick] [--seeds 3] [--jobs 2]

Needs cleanlab (``pip install -e '.[bench]'``). Prints the tables and rewrites the ``methods``
section of BENCHMARKS.md; ``--quick`` (1 seed, 5 epochs, a few methods) only prints.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread per worker process, numpy and sklearn included

import argparse  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from dataclasses import replace  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (OtherLoad, busy_cores, detection, fmt, machine, median, table, top_count_flags,  # noqa: E402
                     write_section)

from automl_noisy.components import FAMILIES  # noqa: E402
from automl_noisy.data import DataSpec, load_data  # noqa: E402
from automl_noisy.errors import UserError  # noqa: E402
from automl_noisy.pipeline import ComponentSpec, OptimizerSpec, Pipeline  # noqa: E402
from automl_noisy.presets import apply_preset  # noqa: E402
from automl_noisy.train.step import build_scheme  # noqa: E402

SETTINGS = ("pair:0.4", "symmetric:0.4", "symmetric:0.8")
PLAIN, CLEANLAB = "plain CE", "cleanlab (reference)"
#: the architectures of the two column sets
MODELS = {"mlp": ComponentSpec("mlp", {"width": 256, "depth": 2}), "cnn": ComponentSpec("cnn", {"channels": 32})}
BASE = Pipeline(model=MODELS["mlp"], optimizer=OptimizerSpec("sgd", lr=0.05, momentum=0.9, schedule="cosine"),
                epochs=30, batch_size=64)
#: Table order of the families; every other family of the registries except the model follows,
#: and the schemes come last.
FAMILY_ORDER = ("loss", "adjustment", "mixing", "penalty", "selection")


def extra_configs(base: Pipeline) -> dict[str, Pipeline]:
    """Presets, combinations and non-default options benchmarked beside the single methods: name ->
    pipeline. The seed and data are set per run (a ``preset:`` row is applied again to the run's
    data); ``--quick`` cuts every pipeline to QUICK_EPOCHS."""
    gmm = ComponentSpec("gmm", {"per_class": True})
    return {
        "preset:dividemix": apply_preset("dividemix", base),
        "preset:dividemix, per-class gmm": apply_preset("dividemix", base),
        "semi:fixmatch +gmm": replace(base, selection=ComponentSpec("gmm"), semi=ComponentSpec("fixmatch")),
        "correction:self_learning +gmm": replace(base, selection=ComponentSpec("gmm"),
                                                 correction=ComponentSpec("self_learning")),
        "selection:gmm, per class": replace(base, selection=gmm),
        "selection:small_loss, whole batch (as the paper)":
            replace(base, selection=ComponentSpec("small_loss", {"per_class": False})),
        "selection:small_loss, forget 0.2 (not estimated)":
            replace(base, selection=ComponentSpec("small_loss", {"estimate_rate": False})),
        "adjustment:forward, new network (retrain, as the paper)":
            replace(base, adjustment=ComponentSpec("forward", {"retrain": True})),
        "selection:aum, same network (no retrain)": replace(base, selection=ComponentSpec("aum", {"retrain": False})),
    }


def for_run(name: str, pipeline: Pipeline, data) -> Pipeline:
    """The pipeline a run trains: a preset row is applied to the run's data, its declared noise and
    size (a per-class row then switches its gmm to per class)."""
    if not name.startswith("preset:"):
        return pipeline
    preset = name.split(":", 1)[1].split(",")[0]
    out = apply_preset(preset, replace(pipeline, data=data.spec), len(data.y_train))
    if "per-class gmm" in name:
        out = replace(out, selection=replace(out.selection, params={**out.selection.params, "per_class": True}))
    return out
QUICK = (PLAIN, "loss:gce", "selection:small_loss", "scheme:coteaching +small_loss", "preset:dividemix")
QUICK_EPOCHS = 5


def with_method(base: Pipeline, family: str, name: str) -> Pipeline:
    """``base`` plus one method at its registry defaults; one that cannot train without a selector
    (a two-network scheme, a semi-supervised part) gets ``selection: small_loss``."""
    spec = ComponentSpec(name)
    pipeline = replace(base, **{family: (spec,) if FAMILIES[family].multi else spec})
    try:
        build_scheme(pipeline)
    except UserError:
        pipeline = replace(pipeline, selection=ComponentSpec("small_loss"))
    return pipeline


def method_configs(base: Pipeline = BASE) -> dict[str, Pipeline]:
    """Name -> pipeline: plain CE, the base plus each method alone, then extra_configs(base)."""
    others = [f for f in FAMILIES if f not in (*FAMILY_ORDER, "model", "scheme")]
    in_base = {("loss", base.loss.name), ("scheme", base.scheme.name)}
    configs = {PLAIN: base}
    for family in (*FAMILY_ORDER, *others, "scheme"):
        for name in FAMILIES[family].registry.names():
            if (family, name) not in in_base:
                p = with_method(base, family, name)
                added = f" +{p.selection.name}" if p.selection is not None and family != "selection" else ""
                configs[f"{family}:{name}{added}"] = p
    return {**configs, **extra_configs(base)}


def train_run(model: str, name: str, pipeline: Pipeline, noise: str, seed: int) -> dict:
    """Train one configuration to the end: accuracy, time, suspicion AUROC and selector flags."""
    import torch
    import torch.nn.functional as F
    from sklearn.metrics import roc_auc_score

    from automl_noisy.train import Trainer

    data = load_data(DataSpec("digits", noise, seed=seed))
    row: dict = {"model": model, "method": name, "noise": noise, "seed": seed}
    start = time.perf_counter()
    try:
        trainer = Trainer(replace(for_run(name, pipeline, data), seed=seed, data=data.spec), data, threads=1)
        for last in trainer.epochs():
            pass
        seconds = time.perf_counter() - start
        noisy, scores = data.noise_mask, trainer.suspicion_scores()
        finite = bool(np.isfinite(scores).all())
        row.update(seconds=seconds, accuracy=last.test_accuracy,
                   auroc=roc_auc_score(noisy, scores) if finite else float("nan"),
                   top=detection(top_count_flags(scores, noisy), noisy) if finite else {})
        selector = trainer.step.methods[0].selection
        if selector is not None:  # its decision on the whole training split, network 0's view
            logits, labels = trainer.outputs(trainer.x_train, 0), trainer.y_train
            per_sample = F.cross_entropy(logits, labels, reduction="none")
            idx = torch.arange(len(labels), device=trainer.device)
            w = selector.weights(per_sample, logits, labels, idx)
            row["flags"] = detection((w < 1).cpu().numpy(), noisy)
    except Exception as exc:  # a failing method is reported, not fatal
        row["error"] = f"{type(exc).__name__}: {exc}"
    return row


def cleanlab_run(noise: str, seed: int) -> dict:
    """cleanlab's find_label_issues on 5-fold out-of-sample logistic-regression probabilities."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    data = load_data(DataSpec("digits", noise, seed=seed))
    x, y, noisy = data.x_train.reshape(len(data.y_train), -1), data.y_train, data.noise_mask
    start = time.perf_counter()
    probs = cross_val_predict(LogisticRegression(max_iter=2000), x, y, cv=5, method="predict_proba")
    flags = find_label_issues(y, probs, n_jobs=1)
    suspicion = 1.0 - get_label_quality_scores(y, probs)
    return {"model": None, "method": CLEANLAB, "noise": noise, "seed": seed, "seconds": time.perf_counter() - start,
            "flags": detection(flags, noisy), "auroc": roc_auc_score(noisy, suspicion),
            "top": detection(top_count_flags(suspicion, noisy), noisy)}


def accuracy_table(configs: dict[str, Pipeline], runs: dict, model: str) -> str:
    heads = ["method"] + [h for s in SETTINGS for h in (f"{s} acc (min-max)", "Δ vs CE", "AUROC")] + ["s/run"]
    rows = []
    for name in configs:
        cells = [name]
        for s in SETTINGS:
            mine = runs[model, name, s]
            ok = [r for r in mine if "error" not in r]
            if len(ok) < len(mine) or not ok:
                cells += [f"FAILED {len(mine) - len(ok)}/{len(mine)}", "", ""]
                continue
            acc = median(ok, "accuracy")
            accs = [r["accuracy"] for r in ok]
            delta = "—" if name == PLAIN else f"{acc - median(runs[model, PLAIN, s], 'accuracy'):+.3f}"
            cells += [f"{acc:.3f} ({min(accs):.3f}-{max(accs):.3f})", delta, fmt(median(ok, "auroc"))]
        every = [r for s in SETTINGS for r in runs[model, name, s] if "error" not in r]
        rows.append(cells + [fmt(median(every, "seconds"), 1)])
    return table(heads, rows)


def detection_table(configs: dict[str, Pipeline], runs: dict, model: str) -> str:
    heads = ["noise", "method", "flagged", "precision", "recall", "F1", "top-m F1", "AUROC"]
    selectors = [n for n, p in configs.items() if p.selection is not None]
    rows = []
    for s in SETTINGS:
        for name, key in [(CLEANLAB, "flags"), (PLAIN, "top")] + [(n, "flags") for n in selectors]:
            ok = [r for r in runs[None if name == CLEANLAB else model, name, s] if "error" not in r and r.get(key)]
            label = f"{name}, largest loss at m" if name == PLAIN else name
            if not ok:
                rows.append([s, label, "FAILED", "", "", "", "", ""])
                continue
            flag = [r[key] for r in ok]
            tops = [r["top"] for r in ok if r["top"]]
            rows.append([s, label, f"{median(flag, 'flagged'):.0%}", fmt(median(flag, "precision")),
                         fmt(median(flag, "recall")), fmt(median(flag, "f1")), fmt(median(tops, "f1")),
                         fmt(median(ok, "auroc"))])
    return table(heads, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 5 epochs, a few methods; prints only")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (data and pipeline seed)")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one torch thread each)")
    parser.add_argument("--model", action="append", choices=sorted(MODELS), help="column sets (default: all)")
    args = parser.parse_args()
    models = args.model or list(MODELS)
    every = {m: method_configs(replace(BASE, model=MODELS[m])) for m in models}
    configs = every[models[0]]  # the same names for every model
    seeds = range(1 if args.quick else args.seeds)
    if args.quick:
        every = {m: {n: replace(p, epochs=QUICK_EPOCHS) for n, p in c.items() if n in QUICK} for m, c in every.items()}
        configs = every[models[0]]
    info, busy = machine(), busy_cores()
    datasets = {(s, seed): load_data(DataSpec("digits", s, seed=seed)) for s in SETTINGS for seed in seeds}
    print(info, *(datasets[s, 0].summary() for s in SETTINGS), sep="\n")
    tasks = [(cleanlab_run, (s, seed)) for s in SETTINGS for seed in seeds]
    tasks += [(train_run, (m, n, p, s, seed)) for m in models for s in SETTINGS for n, p in every[m].items()
              for seed in seeds]
    runs: dict = {(m, n, s): [] for m in models for n in configs for s in SETTINGS}
    runs.update({(None, CLEANLAB, s): [] for s in SETTINGS})
    start = time.perf_counter()
    with OtherLoad() as other, ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(fn, *a) for fn, a in tasks]
        for k, future in enumerate(as_completed(futures), 1):
            r = future.result()
            runs[r["model"], r["method"], r["noise"]].append(r)
            score = f"acc {fmt(r.get('accuracy'))}" if r["method"] != CLEANLAB else f"F1 {fmt(r['flags']['f1'])}"
            what = r.get("error") or f"{score}, {r['seconds']:.1f} s"
            print(f"[{k}/{len(tasks)}] {r['noise']} {r['model'] or ''} {r['method']} seed {r['seed']}: {what}", flush=True)
    wall = time.perf_counter() - start
    failures = sorted({f"`{r['method']}` ({r['model']}, {r['noise']}, seed {r['seed']}): {r['error']}"
                       for rs in runs.values() for r in rs if "error" in r})
    accuracy = {m: accuracy_table(configs, runs, m) for m in models}
    issues = {m: detection_table(configs, runs, m) for m in models}
    for m in models:
        print(f"\nTable 1 ({m}): clean-test accuracy, median over {len(seeds)} seed(s)\n{accuracy[m]}")
    for m in models:
        print(f"\nTable 2 ({m}): label-issue detection, median over {len(seeds)} seed(s)\n{issues[m]}")
    print(*(["\nFailures:"] + failures if failures else []), sep="\n")
    print(f"\n{len(tasks)} runs in {wall / 60:.1f} min with {args.jobs} jobs")
    if args.quick:
        return
    rates = [d.noise_rate for d in datasets.values()]
    d0 = datasets[SETTINGS[0], 0]
    load = f"Other load when the run started: {busy:.2f} cores busy. {other.sentence()}"
    if busy > 0.2 or other.skewed:
        load += (" The machine was not idle, so the s/run column of the runs at those times is skewed (accuracies do "
                 "not depend on it).")
    write_section("methods", f"""
## Each method alone on plain cross entropy (`benchmarks/methods.py`)

{info}. {load} {len(tasks)} runs took {wall / 60:.1f} min with {args.jobs} worker processes (one torch thread each).

**Setup.** Data: scikit-learn digits (8x8 images), split {len(d0.y_train)} train / {len(d0.y_val)}
val / {len(d0.y_test)} test (stratified), noise {', '.join(f'`{s}`' for s in SETTINGS)} (pair: class c -> c+1
with probability R; symmetric: exactly R of the labels moved to another class) on train and validation only; realized
training noise {min(rates):.3f}-{max(rates):.3f}. Seeds {', '.join(map(str, seeds))}: seed s is
both `DataSpec(seed=s)` (split and noise) and the pipeline seed. Base pipeline ("plain CE"): mlp
(width 256, depth 2) in Table 1a, cnn (32 channels) in Table 1b, cross entropy, SGD lr 0.05 momentum
0.9, cosine schedule, {BASE.epochs} epochs, batch {BASE.batch_size}. Every other row is the base plus
one method at its registry defaults (`ComponentSpec(name)`, no parameters); a method that cannot
train without a selector (the two-network schemes, semi-supervised parts) gets `selection:
small_loss`, also at its defaults. The last rows ({', '.join(f'`{n}`' for n in extra_configs(BASE))})
are presets, combinations and non-default options: the `dividemix` preset applied to each run's data
(its declared noise and size, as `train dividemix --data ...` does), also with a per-class GMM;
FixMatch and self-learning each with the `gmm` selector; then single methods with an option changed.
Accuracy: `EpochMetrics.test_accuracy` on the clean test split after the last epoch (no early
stopping, nothing tuned). Time: training wall time of one run, {args.jobs} runs at once.

**Detection.** *Flags* of a selector: after training, its `weights` on the whole training split
(per-sample cross entropy of network 0's eval-mode logits against the noisy labels, `idx = 0..n-1`,
no candidates); flagged = weight < 1, so a selector that down-weights rather than drops (e.g. a
weight of 0.5) flags those samples too. Precision, recall and F1 of the flags against the true noise
mask; "flagged" is the share of the training split flagged. *AUROC*: `Trainer.suspicion_scores()`
(the selector's scores, or the loss of the given label without one) against the noise mask.
*top-m F1*: F1 of the m most suspect samples, m = the true number of noisy labels (so precision =
recall = F1). References: **cleanlab** {version("cleanlab")} `cleanlab.filter.find_label_issues(labels,
pred_probs)` (defaults) with out-of-sample `pred_probs` from 5-fold (stratified, unshuffled)
`cross_val_predict(LogisticRegression(max_iter=2000), X_flat, y_noisy, method="predict_proba")` on
the same training split (its AUROC and top-m use `1 - cleanlab.rank.get_label_quality_scores`);
and the plain-CE run's largest-loss flags at m.

**Table 1.** Clean-test accuracy, median (min-max) over {len(seeds)} seeds; Δ = median minus plain
CE's median (same model); AUROC of the run's suspicion scores (median).

{chr(10).join(f"Table 1{'ab'[i]}: {m}{chr(10)}{chr(10)}{accuracy[m]}{chr(10)}" for i, m in enumerate(models))}
**Table 2.** Label-issue detection on the training split, median over {len(seeds)} seeds.

{chr(10).join(f"Table 2{'ab'[i]}: {m}{chr(10)}{chr(10)}{issues[m]}{chr(10)}" for i, m in enumerate(models))}
{chr(10).join(["", "**Failures.**", ""] + [f"- {f}" for f in failures]) if failures else ""}
""")
    print("wrote the methods section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
