"""Each noisy-label method alone on plain cross entropy: clean-test accuracy and label-issue detection.

Every registered method of every family but the model (losses, adjustments, mixings, penalties,
selections, any other family, and the schemes besides ``single``), with small-loss selection where
a method needs a selector, is added alone at its registry defaults to one fixed base pipeline and
trained on digits with pair and symmetric noise over several seeds. Each selector's final decision
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
from _common import busy_cores, detection, fmt, machine, median, table, top_count_flags, write_section  # noqa: E402

from automl_noisy.components import FAMILIES  # noqa: E402
from automl_noisy.data import DataSpec, load_data  # noqa: E402
from automl_noisy.errors import UserError  # noqa: E402
from automl_noisy.pipeline import ComponentSpec, OptimizerSpec, Pipeline  # noqa: E402
from automl_noisy.presets import apply_preset  # noqa: E402
from automl_noisy.train.step import build_scheme  # noqa: E402

SETTINGS = ("pair:0.4", "symmetric:0.4", "symmetric:0.8")
PLAIN, CLEANLAB = "plain CE", "cleanlab (reference)"
BASE = Pipeline(model=ComponentSpec("mlp", {"width": 256, "depth": 2}),
                optimizer=OptimizerSpec("sgd", lr=0.05, momentum=0.9, schedule="cosine"),
                epochs=30, batch_size=64)
#: Table order of the families; every other family of the registries except the model follows,
#: and the schemes come last.
FAMILY_ORDER = ("loss", "adjustment", "mixing", "penalty", "selection")
#: Presets or combinations to benchmark beside the single methods: name -> pipeline (e.g. one built
#: from BASE). The seed and data are set per run; ``--quick`` cuts every pipeline to QUICK_EPOCHS.
EXTRA_CONFIGS: dict[str, Pipeline] = {
    "preset:dividemix": apply_preset("dividemix", BASE),
    "semi:fixmatch +gmm": replace(BASE, selection=ComponentSpec("gmm"), semi=ComponentSpec("fixmatch")),
    "correction:self_learning +gmm": replace(BASE, selection=ComponentSpec("gmm"),
                                             correction=ComponentSpec("self_learning")),
}
QUICK = (PLAIN, "loss:gce", "mixing:mixup", "selection:small_loss", "scheme:coteaching +small_loss")
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
    """Name -> pipeline: plain CE, the base plus each method alone, then EXTRA_CONFIGS."""
    others = [f for f in FAMILIES if f not in (*FAMILY_ORDER, "model", "scheme")]
    in_base = {("loss", base.loss.name), ("scheme", base.scheme.name)}
    configs = {PLAIN: base}
    for family in (*FAMILY_ORDER, *others, "scheme"):
        for name in FAMILIES[family].registry.names():
            if (family, name) not in in_base:
                p = with_method(base, family, name)
                added = f" +{p.selection.name}" if p.selection is not None and family != "selection" else ""
                configs[f"{family}:{name}{added}"] = p
    return {**configs, **EXTRA_CONFIGS}


def train_run(name: str, pipeline: Pipeline, noise: str, seed: int) -> dict:
    """Train one configuration to the end: accuracy, time, suspicion AUROC and selector flags."""
    import torch
    import torch.nn.functional as F
    from sklearn.metrics import roc_auc_score

    from automl_noisy.train import Trainer

    data = load_data(DataSpec("digits", noise, seed=seed))
    row: dict = {"method": name, "noise": noise, "seed": seed}
    start = time.perf_counter()
    try:
        trainer = Trainer(replace(pipeline, seed=seed, data=data.spec), data, threads=1)
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
    return {"method": CLEANLAB, "noise": noise, "seed": seed, "seconds": time.perf_counter() - start,
            "flags": detection(flags, noisy), "auroc": roc_auc_score(noisy, suspicion),
            "top": detection(top_count_flags(suspicion, noisy), noisy)}


def accuracy_table(configs: dict[str, Pipeline], runs: dict) -> str:
    heads = ["method"] + [h for s in SETTINGS for h in (f"{s} acc (min-max)", "Δ vs CE", "AUROC")] + ["s/run"]
    rows = []
    for name in configs:
        cells = [name]
        for s in SETTINGS:
            ok = [r for r in runs[name, s] if "error" not in r]
            if len(ok) < len(runs[name, s]):
                cells += [f"FAILED {len(runs[name, s]) - len(ok)}/{len(runs[name, s])}", "", ""]
                continue
            acc = median(ok, "accuracy")
            accs = [r["accuracy"] for r in ok]
            delta = "—" if name == PLAIN else f"{acc - median(runs[PLAIN, s], 'accuracy'):+.3f}"
            cells += [f"{acc:.3f} ({min(accs):.3f}-{max(accs):.3f})", delta, fmt(median(ok, "auroc"))]
        every = [r for s in SETTINGS for r in runs[name, s] if "error" not in r]
        rows.append(cells + [fmt(median(every, "seconds"), 1)])
    return table(heads, rows)


def detection_table(configs: dict[str, Pipeline], runs: dict) -> str:
    heads = ["noise", "method", "flagged", "precision", "recall", "F1", "top-m F1", "AUROC"]
    selectors = [n for n, p in configs.items() if p.selection is not None]
    rows = []
    for s in SETTINGS:
        for name, key in [(CLEANLAB, "flags"), (PLAIN, "top")] + [(n, "flags") for n in selectors]:
            ok = [r for r in runs[name, s] if "error" not in r and r.get(key)]
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
    args = parser.parse_args()
    configs = method_configs()
    seeds = range(1 if args.quick else args.seeds)
    if args.quick:
        configs = {n: replace(p, epochs=QUICK_EPOCHS) for n, p in configs.items() if n in QUICK}
    info, busy = machine(), busy_cores()
    datasets = {(s, seed): load_data(DataSpec("digits", s, seed=seed)) for s in SETTINGS for seed in seeds}
    print(info, *(datasets[s, 0].summary() for s in SETTINGS), sep="\n")
    tasks = [(cleanlab_run, (s, seed)) for s in SETTINGS for seed in seeds]
    tasks += [(train_run, (n, p, s, seed)) for s in SETTINGS for n, p in configs.items() for seed in seeds]
    runs: dict = {(n, s): [] for n in [*configs, CLEANLAB] for s in SETTINGS}
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(fn, *a) for fn, a in tasks]
        for k, future in enumerate(as_completed(futures), 1):
            r = future.result()
            runs[r["method"], r["noise"]].append(r)
            score = f"acc {fmt(r.get('accuracy'))}" if r["method"] != CLEANLAB else f"F1 {fmt(r['flags']['f1'])}"
            what = r.get("error") or f"{score}, {r['seconds']:.1f} s"
            print(f"[{k}/{len(tasks)}] {r['noise']} {r['method']} seed {r['seed']}: {what}", flush=True)
    wall = time.perf_counter() - start
    failures = sorted({f"`{r['method']}` ({r['noise']}, seed {r['seed']}): {r['error']}"
                       for rs in runs.values() for r in rs if "error" in r})
    accuracy, issues = accuracy_table(configs, runs), detection_table(configs, runs)
    print(f"\nTable 1: clean-test accuracy, median over {len(seeds)} seed(s)\n{accuracy}")
    print(f"\nTable 2: label-issue detection, median over {len(seeds)} seed(s)\n{issues}")
    print(*(["\nFailures:"] + failures if failures else []), sep="\n")
    print(f"\n{len(tasks)} runs in {wall / 60:.1f} min with {args.jobs} jobs")
    if args.quick:
        return
    rates = [d.noise_rate for d in datasets.values()]
    d0 = datasets[SETTINGS[0], 0]
    load = f"Other load when the run started: {busy:.2f} cores busy"
    if busy > 0.2:
        load += " (the machine was not idle: the times are skewed; accuracies do not depend on it)"
    write_section("methods", f"""
