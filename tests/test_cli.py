"""The command line: the README's flow end to end, and one clear line + exit 2 for each mistake."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from PIL import Image

from automl_noisy.cli import main

TINY_FLAGS = ["--data", "synthetic", "--samples", "300", "--dims", "8", "--classes", "3"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_imports_neither_torch_nor_ray():
    code = ("import sys\nfrom automl_noisy.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "for sub in ('search', 'train', 'export', 'predict', 'components'):\n"
            "    try:\n        main([sub, '--help'])\n    except SystemExit:\n        pass\n"
            "print('LOADED', sorted(m for m in ('torch', 'ray', 'optuna') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("LOADED []")


def test_search_export_train_reproduces_the_trial(tmp_path, capsys, monkeypatch):
    """The README flow on digits: the exported pipeline re-trains to the trial's validation accuracy."""
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "search", "--data", "digits", "--noise", "symmetric:0.4", "--trials", "3",
                       "--space", "quick", "--executor", "local", "--no-progress")
    assert code == 0 and "best trial" in out
    assert Path("automl-noisy.db").is_file()
    Path("folder").mkdir()
    code, _, err = run(capsys, "export", "-o", "folder")  # a mistake, not an internal error
    assert code == 2 and err.strip().splitlines() == ["automl-noisy: error: cannot write folder: it is a folder; "
                                                      "pass -o with a file name, e.g. folder/best.yaml"]
    code, out, _ = run(capsys, "export", "-o", "best.yaml")
    assert code == 0 and "wrote best.yaml" in out
    doc = yaml.safe_load(Path("best.yaml").read_text())
    prov = doc["provenance"]
    assert {"study", "trial", "val_accuracy", "versions", "data_fingerprint"} <= set(prov)
    assert doc["pipeline"]["data"]["noise"] == "symmetric:0.4"
    best_epoch = doc["pipeline"]["best_epoch"]  # digits is small: 3-fold cross-validation, best epoch kept
    assert doc["pipeline"]["data"]["folds"] == 3 and 1 <= best_epoch <= 4 and prov["value_stderr"] > 0
    code, out, err = run(capsys, "train", "best.yaml", "-o", "out")
    # the search kept the trial's fold models (it ran on this machine): train ships them, trains nothing
    assert code == 0 and "val_accuracy" in out and "fold 3/3 epoch" not in err
    assert "fold models, kept in" in err and "not trained again" in err
    metrics = json.loads(Path("out/metrics.json").read_text())
    assert metrics["val_accuracy"] == prov["val_accuracy"]  # the trial's own fold models: its value exactly
    assert metrics["epochs"] == best_epoch and metrics["validation"] == "3-fold out-of-fold"
    assert metrics["model"] == "ensemble of 3 fold models" and "model epoch" not in err  # nothing trained after
    assert metrics["data_fingerprint"] == prov["data_fingerprint"]
    assert Path("out/model.pt").is_file()
    rows = Path("out/label_issues.csv").read_text().splitlines()[1:]
    assert len(rows) == 1437 and len({r.split(",")[0] for r in rows}) == 1437  # every non-test row, once


