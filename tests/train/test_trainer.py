from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from automl_noisy.pipeline import ComponentSpec, OptimizerSpec, Pipeline
from automl_noisy.train import EpochMetrics, Trainer, TrainingDiverged, run_trial, train_pipeline

PACKAGE = Path(__file__).resolve().parents[2] / "automl_noisy"


def _pipeline(spec, **kw) -> Pipeline:
    return Pipeline(**{"model": ComponentSpec("mlp", {"width": 32, "depth": 1}), "epochs": 3, "batch_size": 32,
                       "data": spec, **kw})


def test_run_trial_yields_one_metrics_per_epoch(tiny_spec, tiny_data):
    metrics = list(run_trial(_pipeline(tiny_spec), tiny_data))
    assert [m.epoch for m in metrics] == [1, 2, 3]
    assert all(isinstance(m, EpochMetrics) and 0 <= m.val_accuracy <= 1 and m.seconds > 0 for m in metrics)
    assert all(m.test_accuracy is not None for m in metrics)  # synthetic labels are clean
    assert metrics[-1].train_loss < metrics[0].train_loss


def test_training_stops_at_the_best_epoch_with_the_full_schedule(tiny_spec, tiny_data):
    """Stopping at best_epoch rebuilds the model the trial had at that epoch: the schedule and the
    warm-ups still span all the epochs."""
    pipeline = _pipeline(tiny_spec, epochs=5)
    full = [m.val_accuracy for m in run_trial(pipeline, tiny_data)]
    stopped = [m.val_accuracy for m in run_trial(Pipeline(**{**pipeline.__dict__, "best_epoch": 2}), tiny_data)]
    assert stopped == full[:2]


def test_training_learns_despite_noise(tiny_spec, tiny_data):
    pipeline = _pipeline(tiny_spec, loss=ComponentSpec("gce"))
    last = list(run_trial(Pipeline(**{**pipeline.__dict__, "epochs": 15}), tiny_data))[-1]
    assert last.test_accuracy > 0.6  # 3 classes: chance is 1/3


def test_deterministic_under_a_seed(tiny_spec, tiny_data):
    pipeline = _pipeline(tiny_spec, mixing=ComponentSpec("mixup"))
    a = [(m.train_loss, m.val_accuracy) for m in run_trial(pipeline, tiny_data)]
    b = [(m.train_loss, m.val_accuracy) for m in run_trial(pipeline, tiny_data)]
    c = [(m.train_loss, m.val_accuracy) for m in run_trial(Pipeline(**{**pipeline.__dict__, "seed": 1}), tiny_data)]
    assert a == b and a != c


def test_nan_loss_raises(tiny_spec, tiny_data):
    # the largest learning rate a pipeline allows, heavy momentum, a deep wide net: overflows in epoch 2
    diverging = _pipeline(tiny_spec, model=ComponentSpec("mlp", {"width": 1024, "depth": 4}),
                          optimizer=OptimizerSpec("sgd", lr=10.0, momentum=0.99, schedule="constant"))
    with pytest.raises(TrainingDiverged, match="non-finite"):
        list(run_trial(diverging, tiny_data))


def test_cnn_on_images(image_data):
    pipeline = Pipeline(model=ComponentSpec("cnn", {"channels": 8}), epochs=3, batch_size=64, data=image_data.spec)
    *_, last = run_trial(pipeline, image_data)
    assert last.test_accuracy > 0.5  # 10 classes: chance is 0.1


@pytest.mark.parametrize("stage", [ComponentSpec("forward", {"warmup_epochs": 2}),
                                   ComponentSpec("aum", {"warmup_epochs": 2})])
