"""Using a trained model: the model folder 'train' writes, 'automl-noisy predict' and automl_noisy.load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import automl_noisy
from automl_noisy.cli import main
from automl_noisy.errors import UserError
from automl_noisy.pipeline import ComponentSpec, Pipeline


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(code: int, err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("automl-noisy: error: "), err
    assert all(f in lines[0] for f in fragments), lines[0]


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory) -> Path:
    """A user's CSV: numbers and a category, string labels, a fifth of them flipped."""
    rng = np.random.default_rng(0)
    n = 240
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(3, 2, size=n),
                          "colour": rng.choice(["red", "green", "blue"], n)})
    signal = frame["x1"] + (frame["colour"] == "red") - 0.1 * frame["x2"]
    labels = np.where(signal > 0.2, "spam", "ham")
    flip = rng.random(n) < 0.2
    frame["label"] = np.where(flip, np.where(labels == "spam", "ham", "spam"), labels)
    path = tmp_path_factory.mktemp("table") / "mail.csv"
    frame.to_csv(path, index=False)
    return path


def _predictions(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"predicted": str})


def test_search_export_train_predict_round_trip(table_csv, tmp_path, capsys, monkeypatch):
    """Predicting the rows of the training file gives what the trained model's own evaluation gave,
    the CLI and the Python API agree, and a moved model folder still loads."""
    monkeypatch.chdir(tmp_path)
    code, _, _ = run(capsys, "search", "--data", str(table_csv), "--trials", "2", "--space", "quick", "--cv", "1",
                     "--executor", "local", "--no-progress", "--no-portfolio")
    assert code == 0
    assert run(capsys, "export", "-o", "best.yaml")[0] == 0
    assert run(capsys, "train", "best.yaml", "-o", "out")[0] == 0
    assert {"model.pt", "model.json", "pipeline.yaml", "metrics.json", "label_issues.csv"} <= {
        p.name for p in Path("out").iterdir()}
    code, out, err = run(capsys, "predict", "out", "--data", str(table_csv), "-o", "predictions.csv")
    assert code == 0 and out.startswith("wrote predictions.csv: 240 rows predicted") and err == ""
    pred = _predictions(Path("predictions.csv"))
    assert list(pred.columns) == ["index", "predicted", "prob_ham", "prob_spam"]
    assert pred["index"].tolist() == list(range(240))
    np.testing.assert_allclose(pred[["prob_ham", "prob_spam"]].sum(axis=1), 1.0, atol=1e-6)
    issues = pd.read_csv("out/label_issues.csv", dtype={"predicted_label": str})  # the training rows
    assert (pred.set_index("index").loc[issues["index"], "predicted"].to_numpy() == issues["predicted_label"]).all()
    metrics = json.loads(Path("out/metrics.json").read_text())
    frame = pd.read_csv(table_csv)
    trained_rows = set(issues["index"])
    val = [i for i in range(len(frame)) if i not in trained_rows]  # holdout: the other rows validated
    assert (pred.loc[val, "predicted"] == frame.loc[val, "label"]).mean() == pytest.approx(metrics["val_accuracy"])

    model = automl_noisy.load("out")
    assert model.classes_.tolist() == ["ham", "spam"]
    probs = model.predict_proba(frame)
    np.testing.assert_allclose(probs, pred[["prob_ham", "prob_spam"]].to_numpy(), rtol=1e-7, atol=1e-9)
    assert (model.predict(frame) == pred["predicted"]).all()
    shutil.move("out", "elsewhere")
    np.testing.assert_array_equal(automl_noisy.load(Path("elsewhere")).predict_proba(frame), probs)


@pytest.fixture(scope="module")
def table_model(table_csv, tmp_path_factory) -> Path:
    """DivideMix (two networks) trained on the CSV, with 2-fold cross-validation."""
    out = tmp_path_factory.mktemp("model") / "out"
    assert main(["train", "dividemix", "--data", str(table_csv), "--epochs", "3", "--cv", "2", "-o", str(out)]) == 0
    return out


