"""The ``automl-noisy`` command. Imports are lazy: ``--help`` loads neither torch nor ray."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from automl_noisy.final_model import DEFAULT_FINAL_MODEL  # plain strings: --help stays light

PROG = "automl-noisy"
DEFAULT_STORAGE = "sqlite:///automl-noisy.db"  # the same as automl_noisy.credentials'
DEFAULT_ENCODERS = "automl-noisy-encoders"  # the same as automl_noisy.search.encoders'


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr with exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _data_flags(p: argparse.ArgumentParser, train: bool = False) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", default=None if train else "digits",
                   help="digits | synthetic | csv:PATH | parquet:PATH | npz:PATH | folder:PATH (one sub-folder of "
                        "images per class) | torchvision:NAME:ROOT (CIFAR10, CIFAR100, MNIST, FashionMNIST already "
                        "under ROOT; never downloaded)"
                        + (" (default: the pipeline's)" if train else " (default: digits)"))
    g.add_argument("--noise", default=None if train else "none",
                   help="none | symmetric:R | pair:R | asymmetric:R[:a>b,..] | instance:R, injected into "
                        "train and validation" + (" (default: the pipeline's, or none with --data)" if train else ""))
    g.add_argument("--label-column", default="label", help="label column of a CSV or parquet file (default: label)")
    g.add_argument("--features", metavar="COL,COL,...",
                   help="csv/parquet: the feature columns (default: every column but the label); non-numeric "
                        "columns are one-hot encoded")
    g.add_argument("--impute", choices=("median",),
                   help="csv/parquet: fill missing feature values (default: refuse them): median fills a numeric "
                        "column's with its median on the training split, a categorical column's become a category "
                        "of their own; recorded with the model, so predict fills new rows alike")
    g.add_argument("--labels", metavar="FILE[:KEY]",
                   help="noisy labels replacing the source's, one per sample (or per training image of a "
                        "torchvision root, as CIFAR-10N/100N): .pt (KEY picks from a dict, e.g. aggre_label), "
                        ".npy, .npz; the source's labels become the clean ones")
    g.add_argument("--trusted", metavar="FILE",
                   help="rows whose labels you verified: a .csv with columns row,label (row: 0-based, in the data's "
                        "own order; label: a class name or id) or a .npz with arrays row and label; their labels "
                        "replace the noisy ones; never test rows; part of the data's identity")
    g.add_argument("--trusted-fraction", type=float, metavar="F",
                   help="where clean labels are known (built-in data, injected noise, --labels): keep a stratified "
                        "share F of the training pool's labels clean and mark those rows trusted (for benchmarks)")
    g.add_argument("--image-size", type=int, metavar="N", help="folder: decode images at N x N pixels (default 32)")
    g.add_argument("--val-fraction", type=float, default=0.1, help="noisy validation share of train (0.1)")
    g.add_argument("--test-fraction", type=float, default=0.2, help="test share of the data (0.2)")
    g.add_argument("--samples", type=int, help="synthetic: number of samples")
    g.add_argument("--dims", type=int, help="synthetic: number of features")
    g.add_argument("--classes", type=int, help="synthetic: number of classes")


def _int_in(low: int, high: int | None, rule: str) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high`` (no upper bound when None); ``rule``
    says so in the error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{rule}, got {value}")
        return value
    return parse


_positive_int = _int_in(1, None, "must be at least 1")


def _duration(text: str) -> float:
    """An argparse type: a positive duration, ``90``, ``90s``, ``5m``, ``1.5h`` (seconds when no unit)."""
    import math

    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}; use e.g. 90s, 5m or 1.5h") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"a duration must be more than 0, got {text!r}")
    return seconds


def _threads(text: str) -> int:
    """An argparse type: 1 to this machine's CPU count."""
    import os

    cpus = os.cpu_count() or 1
    return _int_in(1, cpus, f"must be 1 to {cpus}, the CPUs of this machine")(text)
_port = _int_in(0, 65535, "a port is 0 to 65535")


