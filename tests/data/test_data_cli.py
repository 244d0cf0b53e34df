"""The data flags through the command line: searches over an image folder and a CSV file, and one
line + exit 2 for each malformed input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from automl_noisy.cli import main

QUICK = ["--executor", "local", "--space", "quick", "--trials", "2", "--no-progress"]


def test_importing_data_stays_light():
    code = ("import sys, automl_noisy.data\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'PIL', 'pandas', 'pyarrow', 'sklearn', 'optuna', 'ray')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_search_over_an_image_folder(image_folder, tmp_path, capsys):
    root = image_folder({"cat": 12, "dog": 12, "owl": 12}, gray=("owl",))
    db = f"sqlite:///{tmp_path}/img.db"
    code = main(["search", "--data", f"folder:{root}", "--image-size", "8", "--noise", "symmetric:0.2",
                 "--storage", db, *QUICK])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "2 trials (2 complete" in out and "best trial" in out
    import optuna

    study = optuna.load_study(study_name=optuna.get_all_study_names(db)[0], storage=db)
    assert study.user_attrs["data"]["options"] == {"image_size": 8}


def test_search_and_train_over_a_csv_with_categories(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 150
    colour = rng.choice(["red", "green", "blue"], size=n)
    size = rng.normal(size=n)
    label = np.where((colour == "red") | (size > 1), "yes", "no")
    pd.DataFrame({"size": size, "colour": colour, "noise": rng.normal(size=n), "label": label}).to_csv(
        tmp_path / "my.csv", index=False)
    db = f"sqlite:///{tmp_path}/csv.db"
    code = main(["search", "--data", f"csv:{tmp_path / 'my.csv'}", "--features", "size,colour", "--storage", db,
                 *QUICK])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert main(["export", "--storage", db, "-o", str(tmp_path / "best.yaml")]) == 0
    assert main(["train", str(tmp_path / "best.yaml"), "-o", str(tmp_path / "out"), "--epochs", "1"]) == 0
    out, err = capsys.readouterr()
    assert "val_accuracy" in out, err
    import yaml

    data = yaml.safe_load((tmp_path / "best.yaml").read_text())["pipeline"]["data"]
    assert data["options"] == {"columns": ["size", "colour"]}


def test_train_a_preset_with_real_noisy_labels(cifar_root, tmp_path, capsys):
    root = cifar_root("CIFAR10", n_train=150, n_test=30)
    clean = np.arange(150) % 10
    torch.save({"clean_label": clean, "worse_label": (clean + (np.arange(150) % 4 == 0)) % 10}, tmp_path / "n.pt")
    code = main(["train", "dividemix", "--data", f"torchvision:CIFAR10:{root}",
                 "--labels", f"{tmp_path}/n.pt:worse_label", "--epochs", "1", "-o", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "test_accuracy" in out  # test labels are the source's, clean


@pytest.fixture
def inputs(tmp_path, image_folder, cifar_root):
    """Malformed inputs, one per user mistake."""
    empty = image_folder({"a": 3, "b": 3}, name="empty")
    (empty / "c").mkdir()
    corrupt = image_folder({"a": 3, "b": 3}, name="corrupt")
    (corrupt / "a" / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    cifar = cifar_root("CIFAR10", n_train=150, n_test=30)
    torch.save({"clean_label": np.arange(150) % 10, "aggre_label": np.arange(150) % 10}, tmp_path / "n.pt")
    np.save(tmp_path / "short.npy", np.zeros(10, dtype=np.int64))
    table = pd.DataFrame({"a": np.arange(90.0), "who": [f"p{i}" for i in range(90)], "label": np.arange(90) % 3})
    table.to_csv(tmp_path / "t.csv", index=False)
    return {"empty": empty, "corrupt": corrupt, "cifar": cifar, "dir": tmp_path}


CASES = {
    "empty class folder": (lambda f: ["--data", f"folder:{f['empty']}"], "class folder {empty}/c has no images"),
    "corrupt image": (lambda f: ["--data", f"folder:{f['corrupt']}"], "cannot read image file {corrupt}/a/bad.jpg"),
    "missing torchvision files": (lambda f: ["--data", f"torchvision:CIFAR100:{f['dir']}"],
                                  "CIFAR100 not found under {dir}: expected {dir}/cifar-100-python"),
    "bad label key": (lambda f: ["--data", f"torchvision:CIFAR10:{f['cifar']}", "--labels", f"{f['dir']}/n.pt:worse"],
                      "has no key 'worse'; its keys: clean_label, aggre_label"),
    "label length mismatch": (lambda f: ["--data", f"torchvision:CIFAR10:{f['cifar']}", "--labels",
                                         f"{f['dir']}/short.npy"], "has 10 labels but"),
    "unknown feature column": (lambda f: ["--data", f"csv:{f['dir']}/t.csv", "--features", "a,b"],
                               "feature column(s) 'b' not in"),
    "too many categories": (lambda f: ["--data", f"csv:{f['dir']}/t.csv"], "'who'"),
    "option of another source": (lambda f: ["--data", "digits", "--image-size", "16"],
                                 "image_size (--image-size) do not apply to digits data"),
    "old synthetic flag": (lambda f: ["--data", "synthetic", "--features", "8"],
                           "columns (--features) do not apply to synthetic data"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_inputs_give_one_line_and_exit_2(case, inputs, capsys):
    argv, expected = CASES[case]
    code = main(["search", *argv(inputs), "--storage", f"sqlite:///{inputs['dir']}/e.db", *QUICK])
    out, err = capsys.readouterr()
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert expected.format(**inputs) in lines[0]
