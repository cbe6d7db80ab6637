"""Runs beyond image classification from the command line, on data the tests generate: a text recipe
(train, evaluate, predict --text, explain, resume), multi-label text with pretrained vectors, and
multi-label and regression image runs."""

from __future__ import annotations

import csv
import importlib.util
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.cli import main

POS, NEG = "good great superb".split(), "bad awful dull".split()
FILLER = "the a movie film plot was is it".split()
FAST = ["train.threads=1", "model.embed_dim=16", "model.num_filters=8", "data.max_length=16", "data.batch_size=16"]


def _sentence(rng: random.Random, words: list[str]) -> str:
    s = [rng.choice(FILLER) for _ in range(rng.randint(4, 9))]
    for w in rng.sample(words, 2):
        s.insert(rng.randrange(len(s)), w)
    return " ".join(s)


def _text_folder(root: Path, n: int = 40) -> Path:
    rng = random.Random(0)
    for c, words in (("neg", NEG), ("pos", POS)):
        (root / c).mkdir(parents=True)
        for i in range(n):
            (root / c / f"{i}.txt").write_text(_sentence(rng, words))
    return root


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(list(args))
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def _sets(*items: str) -> list[str]:
    return [a for s in items for a in ("--set", s)]


def test_text_recipe_train_evaluate_predict_explain_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, run = _text_folder(tmp_path / "corpus"), tmp_path / "run"
    # The recipe (Adadelta, 3 x 100 maps; 64-d vectors to be quick), on a short corpus.
    out = _cli(capsys, "train", "configs/text-cnn.yaml", *_sets(f"data.root={data}", "train.epochs=6", "data.max_length=16", "model.embed_dim=64"),
               "--out", str(run), "--quiet")
    summary = json.loads((run / "summary.json").read_text())
    assert "test accuracy" in out and summary["test_accuracy"] >= 0.9
    info = json.loads((run / "model.json").read_text())
    assert info["kind"] == "text" and info["data_meta"]["vocab"]["itos"][:2] == ["<pad>", "<unk>"]
    assert "vocab" not in info["build"] and info["build"]["seq_len"] == 16

    report = json.loads(_cli(capsys, "evaluate", str(run), "--json"))
    assert report["metrics"]["accuracy"] == pytest.approx(summary["test_accuracy"])

    lines = tmp_path / "inputs.txt"
    lines.write_text("the film was superb and great\n\nawful dull movie\n")
    out = _cli(capsys, "predict", str(run), str(lines), "--text", "a great good film")
    assert out.splitlines()[0].startswith("text[0]: pos")
    assert f"{lines}:1: pos" in out and f"{lines}:3: neg" in out

    out = _cli(capsys, "explain", str(run), "--text", "the plot was dull", "--method", "integrated-gradients",
               "--out", str(tmp_path / "ex"))
    assert "[[dull" in out and (tmp_path / "ex" / "000-tokens.png").is_file()
    rec = json.loads((tmp_path / "ex" / "token_attributions.json").read_text())["items"][0]
    assert rec["tokens"] == ["the", "plot", "was", "dull"] and max(rec["scores"], key=abs) == rec["scores"][3]

    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnxscript"):  # the export extra
        out = _cli(capsys, "export", str(run), "--out", str(tmp_path / "text.onnx"))
        assert "onnxruntime matches PyTorch" in out

    _cli(capsys, "train", "--resume", str(run), *_sets("train.epochs=7"), "--quiet")
    again = json.loads((run / "summary.json").read_text())
    assert again["epochs"] == 7 and again["resumed_from"]


