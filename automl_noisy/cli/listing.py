"""The sub-commands that list what the package offers, without running anything: ``components``
prints each method family with its choices and their hyperparameters, ``presets`` prints each
preset (a published method) as the combination of parts it sets."""

from __future__ import annotations

import argparse


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
