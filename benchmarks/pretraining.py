"""Self-supervised pretraining under noisy labels: plain CE, GCE, GMM and the DivideMix preset, each
from random weights, from a frozen pretrained body (head only) and from a fine-tuned one.

On digits with pair:0.4, symmetric:0.4 and symmetric:0.8 noise, for the mlp and the cnn of
``benchmarks/methods.py`` (same base pipeline: 30 epochs, SGD lr 0.05), seeds 0..N-1. One encoder per
(model, seed) is pretrained first (SimCLR with the search's default settings, on the training
pool's inputs: the noise does not change them) and timed; every run then starts from it. Then, with
``--search``, the README's default search (20 trials) at symmetric:0.8 per seed, to see which start
the exported pipeline uses.

    .venv/bin/python benchmarks/pretraining.py [--seeds 3] [--jobs 2] [--search]

Prints the tables and rewrites the ``pretraining`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import busy_cores, fmt, machine, table, write_section  # noqa: E402
from methods import BASE, MODELS, SETTINGS, for_run  # noqa: E402

from automl_noisy.data import DataSpec, load_data  # noqa: E402
from automl_noisy.pipeline import ComponentSpec, Pipeline, StartSpec  # noqa: E402
from automl_noisy.presets import apply_preset  # noqa: E402
from automl_noisy.search.space import DEFAULT_PRETRAINING, load_space  # noqa: E402
from automl_noisy.train.pretrain import EncoderCache, EncoderRequest, make_encoder  # noqa: E402

METHODS = {
    "plain CE": lambda base: base,
    "loss:gce": lambda base: replace(base, loss=ComponentSpec("gce")),
    "selection:gmm": lambda base: replace(base, selection=ComponentSpec("gmm")),
    "preset:dividemix": lambda base: apply_preset("dividemix", base),
    "preset:dividemix, per-class gmm": lambda base: apply_preset("dividemix", base),
}
STARTS = {"random": StartSpec("random"), "frozen": StartSpec("frozen"), "finetune 0.1": StartSpec("finetune", 0.1),
          "finetune 1.0": StartSpec("finetune", 1.0)}
SEARCH_NOISE = "symmetric:0.8"


def method_of(model: str) -> ComponentSpec:
    """The pretraining method the default space gives this model."""
    return load_space("default").pretraining_for(model)


def pipeline_for(model: str, method: str, start: str) -> Pipeline:
    base = METHODS[method](replace(BASE, model=MODELS[model]))
    spec = STARTS[start]
    return replace(base, pretraining=method_of(model) if spec.pretrained else None, start=spec)


def pretrain_run(model: str, seed: int, cache: str) -> dict:
    data = load_data(DataSpec("digits", SETTINGS[0], seed=seed))
    request = EncoderRequest.of(replace(pipeline_for(model, "plain CE", "frozen"), seed=seed, data=data.spec), data)
    start = time.perf_counter()
    body = make_encoder(request, data)
    seconds = time.perf_counter() - start
    EncoderCache(cache).save(request.key, body)
    return {"model": model, "seed": seed, "seconds": seconds, "rows": len(data.y_train) + len(data.y_val)}


def train_run(model: str, method: str, start: str, noise: str, seed: int, cache: str) -> dict:
    from automl_noisy.train import Trainer

    data = load_data(DataSpec("digits", noise, seed=seed))
    row = {"model": model, "method": method, "start": start, "noise": noise, "seed": seed}
    began = time.perf_counter()
    try:
        pipeline = replace(for_run(method, pipeline_for(model, method, start), data), seed=seed, data=data.spec)
        encoder = None
        if pipeline.start.pretrained:
            encoder = EncoderCache(cache).load(EncoderRequest.of(pipeline, data).key)
            assert encoder is not None, "the encoder was not pretrained first"
        for last in Trainer(pipeline, data, threads=1, encoder=encoder).epochs():
            pass
        row.update(accuracy=last.test_accuracy, seconds=time.perf_counter() - began)
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        row["error"] = f"{type(exc).__name__}: {exc}"
    return row


def stats(rows: list[dict]) -> tuple[float, float, float] | None:
    accs = sorted(r["accuracy"] for r in rows if "error" not in r)
    if not accs or len(accs) < len(rows):
        return None
    import numpy as np

    return float(np.median(accs)), accs[0], accs[-1]


def accuracy_table(runs: dict, model: str) -> str:
    heads = ["method", "start"] + [h for s in SETTINGS for h in (f"{s} acc (min-max)", "Δ vs random")]
    rows = []
    for method in METHODS:
        for start in STARTS:
            cells = [method, start]
            for s in SETTINGS:
                mine, random = stats(runs[model, method, start, s]), stats(runs[model, method, "random", s])
                if mine is None:
                    cells += ["FAILED", ""]
                    continue
                delta = "—" if start == "random" or random is None else f"{mine[0] - random[0]:+.3f}"
                cells += [f"{mine[0]:.3f} ({mine[1]:.3f}-{mine[2]:.3f})", delta]
            rows.append(cells)
    return table(heads, rows)


def best_rows(runs: dict, noise: str) -> tuple[tuple, tuple]:
    """(best pretrained, best random) rows at ``noise`` over both models: (median, model, method, start)."""
    scored = [(s[0], m, meth, start) for (m, meth, start, n), rows in runs.items() if n == noise
              and (s := stats(rows)) is not None]
    pre = max(r for r in scored if r[3] != "random")
    rnd = max(r for r in scored if r[3] == "random")
    return pre, rnd


def search_run(seed: int, trials: int, folder: Path) -> dict:
    """The README's default search at SEARCH_NOISE, then what its export holds."""
    storage = f"sqlite:///{folder}/search-{seed}.db"
    began = time.perf_counter()
    cmd = [sys.executable, "-m", "automl_noisy.cli", "search", "--data", "digits", "--noise", SEARCH_NOISE,
           "--trials", str(trials), "--seed", str(seed), "--storage", storage, "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        return {"seed": seed, "error": done.stderr.strip().splitlines()[-1:]}
    import optuna

    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    complete = [t for t in study.trials if t.value is not None]
    best = study.best_trial
    by_start: dict[str, float] = {}
    for t in complete:
        mode = t.user_attrs.get("combination", {}).get("start", "random")
        by_start[mode] = max(by_start.get(mode, 0.0), t.user_attrs.get("test_accuracy") or 0.0)
    return {"seed": seed, "seconds": seconds, "start": best.user_attrs["combination"].get("start"),
            "combination": best.user_attrs["combination"], "test": best.user_attrs.get("test_accuracy"),
            "baseline": next(t.user_attrs.get("test_accuracy") for t in study.trials if t.user_attrs.get("baseline")),
            "best_test_by_start": by_start,
            "starts": {m: sum(1 for t in study.trials if t.params.get("start", "random") == m)
                       for m in ("random", "frozen", "finetune")}}


def _earlier_search_text() -> str:
    """The default-search paragraph of the section as it stands (a run without ``--search`` keeps it,
    marked as earlier)."""
    import re

    from _common import REPORT

    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else ""
    section = re.search(r"<!-- pretraining:start -->(.*?)<!-- pretraining:end -->", text, re.S)
    found = re.search(r"\n(\*\*Default search at .*)", section.group(1), re.S) if section else None
    if not found:
        return ""
    kept = found.group(1).strip()
    if not kept.startswith("(Kept from"):
        kept = ("(Kept from an earlier run of this script with `--search`; the tables above were run again "
                "without it.)\n\n" + kept)
    return "\n" + kept + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--search", action="store_true", help="also run the default search per seed")
    parser.add_argument("--trials", type=int, default=20, help="trials of each --search run")
    args = parser.parse_args()
    seeds = range(args.seeds)
    info, busy = machine(), busy_cores()
    cache = tempfile.mkdtemp(prefix="pretraining-bench-")
    began = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
        encoders = [f.result() for f in as_completed([pool.submit(pretrain_run, m, seed, cache)
                                                      for m in MODELS for seed in seeds])]
        for e in encoders:
            print(f"pretrained {e['model']} seed {e['seed']}: {e['seconds']:.1f} s", flush=True)
        tasks = [(m, meth, start, s, seed) for m in MODELS for s in SETTINGS for meth in METHODS for start in STARTS
                 for seed in seeds]
        runs: dict = {(m, meth, start, s): [] for m, meth, start, s, _ in tasks}
        futures = [pool.submit(train_run, *t, cache) for t in tasks]
        for k, future in enumerate(as_completed(futures), 1):
            r = future.result()
            runs[r["model"], r["method"], r["start"], r["noise"]].append(r)
            what = r.get("error") or f"acc {fmt(r['accuracy'])}, {r['seconds']:.1f} s"
            print(f"[{k}/{len(tasks)}] {r['noise']} {r['model']} {r['method']} {r['start']} seed {r['seed']}: {what}",
                  flush=True)
    wall = time.perf_counter() - began
    tables = {m: accuracy_table(runs, m) for m in MODELS}
    for m in MODELS:
        print(f"\n{m}\n{tables[m]}")
    pre, rnd = best_rows(runs, SEARCH_NOISE)
    verdict = (f"At {SEARCH_NOISE} the best pretrained row ({pre[1]}, {pre[2]}, {pre[3]}: {pre[0]:.3f}) "
               f"{'beats' if pre[0] > rnd[0] else 'does not beat'} the best random-start row ({rnd[1]}, {rnd[2]}: "
               f"{rnd[0]:.3f}) by {pre[0] - rnd[0]:+.3f} (target: +0.10).")
    print(verdict)
    times = {m: sorted(e["seconds"] for e in encoders if e["model"] == m) for m in MODELS}
    rows = encoders[0]["rows"]
    searches = []
    if args.search:
        with tempfile.TemporaryDirectory() as folder:
            for seed in seeds:
                searches.append(search_run(seed, args.trials, Path(folder)))
                print(json.dumps(searches[-1]), flush=True)
    search_text = "" if searches else _earlier_search_text()
    if searches:
        lines = []
        for s in searches:
            if "error" in s:
                lines.append([str(s["seed"]), "FAILED", " ".join(s["error"]), "", "", "", ""])
                continue
            by = s["best_test_by_start"]
            lines.append([str(s["seed"]), s["start"], fmt(s["test"]), fmt(s["baseline"]),
                          ", ".join(f"{k} {fmt(v)}" for k, v in sorted(by.items())),
                          ", ".join(f"{k} {v}" for k, v in s["starts"].items()), f"{s['seconds'] / 60:.1f}"])
        search_text = f"""
**Default search at `{SEARCH_NOISE}`.** `automl-noisy search --data digits --noise {SEARCH_NOISE} --trials
{args.trials} --seed S` (default space: 3-fold cross-validation, best epoch, the start searched), one run
per seed, alone on the machine after the runs above. "exported start": the start of the trial `export`
takes; its clean test accuracy at its best epoch (what `train` reproduces); plain CE: trial 0; "best
clean test by start": the best clean test accuracy any trial of that start reached in the study
(clean labels only score, they chose nothing).

{table(["seed", "exported start", "exported clean test", "plain CE (trial 0)", "best clean test by start",
        "trials by start", "minutes"], lines)}
"""
    def settings(kind: str) -> str:
        mode = DEFAULT_PRETRAINING[kind]
        return f"`{mode.name}` " + ", ".join(f"{k} {v}" for k, v in mode.params.items())
    write_section("pretraining", f"""
## Self-supervised pretraining (`benchmarks/pretraining.py`)

{info}. Other load when the run started: {busy:.2f} cores busy. {len(tasks)} training runs and
{len(encoders)} pretrainings took {wall / 60:.1f} min with {args.jobs} worker processes (one torch thread each).

**Setup.** The digits splits, noise and base pipelines of the methods section (mlp 256x2 and cnn 32
channels, cross entropy, SGD lr 0.05 momentum 0.9, cosine, {BASE.epochs} epochs, batch {BASE.batch_size}; last
epoch, nothing tuned), seeds {', '.join(map(str, seeds))}. Each row adds a method (GCE at its defaults, the
`gmm` selector at its defaults, the `dividemix` preset applied to the run's data, also with its GMM per
class as in the methods section) and a start:
*random* weights, a *frozen* pretrained body (only the linear head trains), or the body *fine-tuned* at
0.1 or 1.0 times the learning rate (1.0: the whole network trains from the encoder, as Contrast to Divide
does under DivideMix). Encoders: the default space's settings per data kind (AdamW), for the cnn
{settings("images")} with image views (rotation, scaling, shift, pixel noise, an erased patch), for the
mlp {settings("vectors")} with SCARF feature corruption (60 %); one encoder per (model, seed) on the {rows} training-pool rows' inputs (no labels, no
test rows), shared by the three noise settings (the noise does not change the inputs).
Pretraining time (one thread, two at once): mlp {', '.join(f'{t:.0f}' for t in times['mlp'])} s, cnn
{', '.join(f'{t:.0f}' for t in times['cnn'])} s. Clean-test accuracy, median (min-max) over
{len(seeds)} seeds; Δ = median minus the same method's random-start median.

Table P1: mlp

{tables['mlp']}

Table P2: cnn

{tables['cnn']}

{verdict}
{search_text}""")
    print("wrote the pretraining section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
