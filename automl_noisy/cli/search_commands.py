"""The sub-commands about a study: ``search`` runs (or resumes) one and prints its summary,
``export`` writes the chosen trial's pipeline as YAML, ``effects`` prints which methods help or
hurt, ``report`` writes the HTML report, and ``dashboard`` serves optuna-dashboard on the study
database. Optuna, Ray and the search code are imported inside the command functions, so ``--help``
does not load them."""

from __future__ import annotations

import argparse
import sys

from automl_noisy.cli.data_flags import _data_spec


def cmd_search(args: argparse.Namespace) -> int:
    from automl_noisy.search.controller import SearchOptions, search
    from automl_noisy.search.storage import mask_url

    options = SearchOptions(data=_data_spec(args), space=args.space, trials=args.trials, storage=args.storage,
                            study=args.study, executor=args.executor, workers=args.workers,
                            ray_address=args.ray_address, gpus_per_trial=args.gpus_per_trial, seed=args.seed,
                            progress=not args.no_progress, cv=args.cv,
                            reproducible=not args.unordered, encoders=args.encoders,
                            portfolio=None if args.no_portfolio else (args.portfolio or "default"),
                            portfolio_order=args.portfolio_order,
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
