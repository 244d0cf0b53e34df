"""The sub-commands that train a model or use one: ``train`` fits an exported pipeline (or a preset
on the data the flags name) and writes a model folder; ``predict`` loads such a folder and writes
one CSV row of class probabilities per input row. Torch and the training code are imported inside
the command functions, so ``--help`` does not load them."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from automl_noisy.cli.data_flags import _data_spec

DEFAULT_ENCODERS = "automl-noisy-encoders"  # the same as automl_noisy.search.encoders'


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