STORAGE_ENV = "AUTOML_NOISY_STORAGE"  # the same as automl_noisy.credentials'


def _storage_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--storage", default=None,
                   help=f"study database, any URL Optuna accepts (default: ${STORAGE_ENV} when it is set, else "
                        f"{DEFAULT_STORAGE}); a URL with a password belongs in ${STORAGE_ENV} or --storage-file, "
                        "since a command line is visible to every user of the machine and in Ray's job table")
    g.add_argument("--storage-file", metavar="FILE",
                   help="read the storage URL from the first line of FILE (e.g. a Docker or Kubernetes secret)")
    p.add_argument("--study", default=None, help="study name (default: derived from data, noise and space)")


def _resolve_storage(args: argparse.Namespace) -> None:
    """Set ``args.storage`` from --storage, --storage-file or $AUTOML_NOISY_STORAGE, in that order."""
    if not hasattr(args, "storage"):
        return
    from automl_noisy.credentials import storage_url

    args.storage = storage_url(args.storage, args.storage_file)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Search combinations of noisy-label learning methods.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("search", help="search method combinations; resumes an existing study")
    _data_flags(s)
    s.add_argument("--space", default="default", help="search space: a name in search_spaces/ or a YAML path")
    s.add_argument("--trials", type=int, default=20, help="total trials in the study (default: 20)")
    _storage_flags(s)
    s.add_argument("--executor", choices=("ray", "local"), default="ray", help="where trials run (default: ray)")
    s.add_argument("--workers", type=_positive_int, help="trials at once (default: as many as CPUs, or GPUs / fraction)")
    s.add_argument("--ray-address", help="join this Ray cluster instead of starting a local one")
    s.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPU fraction per trial, e.g. 0.25")
    s.add_argument("--cv", type=int, metavar="K",
                   help="model selection: K >= 2 trains each trial once per fold of train + validation and scores "
                        "its out-of-fold predictions on every row; 1 scores one holdout validation split "
                        "(default: 3 folds when train + validation hold at most 10,000 rows, else holdout; a "
                        "resumed study keeps its own)")
    s.add_argument("--seed", type=int, default=0, help="seed of data split, noise, sampler and training")
    s.add_argument("--unordered", action="store_true",
                   help="show the sampler each trial as soon as it finishes: keeps every worker busy when trial "
                        "times vary a lot, but two runs of one command may then differ (default: trials are seen "
                        "in number order, so one command with one seed and one number of workers gives the same "
                        "search every time)")
    s.add_argument("--time-budget", "--timeout", type=_duration, metavar="DURATION",
                   help="stop launching trials once this much wall time has passed (90s, 5m, 1.5h; a number is "
                        "seconds); the running trials finish, queued ones wait for the next run, and running the "
                        "command again goes on with a new budget")
    s.add_argument("--no-progress", action="store_true",
                   help="show nothing while the search runs (by default: a live bar on a terminal, else one line "
                        "per finished trial on stderr: its value, standard error, state and methods)")
    s.add_argument("--portfolio", metavar="FILE",
                   help="after the plain-CE baseline, run these pipelines before the sampler draws (default: "
                        "search_spaces/portfolio.yaml, learned offline across many tasks; entries the space or the "
                        "data do not allow are skipped)")
    s.add_argument("--no-portfolio", action="store_true", help="no portfolio: the sampler draws from trial 1 on")
    s.add_argument("--warm-start", metavar="STUDY",
                   help="first run the best pipelines of an earlier study: its name in --storage, or "
                        "STORAGE_URL#NAME")
    s.add_argument("--warm-start-k", type=_positive_int, default=3, metavar="K",
                   help="how many of the earlier study's best distinct pipelines (default: 3)")
    s.add_argument("--encoders", metavar="DIR",
                   help="folder of pretrained encoders, each computed once and reused by every trial and resume "
                        "(default: beside an SQLite file, e.g. automl-noisy-encoders/ for automl-noisy.db; "
                        "./automl-noisy-encoders for a database server)")

    e = sub.add_parser("export", help="write the chosen trial's complete pipeline as YAML")
    e.add_argument("-o", "--output", default="best.yaml", help="output file (default: best.yaml)")
    e.add_argument("--rule", choices=("one-se", "best"), default="one-se",
                   help="which trial: one-se, the simplest (fewest methods) within one paired standard error of "
                        "the best, compared row by row on the same rows (default); best, the highest value")
    _storage_flags(e)

    t = sub.add_parser("train", help="train an exported pipeline; save weights, metrics, label issues")
    t.add_argument("pipeline", help="pipeline YAML written by 'automl-noisy export', or a preset name "
                                    "(see 'automl-noisy presets')")
    t.add_argument("--epochs", type=_positive_int, help="train this many epochs instead of the pipeline's (and of "
                                                        "its best_epoch)")
    t.add_argument("--cv", type=int, metavar="K", help="K >= 2: score every row out of fold with K fold models, "
                                                       "then ship them as one model (--ensemble) or a refit on "
                                                       "all rows (--refit); 1: holdout, one model "
                                                       "(default: the pipeline's)")
    ships = t.add_mutually_exclusive_group()
    for choice, what in (("ensemble", "the K fold models as one model that averages their class probabilities: "
                                      "what was validated, and no further training"),
                         ("refit", "one more model trained on all rows of the pool: more rows, but not "
                                   "validated itself")):
        ships.add_argument(f"--{choice}", dest="final_model", action="store_const", const=choice,
                           help=f"with K >= 2 folds, ship {what}" + (" (the default)" if choice == DEFAULT_FINAL_MODEL
                                                                     else ""))
    t.add_argument("-o", "--output", default="out", help="output folder (default: out)")
    _data_flags(t, train=True)
    t.add_argument("--threads", type=_threads, default=1,
                   help="CPU threads, at most this machine's CPUs (default 1, as in a search trial)")
    t.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    t.add_argument("--encoders", metavar="DIR",
                   help="folder of pretrained encoders for a pipeline that starts from one (default: the search's, "
                        "as the exported file names it, else ./automl-noisy-encoders); a missing encoder is "
                        "pretrained again with the pipeline's seed and stored there")

    q = sub.add_parser("predict", help="predict the class of new rows with a model folder 'train' wrote")
    q.add_argument("model", metavar="MODEL_DIR", help="the folder 'automl-noisy train -o' wrote")
    q.add_argument("--data", required=True,
                   help="the rows to predict: csv:PATH or parquet:PATH (the model's feature columns by name; a label "
                        "column is not needed and, like any other column, ignored), npz:PATH (array X), folder:PATH "
                        "(every image below it, class sub-folders or not), or digits | synthetic | "
                        "torchvision:NAME:ROOT")
    q.add_argument("-o", "--output", default="predictions.csv",
                   help="CSV with one row per input row: index (its row in the data, or n-th image), path (images), "
                        "predicted, then prob_CLASS for each class (default: predictions.csv)")
    q.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")

    c = sub.add_parser("components", help="list method families, their choices and hyperparameters")
    c.add_argument("--family", help="only this family")

    sub.add_parser("presets", help="list presets: published methods as combinations of parts")

    f = sub.add_parser("effects", help="which methods help or hurt: effects against the baseline, with intervals")
    _storage_flags(f)

    r = sub.add_parser("report", help="write a self-contained HTML report of a study's analysis")
    r.add_argument("-o", "--output", default="report.html", help="output file (default: report.html)")
    _storage_flags(r)

    d = sub.add_parser("dashboard", help="optuna-dashboard on the study database, with the analysis attached",
                       description="optuna-dashboard on the study database, with the analysis attached to the "
                                   "study (once it has a complete trial; without one, or without any study yet, it "
                                   "serves all the same). It answers only requests whose Host header names the "
                                   "address it serves (the port is not checked): localhost, 127.0.0.1 and ::1; "
                                   "also --host itself when that is another address; also this machine's host "
                                   "names and addresses with --host 0.0.0.0 or ::; and each --allow-host NAME. "
                                   "Other names get 403, a request without a Host header 400.")
    _storage_flags(d)
    d.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    d.add_argument("--port", type=_port, default=8080, help="port (default: 8080; 0 picks a free one)")
    d.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer requests sent to this host name or address (a proxy's, a DNS name of "
                        "this machine); repeat for more")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from automl_noisy.errors import UserError

    try:
        _resolve_storage(args)
        return int(COMMANDS[args.command](args) or 0)
    except UserError as e:
        if args.debug:
            raise
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not a user mistake: still one line unless --debug
        if args.debug:
            raise
        refused = _storage_write_refused(e)
        if refused:
            storage = getattr(args, "storage", None) or "the study storage"
            from automl_noisy.search.storage import mask_url

            print(f"{PROG}: error: cannot write {mask_url(storage)}: {refused}; make the database (and, for SQLite, "
                  "its file and folder) writable, or pass another --storage", file=sys.stderr)
            return 2
        from automl_noisy.errors import shorten

        print(f"{PROG}: internal error: {type(e).__name__}: {shorten(e)} (rerun with --debug for details)",
              file=sys.stderr)
        return 1