def test_text_multilabel_with_pretrained_vectors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(1)
    path = tmp_path / "train.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for _ in range(160):
            labels = [c for c in ("pos", "neg") if rng.random() < 0.5] or ["none"]
            words = (POS if "pos" in labels else []) + (NEG if "neg" in labels else []) or FILLER[:3]
            w.writerow([_sentence(rng, words), ";".join(labels)])
    vectors = tmp_path / "vectors.txt"
    g = np.random.default_rng(0)
    vectors.write_text("".join(f"{word} {' '.join(f'{v:.3f}' for v in g.normal(size=16))}\n" for word in POS + NEG + FILLER))
    run = tmp_path / "run"
    out = _cli(capsys, "train", *_sets("task=multilabel", "model.name=textcnn", "model.mode=non-static",
                                       f"model.embeddings={vectors}", "data.name=text-csv", f"data.root={path}",
                                       "data.val_fraction=0.2", "train.epochs=15", "optim.name=adam", "optim.lr=0.005", *FAST),
               "--out", str(run), "--quiet")
    summary = json.loads((run / "summary.json").read_text())
    assert "mAP" in out and summary["test_map"] > 0.8 and summary["test_f1_macro"] > 0.6
    info = json.loads((run / "model.json").read_text())
    assert len(info["task"]["thresholds"]) == 3 and "embeddings" not in info["build"]
    vectors.unlink()  # the run folder must not need the vectors file
    out = _cli(capsys, "predict", str(run), "--text", "good great superb", "--json")
    assert "pos" in json.loads(out)[0]["labels"]


def _shapes(root: Path, n: int = 96) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir()
    rows = ["file,label"]
    for i in range(n):
        img, labels = rng.integers(0, 60, (12, 12)).astype(np.uint8), []
        if rng.random() < 0.5:
            img[:6] = 250
            labels.append("top")
        if rng.random() < 0.5:
            img[:, :6] = 250
            labels.append("left")
        Image.fromarray(img).save(root / f"{i}.png")
        rows.append(f"{i}.png,{';'.join(labels) or 'none'}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


IMAGE_FAST = ["train.threads=1", "optim.name=adam", "optim.lr=0.003", "data.val_fraction=0.2", "train.epochs=6"]


def test_image_multilabel_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, run = _shapes(tmp_path / "shapes"), tmp_path / "run"
    out = _cli(capsys, "train", *_sets("task=multilabel", "data.name=image-csv", f"data.root={data}", *IMAGE_FAST),
               "--out", str(run), "--quiet")
    summary = json.loads((run / "summary.json").read_text())
    assert "test macro F1" in out and summary["test_f1_macro"] > 0.5 and summary["test_map"] > 0.6
    report = json.loads(_cli(capsys, "evaluate", str(run), "--json"))
    assert report["metrics"]["map"] == pytest.approx(summary["test_map"])
    assert report["metrics"]["f1_macro"] == pytest.approx(summary["test_f1_macro"])
    out = _cli(capsys, "predict", str(run), str(data / "0.png"))
    assert out.startswith(f"{data / '0.png'}: ")


def test_image_regression_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(240, 1, 10, 10, generator=g) * 0.3
    y = torch.rand(240, generator=g)
    for i in range(240):
        x[i, 0, : int(y[i] * 10)] += 0.6
    np.savez(tmp_path / "reg.npz", x_train=x.clamp(0, 1).numpy(), y_train=y.numpy())
    run = tmp_path / "run"
    out = _cli(capsys, "train", *_sets("task=regression", "data.name=npz", f"data.root={tmp_path / 'reg.npz'}", *IMAGE_FAST),
               "--out", str(run), "--quiet")
    summary = json.loads((run / "summary.json").read_text())
    assert "test RMSE" in out and summary["test_rmse"] < 0.2 and summary["test_r2"] > 0.5 and summary["monitor"] == "val_rmse"
    report = json.loads(_cli(capsys, "evaluate", str(run), "--json"))
    assert report["metrics"]["rmse"] == pytest.approx(summary["test_rmse"], rel=1e-5)
    np.save(tmp_path / "one.npy", x[0].clamp(0, 1).numpy())
    _cli(capsys, "predict", str(run), str(tmp_path / "one.npy"), "--output", str(tmp_path / "p.csv"))
    with open(tmp_path / "p.csv") as f:
        row = next(csv.DictReader(f))
    assert abs(float(row["label"]) - float(y[0])) < 0.3


def test_bad_text_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _text_folder(tmp_path / "corpus", n=3)
    (data / "pos" / "latin1.txt").write_bytes(b"caf\xe9 au lait")
    code = main(["train", "configs/text-cnn.yaml", *_sets(f"data.root={data}"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "latin1.txt is not UTF-8" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_targets_that_do_not_fit_the_task_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _shapes(tmp_path / "shapes", n=24)
    code = main(["train", *_sets("data.name=image-csv", f"data.root={data}", "train.epochs=1"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "task classification reads class indices" in err and "data.targets" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()
