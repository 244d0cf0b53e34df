"""Gold Loss Correction: C estimated on the trusted rows, the two stages, the refusal without trusted
rows or without a trusted training row of every class (a trial, a training up front), the trusted
mask through the trainer (folds included), and the search space offering it."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from automl_noisy.components.adjustment import GoldLossCorrection
from automl_noisy.components.base import TrainInfo
from automl_noisy.components.losses import one_hot
from automl_noisy.data import DataSpec, load_data
from automl_noisy.errors import UserError
from automl_noisy.pipeline import ComponentSpec, OptimizerSpec, Pipeline
from automl_noisy.train import Trainer

PAIR = DataSpec("synthetic", "pair:0.4", options={"samples": 600, "features": 8, "classes": 3, "trusted_fraction": 0.1})


def _info(trusted: np.ndarray | None, k: int = 3) -> TrainInfo:
    n = 10 if trusted is None else len(trusted)
    return TrainInfo(num_train=n, num_classes=k, input_shape=(4,), epochs=4, device=torch.device("cpu"),
                     trusted=trusted)


class _End:
    """A stand-in for the trainer's end-of-epoch view."""

    def __init__(self, epoch: int, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.epoch, self._logits, self.labels = epoch, logits, labels

    def logits(self) -> torch.Tensor:
        return self._logits

    def features(self) -> torch.Tensor:
        raise NotImplementedError


def test_estimate_is_the_mean_prediction_per_clean_class_and_the_identity_without_rows():
    probs = torch.tensor([[0.6, 0.4, 0.0], [0.8, 0.2, 0.0], [0.1, 0.7, 0.2], [0.3, 0.3, 0.4]])
    labels = torch.tensor([0, 0, 1, 3])  # label 3 (an extra output's class) is not a class: ignored
    c = GoldLossCorrection().estimate(probs, labels)
    assert torch.allclose(c, torch.tensor([[0.7, 0.3, 0.0], [0.1, 0.7, 0.2], [0.0, 0.0, 1.0]]))
    assert torch.allclose(c.sum(dim=1), torch.ones(3))


def test_first_stage_trains_on_the_untrusted_rows_and_second_stage_corrects_only_them():
    trusted = np.array([True, False, False, True, False, False])
    glc = GoldLossCorrection(warmup_epochs=2, retrain=True)
    glc.setup(_info(trusted))
    assert glc.restart_after() == 2 and glc.corruption is None  # the paper's new network
    assert GoldLossCorrection(warmup_epochs=2).restart_after() is None  # by default the same network goes on
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 3, generator=g, requires_grad=True)
    targets = one_hot(torch.tensor([0, 1, 2, 1]), 3)
    idx = torch.tensor([0, 1, 3, 4])  # rows 0 and 3 are trusted
    z, t = glc(logits, targets, idx)
    z.log_softmax(dim=1).sum().backward()
    assert t is targets and torch.equal(z, logits)
    assert (logits.grad[[0, 2]] == 0).all() and (logits.grad[[1, 3]] != 0).any()  # the trusted rows give none

    c_true = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.6, 0.4], [0.2, 0.0, 0.8]])
    rows = torch.tensor([0, 3])
    end_logits = torch.zeros(6, 3)
    end_logits[rows] = c_true[:2].log()  # trusted row 0 is class 0, row 3 class 1; class 2 has none
    glc.on_epoch_end(_End(1, end_logits, torch.tensor([0, 0, 0, 1, 0, 0])))
    assert glc.corruption is None  # estimated at the end of the first stage only
    glc.on_epoch_end(_End(2, end_logits, torch.tensor([0, 0, 0, 1, 0, 0])))
    c = glc.corruption
    assert torch.allclose(c, torch.stack([c_true[0], c_true[1], torch.tensor([0.0, 0.0, 1.0])]), atol=1e-6)
    z, _ = glc(logits, targets, idx)
    p = logits.softmax(dim=1)
    assert torch.allclose(z[[0, 2]], logits[[0, 2]])  # trusted: plain logits, plain CE
    assert torch.allclose(z[[1, 3]].softmax(dim=1), p[[1, 3]] @ c, atol=1e-6)  # untrusted: p @ C