def test_new_rows_without_labels_in_any_order(table_model, table_csv, tmp_path, capsys):
    frame = pd.read_csv(table_csv)
    full = tmp_path / "full.csv"
    assert run(capsys, "predict", str(table_model), "--data", str(table_csv), "-o", str(full))[0] == 0
    new = frame[["colour", "x2", "x1"]].assign(note="ignored")  # no label, other order, an extra column
    new.to_csv(tmp_path / "new.csv", index=False)
    new.to_parquet(tmp_path / "new.parquet")
    for name in ("new.csv", "new.parquet"):
        code, _, err = run(capsys, "predict", str(table_model), "--data", str(tmp_path / name), "-o",
                           str(tmp_path / "p.csv"))
        assert code == 0 and err == ""
        pd.testing.assert_frame_equal(_predictions(tmp_path / "p.csv"), _predictions(full))
    model = automl_noisy.load(table_model, device=None)
    assert len(model.networks) == 2  # both of DivideMix's networks vote, as in training's evaluation
    np.testing.assert_allclose(model.predict_proba(new), _predictions(full)[["prob_ham", "prob_spam"]], atol=1e-8)


def test_score_is_the_mean_accuracy_and_an_unknown_label_is_wrong(table_model, table_csv):
    model = automl_noisy.load(table_model)
    frame = pd.read_csv(table_csv)
    predicted = model.predict(frame)
    assert model.score(frame, frame["label"]) == pytest.approx((predicted == frame["label"]).mean())
    assert model.score(frame, list(predicted)) == 1.0
    unknown = np.where(np.arange(240) < 60, "eggs", predicted)  # a class the model never saw: never predicted
    assert model.score(frame, unknown) == pytest.approx(0.75)
    assert model.score(frame, unknown, sample_weight=np.arange(240) >= 60) == 1.0
    with pytest.raises(ValueError, match=r"y has shape \(239,\), X 240 row\(s\); score needs one label per row") as caught:
        model.score(frame, frame["label"][:-1])
    assert isinstance(caught.value, UserError)

def test_unseen_category_is_a_note_and_all_zero(table_model, table_csv, tmp_path, capsys):
    frame = pd.read_csv(table_csv).head(4)
    frame.loc[1, "colour"] = "purple"
    frame.to_csv(tmp_path / "new.csv", index=False)
    code, _, err = run(capsys, "predict", str(table_model), "--data", str(tmp_path / "new.csv"), "-o",
                       str(tmp_path / "p.csv"))
    assert code == 0 and err.strip() == ("note: column 'colour' holds 1 category the model never saw ('purple'): "
                                         "encoded as none of its categories (all-zero one-hot columns)")
    with pytest.warns(UserWarning, match="'purple'"):
        automl_noisy.load(table_model).predict(frame)


@pytest.mark.parametrize("make, fragments", [
    (lambda f, d: f.drop(columns=["x2"]).to_csv(d / "bad.csv", index=False), ("lacks the feature column(s) 'x2'",)),
    (lambda f, d: f.assign(x1="high").to_csv(d / "bad.csv", index=False), ("'x1'", "holds text ('high')")),
    (lambda f, d: f.assign(x1=np.nan).to_csv(d / "bad.csv", index=False), ("'x1' (240)", "missing")),
    (lambda f, d: np.savez(d / "bad.npz", X=np.zeros((3, 5))), ("give a CSV or parquet file", "x1, x2, colour")),
    (lambda f, d: (d / "bad.csv").write_text(""), ("cannot read CSV file",)),
    (lambda f, d: None, ("data file not found",)),
])
def test_bad_new_data_is_one_line(table_model, table_csv, tmp_path, capsys, make, fragments):
    make(pd.read_csv(table_csv), tmp_path)
    target = next((str(p) for p in tmp_path.iterdir() if p.name.startswith("bad")), str(tmp_path / "bad.csv"))
    code, _, err = run(capsys, "predict", str(table_model), "--data", target, "-o", str(tmp_path / "p.csv"))
    _one_error_line(code, err, *fragments)
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("damage, fragments", [
    (lambda d: shutil.rmtree(d), ("does not exist",)),
    (lambda d: (d / "model.json").unlink(), ("has no model.json",)),
    (lambda d: (d / "model.json").write_text("{not json"), ("cannot read", "model.json")),
    (lambda d: (d / "model.json").write_text(json.dumps({**json.loads((d / "model.json").read_text()),
                                                         "format_version": 99})), ("format version 99",)),
    (lambda d: (d / "model.json").write_text(json.dumps({**json.loads((d / "model.json").read_text()),
                                                         "class_names": ["one"]})), ("malformed",)),
    (lambda d: (d / "model.pt").write_bytes(b"not a checkpoint"), ("cannot load the weights",)),
    (lambda d: (d / "model.pt").unlink(), ("has no model.pt",)),
    (lambda d: (d / "pipeline.yaml").unlink(), ("pipeline.yaml",)),
])
def test_broken_model_folder_is_one_line(table_model, tmp_path, capsys, damage, fragments):
    folder = tmp_path / "copy"
    shutil.copytree(table_model, folder)
    damage(folder)
    code, _, err = run(capsys, "predict", str(folder), "--data", "digits", "-o", str(tmp_path / "p.csv"))
    _one_error_line(code, err, *fragments)
    with pytest.raises(UserError):
        automl_noisy.load(folder)