def test_a_two_stage_method_trains_a_new_network_after_its_first_stage(stage, tiny_spec, tiny_data):
    """Forward correction (Patrini et al.) and AUM (Pleiss et al.) train a new network once the first
    stage has learned T or the flagged samples: fresh weights, optimizer and schedule, state kept."""
    family = "adjustment" if stage.name == "forward" else "selection"
    seen = []
    for retrain in (True, False):
        spec = ComponentSpec(stage.name, {**stage.params, "retrain": retrain})
        trainer = Trainer(Pipeline(model=ComponentSpec("mlp", {"width": 32, "depth": 1}), epochs=4, data=tiny_spec,
                                   **{family: spec}), tiny_data)
        weights, optimizers, lrs = [], [], []
        for _ in trainer.epochs():
            weights.append(trainer.networks[0].head.weight.detach().clone())
            optimizers.append(trainer.optimizer)
            lrs.append(trainer.optimizer.param_groups[0]["lr"])
        seen.append((weights, optimizers, lrs))
    (w, opt, lr), (w_same, opt_same, lr_same) = seen
    assert opt[2] is not opt[1] and opt[3] is opt[2] and all(o is opt_same[0] for o in opt_same)
    # the schedule starts again over the two remaining epochs: epoch 3 ends at the lr epoch 1 ended at
    assert lr[2] == pytest.approx(lr_same[1], rel=1e-6) and lr[3] == pytest.approx(lr_same[3], abs=1e-9)
    # the first stage is the same run either way; the second starts from other weights
    assert torch.equal(w[1], w_same[1]) and not torch.allclose(w[2], w_same[2], atol=1e-3)


def test_train_pipeline_writes_outputs(tmp_path, tiny_spec, tiny_data):
    metrics = train_pipeline(_pipeline(tiny_spec), tmp_path / "out", data=tiny_data)
    out = tmp_path / "out"
    state = torch.load(out / "model.pt", weights_only=True)
    assert any(k.startswith("head.") for k in state)
    rows = (out / "label_issues.csv").read_text().splitlines()
    assert rows[0] == "index,given_label,predicted_label,suspicion,label_is_wrong"
    assert len(rows) == 1 + len(tiny_data.y_train)
    scores = [float(r.split(",")[3]) for r in rows[1:]]
    assert scores == sorted(scores, reverse=True)
    assert {"val_accuracy", "test_accuracy", "label_issue_auroc"} <= set(metrics)
    assert metrics["label_issue_auroc"] > 0.5  # wrong labels tend to have a higher loss


def test_suspicion_scores_rank_flipped_labels(tiny_spec, tiny_data):
    trainer = Trainer(Pipeline(**{**_pipeline(tiny_spec).__dict__, "epochs": 10}), tiny_data)
    for _ in trainer.epochs():
        pass
    scores, mask = trainer.suspicion_scores(), tiny_data.noise_mask
    assert scores[mask].mean() > scores[~mask].mean()


def _imports(folder: Path) -> set[str]:
    return set().union(*(_imports_file(path) for path in folder.rglob("*.py")))


@pytest.mark.parametrize("folder", ["components", "train", "data"])
def test_components_train_and_data_import_neither_optuna_nor_ray(folder):
    assert not _imports(PACKAGE / folder) & {"optuna", "ray"}


def test_importing_train_loads_neither_optuna_nor_ray():
    code = ("import sys, automl_noisy.train, automl_noisy.components; "
            "print(sorted(m for m in ('optuna', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_only_executors_import_ray():
    for path in PACKAGE.rglob("*.py"):
        if "ray" in _imports(path.parent) and path.parent.name != "executors":
            assert "ray" not in _imports_file(path), path


def _imports_file(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_trainers_alive_at_once_draw_as_if_each_trained_alone(tiny_data):
    """Mixup and MixMatch draw from torch's global random stream; the fold jobs of a local search
    advance epoch by epoch in turn. Each trainer resumes its own stream, so interleaved fold jobs give
    exactly the records of the same folds trained one after another (what ``train`` rebuilds)."""
    from dataclasses import replace

    pipeline = Pipeline(model=ComponentSpec("mlp", {"width": 32, "depth": 1}), mixing=ComponentSpec("mixup"),
                        selection=ComponentSpec("gmm", {"warmup_epochs": 1}), semi=ComponentSpec("mixmatch"),
                        epochs=3, data=replace(tiny_data.spec, folds=3))
    data = replace(tiny_data, spec=pipeline.data)
    alone = [[m.val_correct for m in run_trial(pipeline, data, fold=i)] for i in range(3)]
    jobs = [run_trial(pipeline, data, fold=i) for i in range(3)]
    together = [[], [], []]
    for _ in range(3):
        for i, job in enumerate(jobs):
            together[i].append(next(job).val_correct)
    assert together == alone