def test_without_trusted_rows_setup_is_a_one_line_user_error():
    for trusted in (None, np.zeros(8, dtype=bool)):
        with pytest.raises(UserError, match="--trusted FILE or --trusted-fraction") as caught:
            GoldLossCorrection().setup(_info(trusted))
        assert "\n" not in str(caught.value)
    spec = DataSpec("synthetic", "pair:0.4", options={"samples": 120, "features": 4, "classes": 3})
    pipeline = Pipeline(model=ComponentSpec("mlp", {"width": 32, "depth": 1}), adjustment=ComponentSpec("glc"),
                        epochs=2, data=spec)
    with pytest.raises(UserError, match="glc .* needs trusted rows"):
        Trainer(pipeline, load_data(spec), device="cpu")


def test_end_to_end_the_estimated_corruption_follows_the_pair_noise():
    """Trained on pair noise (c -> c + 1), C puts its off-diagonal mass on c + 1; the networks
    start over after the first stage and train through C."""
    data = load_data(PAIR)
    pipeline = Pipeline(model=ComponentSpec("mlp", {"width": 32, "depth": 1}),
                        adjustment=ComponentSpec("glc", {"warmup_epochs": 5}), epochs=7, batch_size=32,
                        optimizer=OptimizerSpec("adam", 0.01, schedule="constant"), data=PAIR)
    trainer = Trainer(pipeline, data, device="cpu")
    glc = trainer.step.methods[0].adjustment
    assert np.array_equal(glc._trusted.numpy(), data.trusted_train)
    metrics = list(trainer.epochs())
    assert len(metrics) == 7 and all(np.isfinite(m.train_loss) for m in metrics)
    c = glc.corruption
    assert c is not None and torch.allclose(c.sum(dim=1), torch.ones(3), atol=1e-5) and (c >= 0).all()
    pair = [float(c[i, (i + 1) % 3]) for i in range(3)]
    other = [float(c[i, (i + 2) % 3]) for i in range(3)]
    assert min(pair) > 0.2 and min(pair) > 2 * max(other)
    assert (c.argmax(dim=1) == torch.arange(3)).all()


def test_the_trusted_mask_follows_the_rows_of_a_fold():
    from automl_noisy.data.folds import fold_split

    data = load_data(DataSpec("synthetic", "pair:0.4", folds=3,
                              options={"samples": 300, "features": 4, "classes": 3, "trusted_fraction": 0.2}))
    fold = fold_split(data, 1)
    pipeline = Pipeline(model=ComponentSpec("mlp", {"width": 32, "depth": 1}), adjustment=ComponentSpec("glc"),
                        epochs=1, data=fold.spec)
    glc = Trainer(pipeline, fold, device="cpu").step.methods[0].adjustment
    mask = glc._trusted.numpy()
    assert np.array_equal(mask, fold.trusted_train) and mask.any()
    assert (fold.y_train[mask] == fold.y_train_clean[mask]).all()  # the rows it marks carry verified labels


def test_the_default_space_offers_glc_only_with_trusted_rows():
    from automl_noisy.search.space import load_space, parse_space

    space = load_space("default")
    assert "glc" in space.families["adjustment"]
    assert "glc" not in space.for_shape((8,)).families["adjustment"]
    assert "forward" in space.for_shape((8,)).families["adjustment"]
    assert "glc" in space.for_shape((8,), trusted=True).families["adjustment"]
    # without trusted rows the space is the one it was before the methods that need them (same hash: studies resume)
    without = {**space.to_dict()["families"], **{family: {
        c: p for c, p in space.to_dict()["families"][family].items() if c not in ("glc", "meta_weight", "trusted")}
        for family in ("adjustment", "selection")}}
    assert space.for_shape((8,)).to_dict()["families"] == {**without, "model": {"mlp": without["model"]["mlp"]}}
    only = parse_space({"families": {"model": ["mlp"], "adjustment": ["glc"]}}, name="only")
    with pytest.raises(UserError, match="only methods that need trusted rows"):
        only.for_shape((8,))


def _trusted_spec(classes: tuple[int, ...] = (0, 1), per_class: int = 10, folds: int = 1) -> DataSpec:
    """Pair-noised synthetic data (3 classes) whose trusted rows, held in memory, are the first
    ``per_class`` training rows of each of ``classes`` (by default none of class '2')."""
    from automl_noisy.data.sources.memory import hold_trusted

    options = {"samples": 300, "features": 4, "classes": 3}
    plain = load_data(DataSpec("synthetic", "pair:0.4", options=options))
    rows = np.concatenate([plain.train_index[plain.y_train_clean == c][:per_class] for c in classes])
    labels = np.repeat(classes, per_class)
    return DataSpec("synthetic", "pair:0.4", folds=folds, options={**options, "trusted": hold_trusted(rows, labels)})