def _storage_write_refused(error: BaseException) -> str | None:
    """What the database said, when ``error`` is a storage that refused a write (see
    :func:`automl_noisy.search.storage.write_refused`); None for any other error."""
    if "sqlalchemy" not in sys.modules:  # no database was opened
        return None
    from automl_noisy.search.storage import write_refused

    return write_refused(error)


def _data_spec(args: argparse.Namespace, base: Any = None) -> Any:
    from automl_noisy.data import DataSpec

    columns = None if args.features is None else [c.strip() for c in args.features.split(",") if c.strip()]
    flags = {"samples": args.samples, "features": args.dims, "classes": args.classes, "columns": columns,
             "image_size": args.image_size, "labels": args.labels, "impute": args.impute,
             "trusted": args.trusted, "trusted_fraction": args.trusted_fraction}  # option name -> flag value
    options = {k: v for k, v in flags.items() if v is not None}
    folds = 1  # search: chosen by SearchOptions.cv
    if base is not None:  # train: start from the pipeline's data unless --data is given
        folds = args.cv if args.cv is not None else base.folds
        if args.data is None:
            noise = args.noise if args.noise is not None else base.noise
            trusted = ("trusted", "trusted_fraction")  # either flag replaces the pipeline's trusted rows
            kept = {k: v for k, v in base.options.items() if not (k in trusted and any(t in options for t in trusted))}
            return DataSpec(**{**base.to_dict(), "noise": noise, "folds": folds, "options": {**kept, **options}})
        noise = args.noise or "none"
    else:
        noise = args.noise
    return DataSpec(source=args.data, noise=noise, label_column=args.label_column,
                    val_fraction=args.val_fraction, test_fraction=args.test_fraction, folds=folds,
                    seed=getattr(args, "seed", 0), options=options)