def test_train_on_other_data_and_csv_flow(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    csv = tmp_path / "my.csv"
    csv.write_text("a,b,c,d,e,target\n" + "\n".join(",".join(f"{v:.4f}" for v in row) + f",{'yes' if t else 'no'}"
                                                        for row, t in zip(x, y)))
    db = f"sqlite:///{tmp_path}/csv.db"
    code, _, err = run(capsys, "search", "--data", f"csv:{csv}", "--label-column", "target", "--trials", "2",
                       "--space", "quick", "--executor", "local", "--storage", db, "--no-progress")
    assert code == 0, err
    code, out, _ = run(capsys, "export", "--storage", db, "--rule", "ce-guard", "-o", str(tmp_path / "guard.yaml"))
    assert code == 0 and "rule ce-guard: " in out
    assert run(capsys, "export", "--storage", db, "-o", str(tmp_path / "best.yaml"))[0] == 0
    code, out, err = run(capsys, "train", str(tmp_path / "best.yaml"), "-o", str(tmp_path / "out"))
    assert code == 0, err
    assert "test_accuracy" not in out  # labels of a user file are not known to be clean
    rows = (tmp_path / "out" / "label_issues.csv").read_text().splitlines()
    assert rows[0] == "index,given_label,predicted_label,suspicion" and rows[1].split(",")[1] in ("yes", "no")
    # 240 rows of the user's own labels: no test split, 3 folds, so every row of the file is scored out of fold
    assert sorted(int(r.split(",")[0]) for r in rows[1:]) == list(range(240))
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["validation"] == "3-fold out-of-fold"
    # the pipeline is a recipe: it trains afresh on other data of another shape
    code, out, err = run(capsys, "train", str(tmp_path / "best.yaml"), "-o", str(tmp_path / "out2"), *TINY_FLAGS)
    assert code == 0 and "test_accuracy" in out, err
    code, _, err = run(capsys, "train", str(tmp_path / "best.yaml"), "-o", str(tmp_path / "out4"), "--cv", "200")
    assert code == 2 and err.strip().splitlines() == [
        "automl-noisy: error: --cv 200 needs 2 to 106 folds here (the pool's smallest class has 106 rows); "
        "pass --cv 5, or --cv 1 for one holdout split"]
    cnn = tmp_path / "cnn.yaml"
    cnn.write_text("pipeline:\n  model: {name: cnn}\n  epochs: 1\n")
    code, out, err = run(capsys, "train", str(cnn), "-o", str(tmp_path / "out3"), "--data", f"csv:{csv}",
                         "--label-column", "target")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "model 'cnn' does not fit data of shape (5,)" in err


def test_refit_ships_todays_single_model_and_ensemble_the_fold_models(tmp_path, capsys):
    """--refit trains one more model on the whole pool: the very weights a Trainer on the pool trains
    (the same seed), in a single model's layout, as train always shipped. --ensemble ships the fold
    models and trains nothing after them. Both score the labels out of fold alike and report the
    same out-of-fold val_accuracy, saying what it estimates; test_accuracy is the shipped model's."""
    import torch

    import automl_noisy
    from automl_noisy.data import load_data
    from automl_noisy.data.folds import pool_dataset
    from automl_noisy.pipeline import read_pipeline_file
    from automl_noisy.train.trainer import Trainer

    recipe = _write(tmp_path / "mlp.yaml", "pipeline:\n  model: {name: mlp, width: 32, depth: 1}\n  epochs: 2\n")
    flags = [*TINY_FLAGS, "--noise", "symmetric:0.3", "--cv", "3"]
    code, out, err = run(capsys, "train", recipe, "--refit", "-o", str(tmp_path / "refit"), *flags)
    assert code == 0 and out.startswith("refit on all 240 rows: val_accuracy ") and "model epoch   2/2" in err
    code, out, err = run(capsys, "train", recipe, "--ensemble", "-o", str(tmp_path / "ensemble"), *flags)
    assert code == 0 and out.startswith("ensemble of 3 fold models: val_accuracy ") and "model epoch" not in err
    refit, ensemble = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("refit", "ensemble"))
    assert refit["val_accuracy"] == ensemble["val_accuracy"] and refit["validation"] == "3-fold out-of-fold"
    assert "an estimate for the refit, which trained on every row and was not validated itself" in \
        refit["val_accuracy_note"]
    assert refit["ensemble_test_accuracy"] == ensemble["test_accuracy"] and "ensemble_test_accuracy" not in ensemble
    issues = [(tmp_path / name / "label_issues.csv").read_bytes() for name in ("refit", "ensemble")]
    assert issues[0] == issues[1]
    card = json.loads((tmp_path / "refit" / "model.json").read_text())
    assert card["members"] == {"count": 1, "combine": "mean_probability", "held_out_folds": None, "of_folds": None}
    pipeline = read_pipeline_file(str(tmp_path / "refit" / "pipeline.yaml"))[0]
    trainer = Trainer(pipeline, pool_dataset(load_data(pipeline.data)))
    for _ in trainer.epochs():
        pass
    saved, today = torch.load(tmp_path / "refit" / "model.pt", weights_only=True), trainer.model.state_dict()
    assert saved.keys() == today.keys() and all(torch.equal(saved[k], today[k]) for k in today)
    assert refit["test_accuracy"] == trainer.accuracy(trainer.x_test, trainer.y_test)
    model = automl_noisy.load(tmp_path / "refit")
    assert len(model.ensemble.members) == 1
    np.testing.assert_allclose(model.probabilities(trainer.data.x_test),  # network inputs, as the trainer's
                               trainer.log_probs(trainer.x_test).exp().numpy(), atol=1e-7)


