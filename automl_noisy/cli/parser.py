"""The argument parser of the ``automl-noisy`` command: ``build_parser`` declares every sub-command
and its flags (the shared data and storage flag groups come from :mod:`automl_noisy.cli.data_flags`
and :mod:`automl_noisy.cli.storage_flags`, the checked value types from
:mod:`automl_noisy.cli.arg_types`), and ``_Parser`` makes a usage mistake one line on stderr with
exit code 2. Building the parser imports neither torch nor ray."""

from __future__ import annotations

import argparse
from typing import NoReturn

from automl_noisy.cli.arg_types import _duration, _port, _positive_int, _threads
from automl_noisy.cli.data_flags import _data_flags
from automl_noisy.cli.storage_flags import _storage_flags
from automl_noisy.final_model import DEFAULT_FINAL_MODEL  # plain strings: --help stays light

PROG = "automl-noisy"


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr with exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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
    s.add_argument("--portfolio-order", choices=("fixed", "nearest"),
                   help="the portfolio's order: fixed (the file's list) or nearest (first the entries that did "
                        "best on the suite tasks nearest this data in rows, classes and estimated noise rate); "
                        "default: the order the portfolio file names for the data's kind, else fixed")
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
    e.add_argument("--rule", choices=("one-se", "ce-guard", "best"), default="one-se",
                   help="which trial: one-se, the simplest (fewest methods) within one paired standard error of "
                        "the best, compared row by row on the same rows (default); ce-guard, plain CE when it is "
                        "within one paired standard error of the best, else the best; best, the highest value")
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
