"""Using a trained model: the model folder 'train' writes, 'automl-noisy predict' and automl_noisy.load."""

from __future__ import annotations

import json
import os
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
    """DivideMix (two networks) trained on the CSV, with 2-fold cross-validation: by default the two
    fold models ship, as one model."""
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
    # two fold models, each with both of DivideMix's networks, which vote as in training's evaluation
    assert [len(member) for member in model.ensemble.members] == [2, 2] and len(model.networks) == 4
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


def _card(change):
    """A damage that edits the folder's model.json: ``change(card)`` changes the parsed card in place."""
    def damage(folder: Path) -> None:
        card = json.loads((folder / "model.json").read_text())
        change(card)
        (folder / "model.json").write_text(json.dumps(card))  # NaN and Infinity as Python's json writes them
    return damage


def _set(*path_and_value):
    """A change setting ``card[a][b]... = value``."""
    *path, key, value = path_and_value

    def change(card: dict) -> None:
        for step in path:
            card = card[step]
        card[key] = value
    return change


def _wider(card: dict) -> None:
    """One more numeric column, consistent everywhere in the card: only the weights tell."""
    prep = card["preprocessing"]
    prep["columns"].append({"name": "x9", "categories": None, "fill": None, "missing_category": False})
    prep["mean"].append(0.0)
    prep["std"].append(1.0)
    prep["input_shape"] = card["weights"]["input_shape"] = [prep["input_shape"][0] + 1]


def _weights(change):
    """A damage that rewrites model.pt with ``change(state_dict)``."""
    def damage(folder: Path) -> None:
        state = torch.load(folder / "model.pt", weights_only=True)
        change(state)
        torch.save(state, folder / "model.pt")
    return damage


def _first_float(state: dict) -> torch.Tensor:
    return next(t for t in state.values() if t.is_floating_point())


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _oversized(path: Path) -> None:
    from automl_noisy.data.limits import MAX_CARD_BYTES

    with open(path, "r+b") as f:
        f.truncate(MAX_CARD_BYTES + 1)  # sparse: nothing is written