def test_components_lists_families(capsys):
    code, out, _ = run(capsys, "components")
    assert code == 0
    for text in ("loss  (slot: per_sample_loss; one)", "loss.gce.q: float [0.05, 1]", "penalty.l1.coef",
                 "model.mlp.width", "mixing.mixup.alpha", "adjustment.label_smoothing.epsilon"):
        assert text in out


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    """A model folder trained for one epoch on a small table (columns a, b), for the predict cases."""
    root = tmp_path_factory.mktemp("tiny_model")
    _write(root / "t.csv", "a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    _write(root / "mlp.yaml", "pipeline:\n  model: {name: mlp, width: 32, depth: 1}\n  epochs: 1\n")
    assert main(["train", str(root / "mlp.yaml"), "--data", f"csv:{root / 't.csv'}", "--cv", "1",
                 "-o", str(root / "model")]) == 0
    return str(root / "model")


def _fifo(path: Path, request) -> str:
    """A FIFO at ``path``; at teardown, any reader left blocked on it is released (an open for
    writing that does not wait) and the FIFO removed."""
    os.mkfifo(path)

    def release() -> None:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # a blocked reader gets end-of-file
        except OSError:  # ENXIO: no reader is waiting
            pass
        path.unlink(missing_ok=True)

    request.addfinalizer(release)
    return str(path)


@pytest.fixture
def files(tmp_path, tiny_model, request):
    single = _write(tmp_path / "single.csv", "a,label\n1,x\n2,x\n3,x\n4,x\n")
    nan = _write(tmp_path / "nan.csv", "a,b,label\n1,,x\n2,1,y\n3,1,x\n4,1,y\n5,1,x\n6,1,y\n")
    ok_csv = _write(tmp_path / "ok.csv", "a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    bad_yaml = _write(tmp_path / "bad.yaml", "pipeline: {model: [unclosed\n")
    unknown = _write(tmp_path / "unknown.yaml", "pipeline:\n  model: {name: mlp}\n  loss: {name: cee}\n  epochs: 1\n")
    unknown_space = _write(tmp_path / "space.yaml", "families:\n  loss: [ce, focal]\n")
    family_space = _write(tmp_path / "fam.yaml", "families:\n  losses: [ce]\n")
    bad_space = _write(tmp_path / "badspace.yaml", "families: {loss: [ce\n")
    rows = "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40))
    huge = _write(tmp_path / "huge.csv", "a,b,label\n" + rows + "1e308,1,0\n")
    twice = _write(tmp_path / "twice.csv", "a,a,label\n" + rows)
    wide = _write(tmp_path / "wide.csv", ",".join(f"c{i}" for i in range(200_000)) + ",label\n"
                  + ",".join("0" * 200_001) + "\n")
    inf = _write(tmp_path / "inf.csv", "a,b,label\n" + rows + "inf,1,0\n")
    header_only = _write(tmp_path / "header_only.csv", "a,b,label\n")
    fifo_csv = _fifo(tmp_path / "fifo.csv", request)
    fifo_labels = _fifo(tmp_path / "fifo.npy", request)
    fifo_images = tmp_path / "fifo_images"
    plain_images = tmp_path / "plain_images"
    for folder in (fifo_images, plain_images):
        for k in ("a", "b"):
            (folder / k).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((4, 4), 40 * i, dtype=np.uint8)).save(folder / k / f"{i}.png")
    _fifo(fifo_images / "b" / "3.png", request)
    pipe = lambda name, extra: _write(tmp_path / f"{name}.yaml", "pipeline:\n  model: {name: mlp}\n"  # noqa: E731
                                      f"  epochs: 1\n{extra}")
    images = tmp_path / "images"
    for k in ("a", "b"):
        (images / k).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((4, 4), 40 * i, dtype=np.uint8)).save(images / k / f"{i}.png")
    (images / "a" / "loop").symlink_to("..")
    empty_db = tmp_path / "empty.db"
    empty_db.touch()
    np.savez(tmp_path / "mixed_labels.npz", X=np.zeros((42, 2)), y=np.array([1, "a", 2] * 14, dtype=object))
    np.savez(tmp_path / "object_rows.npz", X=np.zeros((42, 2), dtype=object), y=np.arange(42) % 2)
    trusted = {name: _write(tmp_path / f"trusted_{name}.csv", "row,label\n" + rows) for name, rows in (
        ("unknown_row", "3,1\n99,0\n"), ("outside", "3,1\n4,5\n"), ("twice", "3,1\n3,0\n"),
        ("all_rows", "".join(f"{i},{i % 2}\n" for i in range(40))), ("one_class", "3,1\n5,1\n"))}
    return dict(single=single, nan=nan, ok_csv=ok_csv, bad_yaml=bad_yaml, unknown=unknown,
                unknown_space=unknown_space, family_space=family_space, bad_space=bad_space, dir=tmp_path,
                huge=huge, twice=twice, wide=wide, inf=inf, header_only=header_only, fifo_csv=fifo_csv,
                fifo_labels=fifo_labels, fifo_images=str(fifo_images), plain_images=str(plain_images),
                model=tiny_model, batch_one=pipe("b1", "  batch_size: 1\n"),
                huge_lr=pipe("lr", "  optimizer: {name: sgd, lr: 1000000.0}\n"),
                bad_momentum=pipe("mom", "  optimizer: {name: sgd, momentum: 7}\n"),
                ok_pipe=pipe("ok", ""), glc_pipe=pipe("glc", "  adjustment: {name: glc}\n"), images=str(images),
                empty_db=str(empty_db),
                frozen_alone=pipe("frozen", "  start: {mode: frozen}\n"),
                unknown_method=pipe("method", "  pretraining: {name: mae_pretrain}\n  start: frozen\n"),
                searched_setting=_write(tmp_path / "tuned.yaml", "pretraining:\n  method: {name: simclr, "
                                                                 "steps: [10, 100]}\n"),
                bad_start=_write(tmp_path / "start.yaml", "pretraining:\n  start: [random, thawed]\n"),
                **{f"trusted_{k}": v for k, v in trusted.items()})


SEARCH = ["search", "--executor", "local", "--trials", "1", "--no-progress", "--space", "quick"]

CASES = {
    "missing data file": (lambda f: SEARCH + ["--data", f"csv:{f['dir']}/missing.csv"], "data file not found"),
    "missing pipeline file": (lambda f: ["train", f"{f['dir']}/nope.yaml"], "pipeline file not found"),
    "missing space file": (lambda f: SEARCH[:-2] + ["--space", f"{f['dir']}/nope.yaml"], "search space not found"),
    "malformed pipeline yaml": (lambda f: ["train", f["bad_yaml"]], "not valid YAML at line"),
    "malformed space yaml": (lambda f: SEARCH[:-2] + ["--space", f["bad_space"]], "not valid YAML at line"),
    "unknown component in pipeline": (lambda f: ["train", f["unknown"], "-o", f"{f['dir']}/o"],
                                      "unknown loss 'cee'; choose one of: ce, gce, mae, nce_rce, sce"),
    "unknown component in space": (lambda f: SEARCH[:-2] + ["--space", f["unknown_space"]], "unknown loss 'focal'"),
    "unknown family in space": (lambda f: SEARCH[:-2] + ["--space", f["family_space"]], "unknown family 'losses'"),
    "label column absent": (lambda f: SEARCH + ["--data", f"csv:{f['ok_csv']}", "--label-column", "target"],
                            "label column 'target'"),
    "single class": (lambda f: SEARCH + ["--data", f"csv:{f['single']}"], "single class"),
    "nan features": (lambda f: SEARCH + ["--data", f"csv:{f['nan']}"], "NaN"),
    "bad noise spec": (lambda f: SEARCH + ["--noise", "symetric:0.4"], "bad noise spec 'symetric:0.4'"),
    "noise rate out of range": (lambda f: SEARCH + ["--noise", "symmetric:1.5"], "bad noise spec"),
    "noise that leaves no signal": (lambda f: SEARCH + ["--noise", "pair:0.5"], "leaves no signal"),
    "unknown data source": (lambda f: SEARCH + ["--data", "mnist"], "mnist"),
    "unreachable storage": (lambda f: SEARCH + ["--storage", "postgresql+psycopg2://me:s3cret@127.0.0.1:9/db"],
                            "cannot open storage postgresql+psycopg2://me:***@127.0.0.1:9/db"),
    "storage folder missing": (lambda f: SEARCH + ["--storage", f"sqlite:///{f['dir']}/no/such/dir/x.db"],
                               "does not exist"),
    "bad storage url": (lambda f: SEARCH + ["--storage", "not a url"], "bad storage URL"),
    "export without database": (lambda f: ["export", "--storage", f"sqlite:///{f['dir']}/none.db"],
                                "no study database"),
    "bad trials count": (lambda f: SEARCH[:3] + ["--trials", "0"], "--trials must be at least 1"),
    "cv below 1": (lambda f: SEARCH + ["--data", "synthetic", "--cv", "0"], "data.folds (--cv) must be a positive"),
    "cv above the smallest class": (lambda f: SEARCH + ["--data", "digits", "--cv", "1000"],
                                    "--cv 1000 needs 2 to"),
    "bad flag value": (lambda f: ["search", "--trials", "many"], "invalid int value"),
    # found by an audit as an operator and an attacker would use the tool
    "value beyond float32": (lambda f: SEARCH + ["--data", f"csv:{f['huge']}"],
                             "feature column 'a' in"),
    "missing values name the impute flag": (lambda f: SEARCH + ["--data", f"csv:{f['nan']}"],
                                            "or pass --impute median"),
    "impute with an infinite value": (lambda f: SEARCH + ["--data", f"csv:{f['inf']}", "--impute", "median"],
                                      "--impute fills missing values, not infinite ones"),
    "impute on data that is no table": (lambda f: SEARCH + ["--data", "digits", "--impute", "median"],
                                        "option(s) impute (--impute) do not apply to digits data"),
    "unknown impute strategy": (lambda f: SEARCH + ["--impute", "mean"], "argument --impute: invalid choice"),
    "csv wider than the column limit": (lambda f: SEARCH + ["--data", f"csv:{f['wide']}"],
                                        "columns, more than the limit of 50,000"),
    "csv data that is a fifo": (lambda f: SEARCH + ["--data", f"csv:{f['fifo_csv']}"],
                                "is a FIFO (named pipe), not a file"),
    "csv data that is a device": (lambda f: SEARCH + ["--data", "csv:/dev/zero"], "is a character device"),
    "npz data that is a folder": (lambda f: SEARCH + ["--data", f"npz:{f['dir']}"], "is a folder, not a file"),
    "label file that is a fifo": (lambda f: SEARCH + ["--labels", f["fifo_labels"]],
                                  "fifo.npy is a FIFO (named pipe), not a file"),
    "fifo named like an image in an image folder": (lambda f: SEARCH + ["--data", f"folder:{f['fifo_images']}"],
                                                    "3.png is a FIFO (named pipe), not an image file"),
    "synthetic size beyond the limit": (lambda f: SEARCH + ["--data", "synthetic", "--samples", "1000000000000"],
                                        "more than the limit of 268,435,456"),
    "synthetic classes beyond the limit": (lambda f: SEARCH + ["--data", "synthetic", "--samples", "1000000",
                                                               "--classes", "100000"],
                                           "x 100000 classes holds 2e+12 values"),
    "image size beyond the limit": (lambda f: SEARCH + ["--data", f"folder:{f['plain_images']}", "--image-size",
                                                        "100000"], "more than the limit of 1,073,741,824"),
    "predict on a csv with a header and no rows": (lambda f: ["predict", f["model"], "--data", f["header_only"],
                                                              "-o", f"{f['dir']}/p.csv"], "has a header but no rows"),
    "predict on a fifo": (lambda f: ["predict", f["model"], "--data", f"csv:{f['fifo_csv']}", "-o",
                                     f"{f['dir']}/p.csv"], "is a FIFO (named pipe), not a file"),
    "predict on rows with missing values": (lambda f: ["predict", f["model"], "--data", f["nan"], "-o",
                                                       f"{f['dir']}/p.csv"], "trained without --impute median"),
    "duplicate column names": (lambda f: SEARCH + ["--data", f"csv:{f['twice']}"], "names column(s) 'a' more than once"),
    "batch size one": (lambda f: ["train", f["batch_one"], "-o", f"{f['dir']}/o"], "batch_size must be an integer of at least 2"),
    "huge learning rate": (lambda f: ["train", f["huge_lr"], "-o", f"{f['dir']}/o"], "optimizer.lr must be a number in (0, 10]"),
    "momentum out of range": (lambda f: ["train", f["bad_momentum"], "-o", f"{f['dir']}/o"],
                              "optimizer.momentum must be a number in [0, 1)"),
    "symbolic link in an image folder": (lambda f: SEARCH + ["--data", f"folder:{f['images']}"], "is a symbolic link"),
    "unknown source kind with a csv path": (lambda f: SEARCH + ["--data", f"hdf5:{f['ok_csv']}"],
                                            "unknown data source kind 'hdf5'"),
    "npz labels mixing numbers and strings": (lambda f: SEARCH + ["--data", f"npz:{f['dir']}/mixed_labels.npz"],
                                              "array 'y' in npz file"),
    "npz features of python objects": (lambda f: SEARCH + ["--data", f"npz:{f['dir']}/object_rows.npz"],
                                       "array 'X' in npz file"),
    "export from an empty file": (lambda f: ["export", "--storage", f"sqlite:///{f['empty_db']}"], "no study database"),
    "dashboard port out of range": (lambda f: ["dashboard", "--port", "99999"], "a port is 0 to 65535"),
    "train on a missing gpu": (lambda f: ["train", f["ok_pipe"], "--device", "cuda:7", "-o", f"{f['dir']}/o"],
                               "device 'cuda:7' asked for"),
    "train on an unknown device": (lambda f: ["train", f["ok_pipe"], "--device", "tpu9", "-o", f"{f['dir']}/o"],
                                   "unknown device 'tpu9'"),
    "negative workers": (lambda f: ["search", "--workers", "-2"], "must be at least 1, got -2"),
    "zero threads": (lambda f: ["train", "x.yaml", "--threads", "0"], "must be 1 to"),
    "more threads than CPUs": (lambda f: ["train", "x.yaml", "--threads", "100000"], "the CPUs of this machine, got"),
    "workers with the local executor": (lambda f: SEARCH + ["--workers", "3"], "--workers 3 has no effect"),
    "unknown family filter": (lambda f: ["components", "--family", "lossy"], "unknown family 'lossy'"),
    # warm start
    "missing portfolio file": (lambda f: SEARCH + ["--portfolio", f"{f['dir']}/nope.yaml"], "portfolio file not found"),
    "malformed portfolio": (lambda f: SEARCH + ["--portfolio", f["bad_yaml"]], "not valid YAML at line"),
    "warm start from an unknown study": (lambda f: SEARCH + ["--warm-start", "nope"], "no study"),
    # self-supervised pretraining
    "frozen start without a pretraining method": (lambda f: ["train", f["frozen_alone"], "-o", f"{f['dir']}/o"],
                                                  "start mode 'frozen' needs a pretrained body"),
    "unknown pretraining method": (lambda f: ["train", f["unknown_method"], "-o", f"{f['dir']}/o"],
                                   "unknown pretraining 'mae_pretrain'; choose one of: barlow_twins, simclr"),
    "pretraining setting given as a range": (lambda f: SEARCH[:-2] + ["--space", f["searched_setting"]],
                                             "pretraining settings are fixed"),
    "unknown start mode in a space": (lambda f: SEARCH[:-2] + ["--space", f["bad_start"]],
                                      "pretraining.start='thawed' is not one of"),
    # no output overwrites an input (a study, a model and their files are made by the fixture `made`)
    "export over the study database": (lambda f: ["export", "-o", "automl-noisy.db"],
                                       "output automl-noisy.db is the study database this command reads"),
    "report over the study database": (lambda f: ["report", "-o", f"{f['dir']}/./automl-noisy.db"],
                                       "is the study database this command reads"),
    "export through a link to the study database": (lambda f: ["export", "-o", f["db_link"]],
                                                    "is the study database this command reads"),
    "predict over the model's weights": (lambda f: ["predict", "model", "--data", "synthetic", "-o", "model/model.pt"],
                                         "is the model's file model.pt this command reads"),
    "predict over the model card": (lambda f: ["predict", "model", "--data", "synthetic", "-o", "model/model.json"],
                                    "is the model's file model.json this command reads"),
    "predict over its data file": (lambda f: ["predict", "model", "--data", f"csv:{f['ok_csv']}", "-o", f["ok_csv"]],
                                   "is the data file this command reads"),
    "predict over its data file given as a bare path": (lambda f: ["predict", "model", "--data", "ok.csv", "-o",
                                                                   "./ok.csv"], "is the data file this command reads"),
    "search storage over its data file given as a bare path": (lambda f: SEARCH + ["--data", " CSV: ok.csv",
                                                                                   "--storage", "sqlite:///ok.csv"],
                                                               "is the data file this command reads"),
    "predict to a full disk": (lambda f: ["predict", "model", "--data", "synthetic", "-o", "/dev/full"],
                               "cannot write /dev/full: No space left on device"),
    "report to a full disk": (lambda f: ["report", "-o", "/dev/full"], "cannot write /dev/full: No space left"),
    "train over its pipeline file": (lambda f: ["train", "model/pipeline.yaml", "-o", "model"],
                                     "is the pipeline file this command reads"),
    "train over its data file": (lambda f: ["train", f["ok_pipe"], "--data", f"csv:{f['dir']}/d/label_issues.csv",
                                            "-o", f"{f['dir']}/d"], "is the data file this command reads"),
    "search storage over its data file": (lambda f: SEARCH + ["--data", f"csv:{f['ok_csv']}",
                                                              "--storage", f"sqlite:///{f['ok_csv']}"],
                                          "is the data file this command reads"),
    "search storage over its space file": (lambda f: SEARCH[:-2] + ["--space", f["ok_space"], "--storage",
                                                                   f"sqlite:///{f['ok_space']}"],
                                           "is the search space file this command reads"),
    # the study a search resumes
    "a plain Optuna study of the same name": (lambda f: SEARCH + ["--data", "synthetic", "--study", "plain",
                                                                  "--storage", "sqlite:///other.db"],
                                              "study 'plain' in sqlite:///other.db was not made by automl-noisy"),
    "search a study whose data file changed": (lambda f: SEARCH + ["--data", "csv:changing.csv", "--study",
                                                                   "changing", "--storage", "sqlite:///other.db"],
                                               "was made on other data"),
    # numbers and files a user can type
    "train for zero epochs": (lambda f: ["train", f["ok_pipe"], "--epochs", "0"], "must be at least 1, got 0"),
    "refit with a holdout split": (lambda f: ["train", f["ok_pipe"], "--cv", "1", "--refit", "-o", f"{f['dir']}/o"],
                                   "--refit chooses what ships from K >= 2 fold models, but this training has one "
                                   "holdout split"),
    "ensemble and refit at once": (lambda f: ["train", f["ok_pipe"], "--ensemble", "--refit"],
                                   "argument --refit: not allowed with argument --ensemble"),
    "negative gpus per trial": (lambda f: SEARCH + ["--gpus-per-trial", "-1"], "--gpus-per-trial must be 0"),
    "gpus per trial not a number": (lambda f: SEARCH + ["--gpus-per-trial", "nan"], "--gpus-per-trial must be 0"),
    "a gpu fraction with the local executor": (lambda f: SEARCH + ["--gpus-per-trial", "0.5"],
                                               "--gpus-per-trial 0.5 has no effect with --executor local"),
    "more than one gpu, not whole": (lambda f: ["search", "--gpus-per-trial", "1.5"], "not a whole number"),
    "empty families in a space": (lambda f: SEARCH[:-2] + ["--space", f["empty_families"]], "'families' is empty"),
    "missing storage file": (lambda f: ["export", "--storage-file", "nope.txt"], "storage file not found: nope.txt"),
    "storage and storage file": (lambda f: ["export", "--storage", "sqlite:///x.db", "--storage-file", "u.txt"],
                                 "not allowed with argument"),
    "empty storage file": (lambda f: ["export", "--storage-file", f["empty_db"]], "is empty"),
    "seed beyond 32 bits": (lambda f: SEARCH + ["--data", "synthetic", "--seed", "99999999999"],
                            "data.seed (--seed) must be an integer from 0 to 4294967295"),
    "time budget not a duration": (lambda f: SEARCH + ["--time-budget", "soon"], "invalid duration 'soon'"),
    "time budget of zero": (lambda f: SEARCH + ["--timeout", "0m"], "a duration must be more than 0"),
    "study name too long": (lambda f: SEARCH + ["--data", "synthetic", "--study", "s" * 600],
                            "--study names of at most 512 characters"),
    "cnn on vectors with a pretrained start": (lambda f: ["train", f["cnn_finetune"], "--data", "synthetic", "-o", "o"],
                                               "model 'cnn' does not fit data of shape (20,)"),
    "trusted row id unknown": (lambda f: SEARCH + ["--data", f["ok_csv"], "--trusted", f["trusted_unknown_row"]],
                               "names unknown row id 99; the data has 40 rows"),
    "trusted label outside the classes": (lambda f: SEARCH + ["--data", f["ok_csv"], "--trusted", f["trusted_outside"]],
                                          "outside 0..1"),
    "trusted row twice": (lambda f: SEARCH + ["--data", f["ok_csv"], "--trusted", f["trusted_twice"]],
                          "lists row 3 more than once"),
    "trusted row in the test split": (lambda f: SEARCH + ["--data", f["ok_csv"], "--noise", "symmetric:0.2",
                                                          "--trusted", f["trusted_all_rows"]],
                                      "is in the test split"),
    "trusted file missing": (lambda f: SEARCH + ["--trusted", f"{f['dir']}/none.csv"], "trusted file not found"),
    "trusted file for train missing": (lambda f: ["train", f["ok_pipe"], "--data", "synthetic", "--trusted",
                                                  f"{f['dir']}/none.csv", "-o", f"{f['dir']}/o"],
                                       "trusted file not found"),
    "trusted rows of one class for glc": (lambda f: ["train", f["glc_pipe"], "--data", f["ok_csv"], "--trusted",
                                                     f["trusted_one_class"], "-o", f"{f['dir']}/o"],
                                          "adjustment glc needs a trusted training row of every class, but the "
                                          "training split has no trusted row of class"),
    "trusted fraction out of range": (lambda f: SEARCH + ["--trusted-fraction", "1.5"],
                                      "--trusted-fraction) must be a number in (0, 1)"),
    "trusted fraction not a number": (lambda f: SEARCH + ["--trusted-fraction", "some"], "invalid float value"),
    "trusted fraction with unknown clean labels": (lambda f: SEARCH + ["--data", f["ok_csv"], "--trusted-fraction",
                                                                       "0.2"], "are unknown"),
    "trusted file and fraction at once": (lambda f: SEARCH + ["--trusted", f["trusted_twice"], "--trusted-fraction",
                                                              "0.1"], "pass one of the two"),
}

#: cases argparse refuses itself (SystemExit 2)
PARSE_ERRORS = ("bad flag value", "dashboard port out of range", "negative workers", "zero threads",
                "train for zero epochs", "storage and storage file", "unknown impute strategy", "more threads than CPUs",
                "ensemble and refit at once", "time budget not a duration", "time budget of zero",
                "trusted fraction not a number")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A finished study (``automl-noisy.db``: a 2-trial search on synthetic data), a model folder
    trained from its best trial (``model/``), and ``other.db`` with an automl-noisy study 'changing'
    made on ``changing.csv`` (which each case changes) and a plain Optuna study 'plain'."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("made")
    db = f"sqlite:///{root}/automl-noisy.db"
    other = f"sqlite:///{root}/other.db"
    quiet = ["--executor", "local", "--no-progress", "--space", "quick", "--no-portfolio"]
    (root / "changing.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    here = os.getcwd()
    os.chdir(root)  # the study 'changing' names its data file by a relative path, as a user would
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["search", *TINY_FLAGS, "--trials", "2", *quiet, "--storage", db]) == 0
            assert main(["search", "--data", "csv:changing.csv", "--trials", "1", "--study", "changing", *quiet,
                         "--storage", other]) == 0
            assert main(["export", "--storage", db, "-o", "best.yaml"]) == 0
            assert main(["train", "best.yaml", "-o", "model"]) == 0
            assert main(["report", "--storage", db, "-o", "report.html"]) == 0  # the analysis is stored
    finally:
        os.chdir(here)
    plain = optuna.create_study(storage=other, study_name="plain")
    plain.add_trial(optuna.trial.create_trial(value=1.0))
    (root / "best.yaml").unlink()
    (root / "report.html").unlink()
    return root


def _digest(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (links not followed) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}


@pytest.mark.timeout(120)  # a case that hangs (a FIFO read) fails instead of stopping the run
@pytest.mark.parametrize("case", sorted(CASES))
def test_user_mistakes_give_one_line_and_exit_2(case, files, made, capsys, monkeypatch):
    """Each mistake: exit 2, one line on stderr that names it, and no file there before is changed."""
    import shutil

    shutil.copytree(made, files["dir"], dirs_exist_ok=True)
    (files["dir"] / "changing.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(40)))
    (files["dir"] / "d").mkdir()
    shutil.copy(files["ok_csv"], files["dir"] / "d" / "label_issues.csv")
    extra = {"db_link": str(files["dir"] / "link.db"), "ok_space": _write(files["dir"] / "ce.yaml", "families:\n  loss: [ce]\n"),
             "empty_families": _write(files["dir"] / "nofam.yaml", "families: {}\n"),
             "cnn_finetune": _write(files["dir"] / "cnnft.yaml", "pipeline:\n  model: {name: cnn}\n  epochs: 1\n"
                                    "  pretraining: {name: simclr, steps: 20}\n  start: {mode: finetune}\n")}
    Path(extra["db_link"]).symlink_to(files["dir"] / "automl-noisy.db")
    before = _digest(files["dir"])
    monkeypatch.chdir(files["dir"])
    argv, expected = CASES[case]
    parse_error = case in PARSE_ERRORS
    with pytest.raises(SystemExit) if parse_error else _nothing() as caught:
        code = main(argv({**files, **extra}))
    if parse_error:
        code = caught.value.code
    out, err = capsys.readouterr()
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert expected in lines[0] and "Traceback" not in err
    assert "s3cret" not in err + out
    after = _digest(files["dir"])
    assert {name: data for name, data in after.items() if name in before} == before  # nothing stored changed


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_space_changed_under_a_study_keeps_what_is_stored(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    common = ["search", *TINY_FLAGS, "--executor", "local", "--no-progress", "--study", "s"]
    assert run(capsys, *common, "--space", "quick", "--trials", "2")[0] == 0
    code, _, err = run(capsys, *common, "--space", "default", "--trials", "3")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "different search space" in err
    assert len(optuna.load_study(study_name="s", storage="sqlite:///automl-noisy.db").trials) == 2


def test_trusted_rows_are_recorded_and_a_resume_refuses_another_trusted_set(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trusted = _write(tmp_path / "trusted.csv", "row,label\n3,1\n5,0\n")
    common = ["search", *TINY_FLAGS, "--executor", "local", "--no-progress", "--no-portfolio", "--study", "s",
              "--space", "quick"]
    assert run(capsys, *common, "--trials", "1", "--trusted", trusted)[0] == 0
    study = optuna.load_study(study_name="s", storage="sqlite:///automl-noisy.db")
    assert study.user_attrs["data"]["options"]["trusted"] == trusted
    _write(tmp_path / "trusted.csv", "row,label\n3,1\n5,1\n")  # one verified label changed
    code, _, err = run(capsys, *common, "--trials", "2", "--trusted", trusted)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "was made on other data" in err and "trusted rows" in err
    for other in (["--trusted-fraction", "0.1"], []):  # drawn trusted rows, or none at all
        code, _, err = run(capsys, *common, "--trials", "2", *other)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "different data" in err
    assert len(optuna.load_study(study_name="s", storage="sqlite:///automl-noisy.db").trials) == 1
    _write(tmp_path / "trusted.csv", "row,label\n3,1\n5,0\n")  # as it was: the study goes on
    assert run(capsys, *common, "--trials", "2", "--trusted", trusted)[0] == 0
    assert run(capsys, "export", "-o", "best.yaml", "--study", "s")[0] == 0
    assert yaml.safe_load(Path("best.yaml").read_text())["pipeline"]["data"]["options"]["trusted"] == trusted


def test_another_seed_on_an_existing_study_names_the_seed(tmp_path, capsys, monkeypatch):
    """--seed also seeds the data's split and noise: the error must name the seed, not the data."""
    monkeypatch.chdir(tmp_path)
    common = ["search", *TINY_FLAGS, "--executor", "local", "--no-progress", "--study", "s", "--space", "quick",
              "--trials", "1"]
    assert run(capsys, *common)[0] == 0
    code, _, err = run(capsys, *common, "--seed", "5")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "created with a different seed" in err and "data" not in err.split("different")[1]


def test_console_script_error_has_no_traceback(tmp_path):
    exe = Path(sys.executable).with_name("automl-noisy")
    result = subprocess.run([str(exe), "train", str(tmp_path / "missing.yaml")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"automl-noisy: error: pipeline file not found: {tmp_path / 'missing.yaml'}"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_search_and_records_its_running_trial_as_interrupted(tmp_path, sig):
    """Ctrl+C, or SIGTERM from ``docker stop`` or systemd, in the middle of a trial: exit 130 with one
    line, the trial FAIL and marked interrupted (so a resume does not count it), nothing left RUNNING."""
    space = tmp_path / "long.yaml"
    space.write_text("epochs: 100000\nfamilies:\n  model: [mlp]\n  loss: [ce]\n")
    storage = f"sqlite:///{tmp_path}/s.db"
    exe = Path(sys.executable).with_name("automl-noisy")
    proc = subprocess.Popen([str(exe), "search", *TINY_FLAGS, "--space", str(space), "--trials", "2",
                             "--executor", "local", "--storage", storage, "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and not _a_reported_epoch(storage):
            time.sleep(0.1)  # wait for the condition: trial 0 has reported an epoch
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and err.strip().splitlines() == ["automl-noisy: interrupted"], err
    (trial,) = optuna.load_study(study_name=None, storage=storage).trials
    assert trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs["interrupted"] is True


def _a_reported_epoch(storage: str) -> bool:
    """Whether some trial has reported an epoch; read-only, so as never to race the driver creating the
    database (Optuna's own readers would create the schema themselves)."""
    import sqlite3

    path = storage.removeprefix("sqlite:///")
    if not Path(path).exists():
        return False
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return db.execute("SELECT count(*) FROM trial_intermediate_values").fetchone()[0] > 0
    except sqlite3.OperationalError:  # no such table yet, or the database is locked for a moment
        return False


def test_a_study_database_that_cannot_be_written_is_one_line_and_stays_readable(tmp_path, capsys, monkeypatch):
    """Resuming a search on a database the file system will not let anyone write (immutable, so even
    root cannot): one line and exit 2, the study unchanged; report still reads it."""
    monkeypatch.chdir(tmp_path)
    common = ["search", *TINY_FLAGS, "--executor", "local", "--no-progress", "--space", "quick", "--no-portfolio"]
    assert run(capsys, *common, "--trials", "1")[0] == 0
    before = Path("automl-noisy.db").read_bytes()
    if subprocess.run(["chattr", "+i", "automl-noisy.db"], capture_output=True).returncode:
        pytest.skip("chattr +i is not supported here (needs root and a file system with the immutable flag)")
    try:
        code, _, err = run(capsys, *common, "--trials", "2")
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert err.startswith("automl-noisy: error: cannot write sqlite:///automl-noisy.db: attempt to write a readonly "
                              "database")
        code, out, err = run(capsys, "report", "-o", "report.html")
        assert code == 0 and "1 trials analysed" in out, err
    finally:
        subprocess.run(["chattr", "-i", "automl-noisy.db"], check=True)
    assert Path("automl-noisy.db").read_bytes() == before


def test_a_time_budget_stops_launching_and_a_resume_goes_on(tmp_path, capsys, monkeypatch):
    """A budget spent before the first trial could start (a millisecond): nothing runs, plain CE waits
    for the next run, which goes on to the total."""
    monkeypatch.chdir(tmp_path)
    common = ["search", *TINY_FLAGS, "--executor", "local", "--space", "quick", "--no-portfolio", "--trials", "2"]
    code, out, err = run(capsys, *common, "--time-budget", "0.001s")
    assert code == 0 and "the time budget ended the search after 0 of its 2 trials" in out, err
    assert "time budget of 0.001 s spent" in err  # said on stderr, a line as the search runs
    code, out, _ = run(capsys, *common, "--no-progress")
    trials = optuna.load_study(study_name=None, storage="sqlite:///automl-noisy.db").trials
    counted = [t for t in trials if not t.user_attrs.get("interrupted")]
    assert code == 0 and len(counted) == 2 and counted[0].user_attrs.get("baseline")