def test_setup_refuses_a_training_split_whose_trusted_rows_miss_a_class():
    trusted = np.array([True, False, True, False, True, False])
    labels = np.array([0, 2, 1, 2, 0, 1])  # the trusted rows are of classes 0 and 1: no row of class 2
    with pytest.raises(UserError, match=r"needs a trusted training row of every class.*none of class 'c'") as caught:
        GoldLossCorrection().setup(TrainInfo(num_train=6, num_classes=3, input_shape=(4,), epochs=4,
                                             device=torch.device("cpu"), trusted=trusted, labels=labels,
                                             class_names=("a", "b", "c")))
    assert "\n" not in str(caught.value)
    covered = np.array([True, True, True, False, False, False])  # classes 0, 2 and 1
    GoldLossCorrection().setup(TrainInfo(num_train=6, num_classes=3, input_shape=(4,), epochs=4,
                                         device=torch.device("cpu"), trusted=covered, labels=labels))
    pipeline = Pipeline(model=ComponentSpec("mlp", {"width": 32, "depth": 1}), adjustment=ComponentSpec("glc"),
                        epochs=1, data=_trusted_spec())
    with pytest.raises(UserError, match="none of class '2'"):  # the trainer gives the labels and class names
        Trainer(pipeline, load_data(pipeline.data), device="cpu")


def test_trusted_gap_names_the_classes_a_training_split_has_no_trusted_row_of():
    from automl_noisy.data.folds import fold_split, trusted_gap

    assert trusted_gap(load_data(PAIR)) is None  # --trusted-fraction draws every class, here into training too
    assert trusted_gap(load_data(_trusted_spec())) == "the training split has no trusted row of class '2'"
    assert trusted_gap(load_data(_trusted_spec(folds=3))) == ("the training and validation rows have no trusted "
                                                              "row of class '2'")
    one_each = load_data(_trusted_spec((0, 1, 2), per_class=1, folds=3))  # each class's row is held out by one fold
    splits = [fold_split(one_each, i) for i in range(3)]
    short = {i + 1: [f"'{c}'" for c in range(3) if not (f.y_train[f.trusted_train] == c).any()]
             for i, f in enumerate(splits)}
    short = {fold: missing for fold, missing in short.items() if missing}
    each = "; ".join(f"fold {fold}: class{'es' if len(m) > 1 else ''} {', '.join(m)}" for fold, m in short.items())
    assert len(short) > 1 and trusted_gap(one_each) == (f"the training rows of {len(short)} of the 3 folds have no "
                                                        f"trusted row of some class ({each})")
    untrusted = load_data(DataSpec("synthetic", "pair:0.4", options={"samples": 120, "features": 4, "classes": 3}))
    assert trusted_gap(untrusted) == "the training split has no trusted row of classes '0', '1', '2'"
    # the fold whose training rows lack a trusted row of class '0' fails its trial in one line
    fold = next(i for i, f in enumerate(splits) if not (f.y_train[f.trusted_train] == 0).any())
    pipeline = Pipeline(model=ComponentSpec("mlp", {"width": 32, "depth": 1}), adjustment=ComponentSpec("glc"),
                        epochs=1, data=one_each.spec)
    from automl_noisy.search.executors.local import LocalExecutor

    executor = LocalExecutor(one_each)
    executor.submit(0, pipeline, fold=fold)
    events = [executor.next_event(), executor.next_event()]
    assert events[0].placement is not None and events[1].error is not None
    assert events[1].error.startswith("UserError: adjustment glc")
    assert re.search("this training split has none of class(es)? '0'", events[1].error)
    assert executor.running() == 0


def test_train_refuses_glc_up_front_when_a_training_split_misses_a_class(tmp_path):
    from automl_noisy.train.final import train_pipeline

    spec = _trusted_spec()
    pipeline = Pipeline(model=ComponentSpec("mlp", {"width": 32, "depth": 1}), adjustment=ComponentSpec("glc"),
                        epochs=1, data=spec)
    with pytest.raises(UserError, match=r"^adjustment glc needs a trusted training row of every class, but the "
                                        r"training split has no trusted row of class '2'") as caught:
        train_pipeline(pipeline, tmp_path / "model")
    assert "\n" not in str(caught.value) and not (tmp_path / "model" / "model.pt").exists()
    with pytest.raises(UserError, match=r"^adjustment glc needs trusted rows in the training data"):
        train_pipeline(replace(pipeline, data=DataSpec("synthetic", "pair:0.4", options={"samples": 120})),
                       tmp_path / "other")