@pytest.mark.timeout(120)  # a damage that made reading hang (a FIFO) fails instead of stopping the run
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
    # a card that contradicts itself or its weights, named by file and field
    (_card(_set("class_names", ["ham", "ham"])), ("model.json", "class_names names 'ham' more than once")),
    (_card(_set("class_names", "hamspam")), ("model.json", "class_names must be a list", "'hamspam'")),
    (_card(_set("class_names", [["ham"], "spam"])), ("class_names must be a list of class names",)),
    (_card(_set("class_names", [True, False])), ("class_names must be a list of class names",)),
    (_card(_set("class_names", ["ham", "spam", "eggs"])), ("class_names lists 3 classes, but the output layer",
                                                          "model.pt has 2 outputs where a network for them has 3")),
    (_card(lambda c: c["preprocessing"]["std"].__setitem__(0, float("nan"))),
     ("preprocessing.std holds nan where a finite number belongs",)),
    (_card(lambda c: c["preprocessing"]["mean"].__setitem__(1, float("inf"))), ("preprocessing.mean holds inf",)),
    (_card(lambda c: c["preprocessing"]["std"].__setitem__(0, 0.0)), ("preprocessing.std holds 0", "above 0")),
    (_card(lambda c: c["preprocessing"]["std"].__setitem__(0, -1.0)), ("preprocessing.std holds -1",)),
    (_card(lambda c: c["preprocessing"]["mean"].pop()), ("preprocessing.mean holds 4 statistics", "needs 5")),
    (_card(lambda c: c["preprocessing"]["columns"].pop(0)), ("the columns make 4 inputs",)),
    (_card(lambda c: c["preprocessing"]["columns"][2]["categories"].reverse()), ("a sorted list of distinct",)),
    (_card(_set("preprocessing", "image_size", 8)), ("preprocessing.image_size 8 disagrees with the input shape",)),
    (_card(_set("preprocessing", "input_shape", [10**12])), ("more than the limit of 16,777,216",)),
    (_card(_set("preprocessing", "scale", {"divide_by": 0, "range": [0, 255]})), ("divide_by > 0",)),
    (_card(_set("weights", "input_shape", [7])), ("differs from weights.input_shape [7]",)),
    (_card(_wider), ("preprocessing.input_shape [6] does not fit", "model.pt: tensor 'members.0.0.body.1.weight'")),
    (_card(_set("networks", 0)), ("field networks must be",)),
    # the members: as strictly checked against the weights as every other field
    (_card(lambda c: c["members"].update(count=3, held_out_folds=[1, 2, 3], of_folds=3)),
     ("model.json field members.count names 3 member(s), but", "model.pt holds the weights of 2")),
    (_card(_set("members", "of_folds", 3)), ("members.of_folds must be members.count (2): the ensemble holds one "
                                             "model per fold",)),
    (_card(_set("members", "count", 3)), ("members.of_folds must be members.count (3)",)),
    (_card(lambda c: c["members"].update(count=1, held_out_folds=None, of_folds=None)),
     ("model.json field members.count names 1 member(s), but", "model.pt holds the weights of 2 (tensors members.<i>.*)")),
    (_card(_set("members", "combine", "vote")), ("members.combine must be 'mean_probability'",)),
    (_card(_set("members", "held_out_folds", [1, 1])), ("held_out_folds must list the fold (1 to 2)", "each once")),
    (_card(_set("members", "held_out_folds", [1, 3])), ("held_out_folds must list the fold (1 to 2)",)),
    (_card(_set("members", "count", True)), ("members.count must be a whole number",)),
    (_card(lambda c: c.pop("members")), ("field members must say how many models",)),
    (_weights(lambda s: [s.pop(k) for k in list(s) if k.startswith("members.1.")]),
     ("model.json field members.count names 2 member(s), but", "model.pt holds the weights of 1")),
    (lambda d: (d / "model.json").write_text("[" * 200_000 + "]" * 200_000), ("nested too deeply",)),
    (lambda d: _oversized(d / "model.json"), ("more than the 268,435,456 a model description may have",)),
    (lambda d: _fifo(d / "model.json"), ("model.json is a FIFO",)),
    (lambda d: _fifo(d / "pipeline.yaml"), ("pipeline.yaml is a FIFO",)),
    (lambda d: _fifo(d / "model.pt"), ("model.pt is a FIFO",)),
    (_weights(lambda s: _first_float(s).fill_(float("nan"))), ("hold NaN or infinite values (tensor",)),
    (_weights(lambda s: _first_float(s).mul_(1.5)), ("sha256 differs from the field weights.sha256",)),
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
    # pixels 0-255 whatever their type, divided by 255 as in training; pixels already divided are refused
    model = automl_noisy.load(out)
    assert json.loads((out / "model.json").read_text())["preprocessing"]["scale"] == {"divide_by": 255.0,
                                                                                   "range": [0.0, 255.0]}
    np.testing.assert_array_equal(model.predict_proba(x[:6].astype(np.float64)), model.predict_proba(x[:6]))
    with pytest.raises(UserError, match=r"as if already divided; the model takes values from 0 to 255, divided by "
                                        r"255 as in training: pass the values before dividing \(e.g. x \* 255\)"):
        model.predict_proba(x[:6] / 255.0)
    with pytest.raises(UserError, match=r"holds values from -300 to -\d+; the model takes values from 0 to 255"):
        model.predict_proba(x[:6] - 300.0)


def _as_format_1(folder: Path) -> None:
    """Rewrite a one-model folder's card as a version before the scale and the digest were recorded
    wrote it."""
    card = json.loads((folder / "model.json").read_text())
    prep = card["preprocessing"]
    for key in ("scale", "impute"):
        del prep[key]
    prep["columns"] = [{"name": c["name"], "categories": c["categories"]} for c in prep["columns"]]
    card.pop("members", None)
    card.update(format_version=1, weights="model.pt")
    (folder / "model.json").write_text(json.dumps(card))