## Each method alone on plain cross entropy (`benchmarks/methods.py`)

{info}. {load}. {len(tasks)} runs took {wall / 60:.1f} min with {args.jobs} worker processes (one torch thread each).

**Setup.** Data: scikit-learn digits (8x8 images), split {len(d0.y_train)} train / {len(d0.y_val)}
val / {len(d0.y_test)} test (stratified), noise {', '.join(f'`{s}`' for s in SETTINGS)} (pair: class c -> c+1
with probability R; symmetric: exactly R of the labels moved to another class) on train and validation only; realized
training noise {min(rates):.3f}-{max(rates):.3f}. Seeds {', '.join(map(str, seeds))}: seed s is
both `DataSpec(seed=s)` (split and noise) and the pipeline seed. Base pipeline ("plain CE"): mlp
(width 256, depth 2), cross entropy, SGD lr 0.05 momentum 0.9, cosine schedule, {BASE.epochs} epochs,
batch {BASE.batch_size}. Every other row is the base plus one method at its registry defaults
(`ComponentSpec(name)`, no parameters); a method that cannot train without a selector (the
two-network schemes, semi-supervised parts) gets `selection: small_loss`, also at its defaults.
The last rows ({', '.join(f'`{n}`' for n in EXTRA_CONFIGS)}) are combinations at their defaults:
the `dividemix` preset, and FixMatch and self-learning each with the `gmm` selector.
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
CE's median; AUROC of the run's suspicion scores (median).

{accuracy}

**Table 2.** Label-issue detection on the training split, median over {len(seeds)} seeds.

{issues}
{chr(10).join(["", "**Failures.**", ""] + [f"- {f}" for f in failures]) if failures else ""}
""")
    print("wrote the methods section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
