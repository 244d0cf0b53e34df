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

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from automl_noisy.data.noise import NoiseSpec, parse_noise
from automl_noisy.errors import choose_from
from automl_noisy.hparams import Choice, HParam
from automl_noisy.pipeline import FAMILIES, MULTI_FAMILIES, ComponentSpec, Pipeline

#: how a preset settles what the data does not tell it: a search samples it, elsewhere its default
Decide = Callable[[str, HParam], Any]


def default_decision(name: str, decl: HParam) -> Any:
    return decl.default


@dataclass(frozen=True)
class PresetContext:
    """What a preset may scale its settings by: the budget, and what the user declared of the data.

    ``train_rows``: the rows one model trains on (None when not known); ``noise``: the noise the
    user declared (injected) or None when the labels' noise is unknown (``--noise none``).
    """

    epochs: int
    batch_size: int
    train_rows: int | None = None
    noise: NoiseSpec | None = None

    def steps_per_epoch(self) -> int | None:
        return None if self.train_rows is None else max(1, math.ceil(self.train_rows / self.batch_size))


#: DivideMix's warm-up on CIFAR-10: 10 epochs of 50,000 images in batches of 128
DIVIDEMIX_WARMUP_STEPS = 10 * math.ceil(50_000 / 128)


def dividemix_warmup(context: PresetContext) -> int:
    """Warm-up epochs: as many SGD steps as the paper's CIFAR-10 warm-up, but at most a third of the
    budget (a short budget cannot give thousands of steps; a GMM fitted before the network has
    learned the classes sets whole classes aside), and a third of it when the data's size is unknown."""
    cap = max(1, context.epochs // 3)
    steps = context.steps_per_epoch()
    return cap if steps is None else max(1, min(cap, math.ceil(DIVIDEMIX_WARMUP_STEPS / steps)))


def dividemix_lambda_u(noise: NoiseSpec) -> float:
    """The paper's lambda_u on CIFAR-10 for declared noise: 0 at 20 % symmetric and 40 % asymmetric
    noise, 25 at 50 % and 80 % symmetric, 50 at 90 % (the rate's nearest setting)."""
    if noise.kind in ("pair", "asymmetric") or noise.rate < 0.35:
        return 0.0
    return 25.0 if noise.rate < 0.85 else 50.0


def _dividemix(context: PresetContext, decide: Decide) -> dict:
    """DivideMix (Li, Socher & Hoi, ICLR 2020): two networks; each epoch after a warm-up, a GMM
    on each network's per-sample losses divides the data for the *other* network (co-divide);
    the clean side is trained with co-refined labels and the rest, unlabeled, with co-guessed
    ones, mixed by MixMatch. As the paper: the warm-up trains with CE (on weak views) for about
    as many SGD steps as the paper's CIFAR-10 warm-up, capped at a third of the budget; the
    confidence penalty during the warm-up only for asymmetric noise; lambda_u by the noise level
    (0 at 20 % symmetric and at asymmetric noise, 25 up to 80 %, 50 above); weight decay 5e-4.
    When the labels' noise is unknown, the search decides the penalty and lambda_u (elsewhere:
    no penalty, lambda_u = 25). Beyond the paper, a search also decides ``per_class``: one GMM per
    given label instead of one on all losses (``selection: gmm``'s option; elsewhere off, as the
    paper), which the project's benchmarks found stronger at 80 % symmetric noise."""
    warmup = dividemix_warmup(context)
    per_class = bool(decide("preset.dividemix.per_class", Choice(False, (False, True))))
    noise = context.noise
    if noise is None or noise.kind == "instance":  # the paper has no setting for it
        penalty = decide("preset.dividemix.confidence_penalty", Choice(False, (False, True)))
    else:
        penalty = noise.kind in ("pair", "asymmetric")
    if noise is None:
        lambda_u = float(decide("preset.dividemix.lambda_u", Choice(25.0, (0.0, 25.0, 50.0))))
    else:
        lambda_u = dividemix_lambda_u(noise)
    penalties = [ComponentSpec("weight_decay", {"coef": 5e-4})]
    if penalty:
        penalties.append(ComponentSpec("confidence_penalty", {"beta": 1.0, "warmup_only": True,
                                                              "warmup_epochs": warmup}))
    return {
        "scheme": ComponentSpec("coteaching"),
        "selection": ComponentSpec("gmm", {"tau": 0.5, "warmup_epochs": warmup, "per_class": per_class}),
        "semi": ComponentSpec("mixmatch", {"lambda_u": lambda_u}),
        "penalty": tuple(penalties),
    }


#: name -> function of the context (budget, data) and the decisions left open, giving the families
#: the preset fixes
PRESETS: dict[str, Callable[[PresetContext, Decide], dict]] = {"dividemix": _dividemix}


def apply_preset(name: str, base: Pipeline, train_rows: int | None = None,
                 decide: Decide = default_decision) -> Pipeline:
    """``base`` with every method family replaced by the preset's (the model and budget kept).

    ``train_rows``: how many rows one model trains on, when known (settings counted in SGD steps
    scale with it); the noise is the one ``base.data`` declares (``none``: unknown)."""
    if name not in PRESETS:
        raise choose_from("preset", name, sorted(PRESETS))
    declared = parse_noise(base.data.noise) if base.data is not None else None
    noise = declared if declared is not None and declared.kind != "none" else None
    fixed = PRESETS[name](PresetContext(base.epochs, base.batch_size, train_rows, noise), decide)
    families = {f: fixed.get(f, () if f in MULTI_FAMILIES else None) for f in FAMILIES if f != "model"}
    families["scheme"] = fixed.get("scheme", ComponentSpec("single"))
    families["loss"] = fixed.get("loss", ComponentSpec("ce"))
    return replace(base, **families)


def describe(name: str) -> str:
    """The first sentence of the preset's docstring, on one line."""
    text = " ".join((PRESETS[name].__doc__ or "").split())
    return text.split(". ")[0].rstrip(".") + "."