def _member_as_format_2(ensemble: Path, member: int, folder: Path) -> Path:
    """Member ``member`` of an ensemble folder on its own, as a folder of format 2 (before members
    were recorded) holds one model: its tensors without their ``members.<i>.`` prefix, a card
    without members and with that file's sha256. Written by hand, not by the package's code."""
    import hashlib

    shutil.copytree(ensemble, folder)
    prefix = f"members.{member}."
    state = torch.load(ensemble / "model.pt", weights_only=True)
    torch.save({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, folder / "model.pt")
    card = json.loads((folder / "model.json").read_text())
    del card["members"]
    card["format_version"] = 2
    card["weights"]["sha256"] = hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()
    (folder / "model.json").write_text(json.dumps(card))
    return folder


def test_an_ensemble_predicts_the_mean_of_its_fold_models(table_model, table_csv, tmp_path):
    """Each fold model, cut out of the ensemble's model.pt into a folder of the previous format (one
    model), loads and predicts; the ensemble's probabilities are their mean; and member i is the fold
    model that scored fold i's rows out of fold (label_issues.csv's predictions)."""
    from automl_noisy.data import load_data
    from automl_noisy.data.folds import pool_folds
    from automl_noisy.pipeline import read_pipeline_file

    card = json.loads((table_model / "model.json").read_text())
    assert card["format_version"] == 3 and card["networks"] == 2
    assert card["members"] == {"count": 2, "combine": "mean_probability", "held_out_folds": [1, 2], "of_folds": 2}
    metrics = json.loads((table_model / "metrics.json").read_text())
    assert metrics["model"] == "ensemble of 2 fold models" and metrics["validation"] == "2-fold out-of-fold"
    assert "the ensemble that ships is those models" in metrics["val_accuracy_note"]
    frame = pd.read_csv(table_csv)
    ensemble = automl_noisy.load(table_model)
    members = [automl_noisy.load(_member_as_format_2(table_model, i, tmp_path / f"member{i}")) for i in range(2)]
    assert all(len(m.ensemble.members) == 1 and m.card.members == 1 and len(m.networks) == 2 for m in members)
    probs = [m.predict_proba(frame) for m in members]
    assert not np.allclose(probs[0], probs[1], atol=1e-3)  # two models, not one twice
    np.testing.assert_allclose(ensemble.predict_proba(frame), (probs[0] + probs[1]) / 2, rtol=1e-6, atol=1e-7)
    data = load_data(read_pipeline_file(str(table_model / "pipeline.yaml"))[0].data)
    fold_of_row = dict(zip(np.concatenate([data.train_index, data.val_index]).tolist(), pool_folds(data).tolist()))
    issues = pd.read_csv(table_model / "label_issues.csv", dtype={"predicted_label": str})
    held_out = np.array([fold_of_row[i] for i in issues["index"]])
    assert set(held_out) == {0, 1} and len(issues) == 240
    for i, member in enumerate(members):
        rows = issues[held_out == i]
        assert (member.predict(frame.loc[rows["index"]]) == rows["predicted_label"]).all()


def test_a_format_1_card_still_loads_and_predicts_alike(table_model, table_csv, tmp_path):
    one = _member_as_format_2(table_model, 0, tmp_path / "member")
    folder = tmp_path / "old"
    shutil.copytree(one, folder)
    _as_format_1(folder)
    frame = pd.read_csv(table_csv)
    old = automl_noisy.load(folder)
    assert old.card.weights_sha256 is None and old.preprocessing.scale is None  # a table: no scale then either
    np.testing.assert_array_equal(old.predict_proba(frame), automl_noisy.load(one).predict_proba(frame))


def test_an_ensemble_card_under_an_older_format_is_one_line(table_model, tmp_path, capsys):
    """A format-2 card describes one model: two members' weights under such a card are refused,
    not read as one model."""
    folder = tmp_path / "copy"
    shutil.copytree(table_model, folder)
    _card(_set("format_version", 2))(folder)
    code, _, err = run(capsys, "predict", str(folder), "--data", "digits", "-o", str(tmp_path / "p.csv"))
    _one_error_line(code, err, "field members.count names 1 member(s), but", "holds the weights of 2")


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory) -> Path:
    """A small CNN trained one epoch on the built-in digits (pixels 0-16, divided by 16 in training)."""
    root = tmp_path_factory.mktemp("digits")
    cnn = Pipeline(model=ComponentSpec("cnn", {"channels": 8}), epochs=1)
    (root / "cnn.yaml").write_text(cnn.to_yaml())
    assert main(["train", str(root / "cnn.yaml"), "--data", "digits", "--cv", "1", "-o", str(root / "out")]) == 0
    return root / "out"


def test_digits_arrays_are_taken_in_the_sources_units(digits_model, tmp_path, capsys):
    """scikit-learn's own digits arrays (pixels 0-16), float or uint8, are predicted exactly as the
    built-in source's rows; arrays of other units are refused with the range and the division."""
    from sklearn.datasets import load_digits

    card = json.loads((digits_model / "model.json").read_text())
    assert card["preprocessing"]["scale"] == {"divide_by": 16.0, "range": [0.0, 16.0]}
    model = automl_noisy.load(digits_model)
    _, builtin = model.predict_source("digits")
    images = load_digits().images[:, None]
    np.testing.assert_array_equal(model.predict_proba(images), builtin)
    np.testing.assert_array_equal(model.predict_proba(images.astype(np.uint8)), builtin)
    np.savez(tmp_path / "digits.npz", X=images)
    code, _, err = run(capsys, "predict", str(digits_model), "--data", f"npz:{tmp_path / 'digits.npz'}",
                       "-o", str(tmp_path / "p.csv"))
    assert code == 0, err
    np.testing.assert_allclose(_predictions(tmp_path / "p.csv").filter(like="prob_").to_numpy(), builtin, atol=1e-8)
    with pytest.raises(UserError, match=r"values from 0 to 1, as if already divided; the model takes values from "
                                        r"0 to 16, divided by 16 as in training"):
        model.predict(images / 16)
    with pytest.raises(UserError, match=r"values from 0 to 255; the model takes values from 0 to 16"):
        model.predict(images * 255 / 16)
    np.savez(tmp_path / "scaled.npz", X=images / 16)
    code, _, err = run(capsys, "predict", str(digits_model), "--data", f"npz:{tmp_path / 'scaled.npz'}",
                       "-o", str(tmp_path / "q.csv"))
    _one_error_line(code, err, "as if already divided", "divided by 16")
    assert not (tmp_path / "q.csv").exists()
    old = tmp_path / "old"  # a format-1 card of digits: divided by 16 as its training did
    shutil.copytree(digits_model, old)
    _as_format_1(old)
    np.testing.assert_array_equal(automl_noisy.load(old).predict_proba(images), builtin)