def cmd_search(args: argparse.Namespace) -> int:
    from automl_noisy.search.controller import SearchOptions, search
    from automl_noisy.search.storage import mask_url

    options = SearchOptions(data=_data_spec(args), space=args.space, trials=args.trials, storage=args.storage,
                            study=args.study, executor=args.executor, workers=args.workers,
                            ray_address=args.ray_address, gpus_per_trial=args.gpus_per_trial, seed=args.seed,
                            progress=not args.no_progress, cv=args.cv,
                            reproducible=not args.unordered, encoders=args.encoders,
                            portfolio=None if args.no_portfolio else (args.portfolio or "default"),
                            warm_start=args.warm_start, warm_start_k=args.warm_start_k, time_budget=args.time_budget)
    study = search(options)
    from optuna.trial import TrialState

    from automl_noisy.search.shared import counts, stopped as left_by_a_stopped_search

    states = [t.state for t in study.trials]
    stopped = sum(left_by_a_stopped_search(t) for t in study.trials)
    print(f"study {study.study_name!r} in {mask_url(args.storage)}: {len(states)} trials "
          f"({states.count(TrialState.COMPLETE)} complete, {states.count(TrialState.PRUNED)} pruned, "
          f"{states.count(TrialState.FAIL)} failed" + (f", of which {stopped} interrupted by a stopped search"
                                                       if stopped else "") + ")")
    counted = sum(counts(t) for t in study.trials)
    if args.time_budget is not None and counted < args.trials:
        print(f"the time budget ended the search after {counted} of its {args.trials} trials; run the same command "
              "again to go on")
    profile = study.user_attrs.get("noise_profile")
    if profile:
        from automl_noisy.data.noise_profile import describe_profile

        print(f"labels, before any trial: {describe_profile(profile)}")
    if states.count(TrialState.COMPLETE):
        from automl_noisy.search.export import ranked_by, validation_name
        from automl_noisy.search.summary import baseline_warning, value_text

        best = study.best_trial
        test, noisy = best.user_attrs.get("test_accuracy"), best.user_attrs.get("noisy_val_accuracy")
        combo = ", ".join(f"{k}={v}" for k, v in best.user_attrs.get("combination", {}).items())
        print(f"best trial {best.number}: val_accuracy {value_text(best)} at epoch {best.user_attrs.get('best_epoch')}"
              + (f", noisy_val_accuracy {noisy:.4f}" if noisy is not None else "")
              + (f", clean test_accuracy {test:.4f}" if test is not None else "") + f" ({combo})")
        from automl_noisy.final_model import estimate_note

        folds = study.user_attrs["data"].get("folds", 1)
        print(f"model selection: {validation_name(folds, study.user_attrs.get('objective'))}; "
              f"val_accuracy is {estimate_note(folds)}")
        if "trusted_validating" in (study.user_attrs.get("objective") or {}):
            print(f"trials ranked by {ranked_by(study)}")
        from automl_noisy.search.selection import choose, versus_baseline

        choice = choose(study)
        print(f"export would take {choice.reason}")
        for trial in dict.fromkeys([choice.trial.number, best.number]):
            line = versus_baseline(study, study.trials[trial])
            if line:
                print(line)
        warning = baseline_warning(study)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from automl_noisy.search.export import export_best

    _, provenance = export_best(args.storage, args.study, args.output, args.rule)
    print(f"wrote {args.output}: trial {provenance['trial']} of study {provenance['study']!r}, "
          f"val_accuracy {provenance['val_accuracy']:.4f}, ranked by {provenance['ranked_by']}")
    print(provenance["selection"])
    if provenance.get("versus_plain_ce"):
        print(provenance["versus_plain_ce"])
    return 0