class Payload:
    """Not a tensor: loading it would need pickle to build an arbitrary object."""


def test_weights_that_are_not_plain_tensors_are_refused(table_model, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(table_model, folder)
    torch.save({"weights": Payload()}, folder / "model.pt")
    with pytest.raises(UserError, match="cannot load the weights"):
        automl_noisy.load(folder)


def test_output_mistakes_are_one_line(table_model, table_csv, tmp_path, capsys):
    code, _, err = run(capsys, "predict", str(table_model), "--data", str(table_csv), "-o", str(tmp_path))
    _one_error_line(code, err, "is a folder")
    code, _, err = run(capsys, "predict", str(table_model), "--data", str(table_csv), "-o",
                       str(tmp_path / "no" / "p.csv"))
    _one_error_line(code, err, "does not exist")
    with pytest.raises(SystemExit) as caught:
        main(["predict", str(table_model), "-o", "p.csv"])
    assert caught.value.code == 2 and "required: --data" in capsys.readouterr().err


def test_images_and_arrays(tmp_path, capsys):
    """An npz of images trains; new images come as an npz without labels, or as a folder of PNGs of
    another size and colour; a wrong shape is one line."""
    from PIL import Image

    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 40)
    x = (rng.integers(0, 120, (80, 1, 8, 8)) + 120 * y[:, None, None, None]).astype(np.uint8)
    np.savez(tmp_path / "train.npz", X=x, y=np.where(y == 1, "bright", "dark"))
    out = tmp_path / "model"
    cnn = Pipeline(model=ComponentSpec("cnn", {"channels": 8}), epochs=3)
    (tmp_path / "cnn.yaml").write_text(cnn.to_yaml())
    assert run(capsys, "train", str(tmp_path / "cnn.yaml"), "--data", str(tmp_path / "train.npz"), "-o", str(out),
               "--cv", "1")[0] == 0
    np.savez(tmp_path / "new.npz", X=x[:6])
    assert run(capsys, "predict", str(out), "--data", str(tmp_path / "new.npz"), "-o", str(tmp_path / "a.csv"))[0] == 0
    from_array = _predictions(tmp_path / "a.csv")
    np.testing.assert_allclose(from_array[["prob_bright", "prob_dark"]], automl_noisy.load(out).predict_proba(x[:6]),
                               atol=1e-8)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(6):
        pixels = np.repeat(np.kron(x[i, 0], np.ones((2, 2), dtype=np.uint8))[..., None], 3, axis=2)  # 16x16 RGB
        Image.fromarray(pixels, "RGB").save(folder / f"{i}.png")
    code, _, err = run(capsys, "predict", str(out), "--data", str(folder), "-o", str(tmp_path / "f.csv"))
    assert code == 0 and "6 colour image(s) converted to grayscale" in err
    from_folder = _predictions(tmp_path / "f.csv")
    assert list(from_folder.columns[:3]) == ["index", "path", "predicted"]
    assert from_folder["path"].tolist() == [f"{i}.png" for i in range(6)]
    assert (from_folder["predicted"] == from_array["predicted"]).all()  # the same images, resized back
    np.savez(tmp_path / "wrong.npz", X=np.zeros((2, 1, 9, 9), dtype=np.uint8))
    code, _, err = run(capsys, "predict", str(out), "--data", str(tmp_path / "wrong.npz"), "-o", str(tmp_path / "w.csv"))
    _one_error_line(code, err, "shape (1, 9, 9)", "1 channel(s), 8x8 pixels")
