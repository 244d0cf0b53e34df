"""The data flags of the ``automl-noisy`` command and what they mean: ``_data_flags`` declares the
"data" argument group (``--data``, ``--noise``, label files, trusted rows, split fractions, the
synthetic generator's sizes) that search and train share, and ``_data_spec`` turns the parsed flags
into the :class:`automl_noisy.data.DataSpec` a search runs on, or, for train, lays them over the
data an exported pipeline names. The data package is imported only when a spec is built."""

from __future__ import annotations

import argparse
from typing import Any


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
