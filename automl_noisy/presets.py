"""Presets: published methods as named combinations of parts, usable in search spaces
(``presets: [dividemix]``) and from the command line (``automl-noisy train dividemix``).

A preset fixes every method family (those it does not name are off); the model, the optimizer and
the budget stay as the space or the base pipeline has them, so a search compares the published
recipe with its parts and with other combinations on equal terms.

>>> from automl_noisy.pipeline import ComponentSpec, Pipeline
>>> p = apply_preset("dividemix", Pipeline(model=ComponentSpec("mlp"), epochs=30))
>>> p.combination()["scheme"], p.combination()["selection"], p.combination()["semi"]
('coteaching', 'gmm', 'mixmatch')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from automl_noisy.errors import choose_from
from automl_noisy.pipeline import FAMILIES, MULTI_FAMILIES, ComponentSpec, Pipeline


def _dividemix(epochs: int) -> dict:
    """DivideMix (Li, Socher & Hoi, ICLR 2020): two networks; each epoch after a warm-up, a GMM
    on each network's per-sample losses divides the data for the *other* network (co-divide);
    the clean side is trained with co-refined labels and the rest, unlabeled, with co-guessed
    ones, mixed by MixMatch. The warm-up trains with CE plus a confidence penalty, as the paper
    does for asymmetric noise. The warm-up is a sixth of the epochs (at least 1): the paper warms
    up 10 of 300 epochs on CIFAR-10, but budgets here are ten times shorter, and a GMM fitted
    before every class is learned sets whole classes aside."""
    warmup = max(1, epochs // 6)
    return {
        "scheme": ComponentSpec("coteaching"),
        "selection": ComponentSpec("gmm", {"tau": 0.5, "warmup_epochs": warmup}),
        "semi": ComponentSpec("mixmatch"),
        "penalty": (ComponentSpec("confidence_penalty", {"beta": 1.0, "warmup_only": True, "warmup_epochs": warmup}),),
    }


#: name -> function of the epoch budget giving the families the preset fixes
PRESETS: dict[str, Callable[[int], dict]] = {"dividemix": _dividemix}


def apply_preset(name: str, base: Pipeline) -> Pipeline:
    """``base`` with every method family replaced by the preset's (the model and budget kept)."""
    if name not in PRESETS:
        raise choose_from("preset", name, sorted(PRESETS))
    fixed = PRESETS[name](base.epochs)
    families = {f: fixed.get(f, () if f in MULTI_FAMILIES else None) for f in FAMILIES if f != "model"}
    families["scheme"] = fixed.get("scheme", ComponentSpec("single"))
    families["loss"] = fixed.get("loss", ComponentSpec("ce"))
    return replace(base, **families)


def describe(name: str) -> str:
    """The first sentence of the preset's docstring, on one line."""
    text = " ".join((PRESETS[name].__doc__ or "").split())
    return text.split(". ")[0].rstrip(".") + "."