def _train_pipeline(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """The pipeline to train (a file, or a preset on the data the flags name), its data, and what
    the search that exported it left to reuse (``train_pipeline``'s ``encoders``, ``encoder_threads``
    and ``kept`` fold models)."""
    import os
    from dataclasses import replace

    from automl_noisy.pipeline import ComponentSpec, Pipeline, read_pipeline_file
    from automl_noisy.presets import PRESETS, apply_preset

    if args.pipeline in PRESETS and not os.path.exists(args.pipeline):
        from automl_noisy.components.models import default_model
        from automl_noisy.data import DataSpec, load_data
        from automl_noisy.data.folds import train_rows

        spec = _data_spec(args, base=DataSpec())
        data = load_data(spec)
        base = Pipeline(model=ComponentSpec(default_model(data.input_shape)), data=spec)
        pipeline = apply_preset(args.pipeline, replace(base, epochs=args.epochs or base.epochs), train_rows(data))
        return pipeline, data, {"encoders": args.encoders or DEFAULT_ENCODERS}
    pipeline, provenance = read_pipeline_file(args.pipeline)
    if args.epochs is not None:
        pipeline = replace(pipeline, epochs=args.epochs, best_epoch=None)
    encoders = args.encoders or provenance.get("encoders") or DEFAULT_ENCODERS
    threads = provenance.get("encoder_threads", 1)  # a missing encoder is pretrained again as the search did
    threads = threads if isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1 else 1
    kept = provenance.get("fold_models") if isinstance(provenance.get("fold_models"), str) else None
    return pipeline, _data_spec(args, base=pipeline.data), {"encoders": str(encoders), "encoder_threads": threads,
                                                             "kept": kept}


def cmd_train(args: argparse.Namespace) -> int:
    pipeline, data, reuse = _train_pipeline(args)
    from automl_noisy.train.final import train_pipeline
    from automl_noisy.train.step import Methods, build_scheme

    Methods.from_pipeline(pipeline), build_scheme(pipeline)  # bad components fail before data is loaded
    folds = getattr(data, "spec", data).folds
    if args.final_model is not None and folds < 2:
        from automl_noisy.errors import UserError

        flag = f"--{args.final_model}"
        raise UserError(f"{flag} chooses what ships from K >= 2 fold models, but this training has one holdout split "
                        f"(data.folds {folds}); pass --cv K to cross-validate, or drop {flag}")

    def report(m: Any, stage: str) -> None:
        test = f" test_accuracy {m.test_accuracy:.4f}" if m.test_accuracy is not None else ""
        val = f" val_accuracy {m.val_accuracy:.4f}" if m.val_accuracy == m.val_accuracy else ""  # none on the whole pool
        print(f"{stage} epoch {m.epoch:>3}/{pipeline.stop_epoch}: loss {m.train_loss:.4f}{val}{test}", file=sys.stderr)

    import os

    pipeline_file = {"the pipeline file": args.pipeline} if os.path.exists(args.pipeline) else {}
    metrics = train_pipeline(pipeline, args.output, data=data, threads=args.threads, device=args.device,
                             on_epoch=report, on_event=lambda line: print(line, file=sys.stderr),
                             inputs=pipeline_file, final_model=args.final_model, **reuse)
    test = metrics.get("test_accuracy")
    print(f"{metrics['model']}: val_accuracy {metrics['val_accuracy']:.4f} ({metrics['validation']})"
          + (f", test_accuracy {test:.4f}" if test is not None else "")
          + f"; wrote {args.output}/model.pt, label_issues.csv, metrics.json")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import csv
    import os

    from automl_noisy.data import DataSpec
    from automl_noisy.errors import UserError
    from automl_noisy.outputs import data_files, refuse_inputs, write_atomically
    from automl_noisy.trained import load

    out = args.output
    if os.path.isdir(out):
        raise UserError(f"output {out} is a folder; pass -o with a file name, e.g. -o {os.path.join(out, 'predictions.csv')}")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise UserError(f"cannot write {out}: folder {folder} does not exist")
    model_files = ({f"the model's file {entry.name}": entry.path for entry in os.scandir(args.model)}
                   if os.path.isdir(args.model) else {})
    refuse_inputs([out], {**model_files, **data_files(DataSpec(source=args.data))})
    model = load(args.model, device=args.device)
    inputs, probs = model.predict_source(args.data)
    for note in inputs.notes:
        print(f"note: {note}", file=sys.stderr)
    names = [str(c) for c in model.classes_]
    predicted = probs.argmax(axis=1)

    def write(f: Any) -> None:
        writer = csv.writer(f)
        writer.writerow(["index", *(["path"] if inputs.paths is not None else []), "predicted",
                         *(f"prob_{c}" for c in names)])
        for i, row in enumerate(probs):
            writer.writerow([int(inputs.index[i]), *([inputs.paths[i]] if inputs.paths is not None else []),
                             names[predicted[i]], *(f"{p:.9g}" for p in row)])

    write_atomically(out, write)
    counts = [int((predicted == k).sum()) for k in range(len(names))]
    shares = ", ".join(f"{c} {n}" for c, n in zip(names, counts, strict=True) if n)
    print(f"wrote {out}: {len(probs)} rows predicted ({shares})")
    return 0


def cmd_components(args: argparse.Namespace) -> int:
    from automl_noisy.components import FAMILIES, STAGES
    from automl_noisy.errors import choose_from

    if args.family and args.family not in {**FAMILIES, **STAGES}:
        raise choose_from("family", args.family, [*FAMILIES, *STAGES])
    listed = [(name, f.registry, f"slot: {f.slot}; " + ("several at once" if f.multi else "optional" if f.optional
                                                          else "one")) for name, f in FAMILIES.items()]
    listed += [(name, registry, "a stage before training; the space's 'pretraining' section")
               for name, registry in STAGES.items()]
    import textwrap

    from automl_noisy.docs import first_sentence

    for name, registry, kind in listed:
        if args.family and name != args.family:
            continue
        print(f"{name}  ({kind})")
        for choice in registry.names():
            cls = registry.get(choice)
            print(textwrap.fill(first_sentence(cls.__doc__), width=110, initial_indent=f"  {choice:<18} ",
                                subsequent_indent=" " * 21))
            for param, decl in cls.hyperparameters().items():
                print(f"      {name}.{choice}.{param}: {decl.describe()}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from automl_noisy.pipeline import ComponentSpec, Pipeline
    from automl_noisy.presets import PRESETS, apply_preset, describe

    for name in sorted(PRESETS):
        parts = apply_preset(name, Pipeline(model=ComponentSpec("mlp"))).combination()
        used = ", ".join(f"{k}={v}" for k, v in parts.items() if k != "model" and v not in ("none", "single"))
        print(f"{name}: {describe(name)}\n    {used}")
    return 0


def cmd_effects(args: argparse.Namespace) -> int:
    from automl_noisy.report.terminal import print_effects
    from automl_noisy.search.study_analysis import open_analysis

    study, analysis = open_analysis(args.storage, args.study)
    print_effects(study, analysis)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from automl_noisy.report.html import write_report

    study, analysis = write_report(args.storage, args.study, args.output)
    print(f"wrote {args.output}: study {study.study_name!r}, {analysis.n_trials} trials analysed")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    import signal

    from automl_noisy.report.dashboard import attach_when_ready, is_loopback, make_server
    from automl_noisy.search.storage import mask_url

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # until it serves, SIGTERM stops it like Ctrl+C
    server = None
    try:
        server = make_server(args.storage, args.host, args.port, args.allow_host)
        if not is_loopback(args.host):
            print(f"warning: the dashboard listens on {args.host}, beyond this machine: anyone who can reach "
                  f"port {server.server_port} can read every study in {mask_url(args.storage)} and change or "
                  "delete it (optuna-dashboard's API has no login); use --host 127.0.0.1 and an SSH tunnel, or "
                  "a proxy with authentication", file=sys.stderr, flush=True)
        attached = attach_when_ready(server.storage, args.storage, args.study)
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(args.host.strip("[]"), args.host)
        host = f"[{host.strip('[]')}]" if ":" in host else host
        print(f"optuna-dashboard on {mask_url(args.storage)}: http://{host}:{server.server_port}/dashboard "
              f"({attached}; Ctrl+C stops)", flush=True)
        print(f"it answers requests sent to: {', '.join(sorted(server.host_names))} (--allow-host NAME adds one)",
              flush=True)
        server.serve_until_signal()
    except KeyboardInterrupt:  # stopped before it began serving: a stop all the same
        pass
    finally:
        if server is not None:
            server.close()
    return 0


COMMANDS = {"search": cmd_search, "export": cmd_export, "train": cmd_train, "predict": cmd_predict,
            "components": cmd_components,
            "presets": cmd_presets, "effects": cmd_effects, "report": cmd_report, "dashboard": cmd_dashboard}

if __name__ == "__main__":
    sys.exit(main())