def test_an_image_size_no_tensor_pins_is_checked_against_the_card(digits_model, tmp_path, capsys):
    """A CNN's weights fit any image size (adaptive pooling): the card's record of the size the
    weights were trained for catches an edited input shape."""
    folder = tmp_path / "copy"
    shutil.copytree(digits_model, folder)
    _card(_set("preprocessing", "input_shape", [1, 16, 16]))(folder)
    code, _, err = run(capsys, "predict", str(folder), "--data", "digits", "-o", str(tmp_path / "p.csv"))
    _one_error_line(code, err, "model.json", "preprocessing.input_shape [1, 16, 16] differs from weights.input_shape "
                    "[1, 8, 8]")


@pytest.mark.timeout(120)  # reading a FIFO would block: the test fails instead of hanging
def test_a_fifo_named_like_an_image_is_refused_by_predict(digits_model, tmp_path, capsys):
    from PIL import Image

    for where in ("top", "sub"):
        folder = tmp_path / where
        (folder / "class").mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(folder / "class" / "0.png")
        fifo = (folder if where == "top" else folder / "class") / "1.png"
        os.mkfifo(fifo)
        try:
            code, _, err = run(capsys, "predict", str(digits_model), "--data", f"folder:{folder}", "-o",
                               str(tmp_path / "p.csv"))
        finally:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # release a reader, if one was left waiting
            except OSError:
                pass
        _one_error_line(code, err, f"{fifo} is a FIFO (named pipe), not an image file")
    assert not (tmp_path / "p.csv").exists()


def test_imputed_model_fills_new_rows_as_training_did(table_csv, tmp_path, capsys):
    """--impute median: the training split's medians are in the card and fill new rows' gaps (a note
    says how many); a categorical gap is a category of its own."""
    frame = pd.read_csv(table_csv)
    gaps = frame.copy()
    gaps.loc[[3, 50, 70], "x1"] = np.nan
    gaps.loc[[5, 9], "colour"] = None
    gaps.to_csv(tmp_path / "gaps.csv", index=False)
    (tmp_path / "mlp.yaml").write_text(Pipeline(model=ComponentSpec("mlp", {"width": 32}), epochs=2).to_yaml())
    code, _, err = run(capsys, "train", str(tmp_path / "mlp.yaml"), "--data", str(tmp_path / "gaps.csv"), "--cv", "1",
                       "-o", str(tmp_path / "plain"))
    _one_error_line(code, err, "'x1' (3)", "'colour' (2)", "pass --impute median")
    code, _, err = run(capsys, "train", str(tmp_path / "mlp.yaml"), "--data", str(tmp_path / "gaps.csv"), "--cv", "1",
                       "--impute", "median", "-o", str(tmp_path / "out"))
    assert code == 0, err
    model = automl_noisy.load(tmp_path / "out")
    columns = {c.name: c for c in model.preprocessing.columns}
    train_rows = pd.read_csv(tmp_path / "out" / "label_issues.csv")["index"]
    assert columns["x1"].fill == pytest.approx(gaps.loc[train_rows, "x1"].median())
    assert columns["colour"].missing_category and model.preprocessing.impute == "median"
    code, _, err = run(capsys, "predict", str(tmp_path / "out"), "--data", str(tmp_path / "gaps.csv"), "-o",
                       str(tmp_path / "p.csv"))
    assert code == 0 and err.strip() == ("note: 3 missing value(s) filled with the training split's median of their "
                                         "column, as in training: 'x1' (3)"), err
    filled = gaps.assign(x1=gaps["x1"].fillna(columns["x1"].fill))
    np.testing.assert_allclose(_predictions(tmp_path / "p.csv").filter(like="prob_").to_numpy(),
                               model.predict_proba(filled), atol=1e-8)
