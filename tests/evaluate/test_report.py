"""evaluate_model on synthetic data with known answers; evaluate_run on a trained run folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cnnkit.errors import CnnkitError
from cnnkit.evaluate import evaluate_model, evaluate_run, format_report


class _Fixed(nn.Module):
    """Returns the logits stored in the first 'pixel' columns of the input: lets a test choose them."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, : self.k] + 0 * self.dummy


def _batches(logits: torch.Tensor, labels: torch.Tensor, bs: int = 7) -> list[tuple[torch.Tensor, torch.Tensor]]:
    x = logits[:, None, None, :]  # (N, 1, 1, K)
    return [(x[i : i + bs], labels[i : i + bs]) for i in range(0, len(x), bs)]


def test_evaluate_model_known_answers(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(60, 4, generator=gen) * 3
    y = torch.randint(0, 4, (60,), generator=gen)
    report = evaluate_model(_Fixed(4), _batches(z, y), class_names=list("abcd"), out=tmp_path, top_k=2)
    pred = z.argmax(1)
    assert report["n"] == 60
    assert report["accuracy"] == pytest.approx(float((pred == y).float().mean()))
    top2 = z.topk(2, dim=1).indices
    assert report["top_k_accuracy"] == pytest.approx(float((top2 == y[:, None]).any(1).float().mean()))
    assert report["nll"] == pytest.approx(float(torch.nn.functional.cross_entropy(z.double(), y)), rel=1e-9)
    cm = np.array(report["confusion_matrix"])
    assert cm.sum() == 60 and np.trace(cm) == int((pred == y).sum())
    assert set(report["per_class"]) == set("abcd")
    for name in ("confusion_matrix.png", "confusion_matrix.txt", "reliability.png", "most_confident_errors.png", "report.json"):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "report.json").read_text())["accuracy"] == report["accuracy"]
    txt = (tmp_path / "confusion_matrix.txt").read_text().splitlines()
    assert txt[0].split()[1:] == list("abcd") and len(txt) == 5
    text = format_report(report)
    assert "accuracy" in text and "top-2" in text and "Per class" in text
    json.dumps(report)  # JSON-able


def test_without_calibration_data_a_seeded_half_is_held_out(tmp_path: Path) -> None:
    """No calibration loader: n // 2 items are held out at random (seeded) for calibration, and every number
    in the report, coverage included, is measured on the other half only."""
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(61, 4, generator=gen) * 2
    y = torch.randint(0, 4, (61,), generator=gen)
    r = evaluate_model(_Fixed(4), _batches(z, y), conformal=0.2, temperature_scaling=True, write_sets=True, out=tmp_path)
    assert r["n"] == 31 and r["conformal"]["n_calibration"] == 30 and r["temperature_scaled"]["n_calibration"] == 30
    assert r["calibration"] == {
        "source": "held-out half of the test split", "n": 30, "seed": 0,
        "note": "calibrated on 30 held-out test items (a seeded random half); coverage and every other metric "
                "measured on the other 31",
    }
    # the sets file names each evaluated item by its index in the split: 31 distinct items, in order
    idx = [json.loads(line)["index"] for line in (tmp_path / "conformal_sets.jsonl").read_text().splitlines()]
    assert len(idx) == 31 and idx == sorted(set(idx)) and set(idx) <= set(range(61))
    keep = torch.tensor(idx)
    assert r["accuracy"] == pytest.approx(float((z[keep].argmax(1) == y[keep]).float().mean()))
    # the held-out half is the calibration data: the same split by hand gives the same threshold
    rest = torch.tensor(sorted(set(range(61)) - set(idx)))
    by_hand = evaluate_model(_Fixed(4), _batches(z[keep], y[keep]), calibration_loader=_batches(z[rest], y[rest]),
                             conformal=0.2)
    assert by_hand["conformal"]["qhat"] == r["conformal"]["qhat"]
    assert by_hand["calibration"]["note"] == "calibrated on the 30 items of the calibration data"
    text = format_report(r)
    assert "calibrated on 30 held-out test items" in text and "temperature scaling kept T=1: only 30" in text
    # another seed holds out another half
    other = evaluate_model(_Fixed(4), _batches(z, y), conformal=0.2, holdout_seed=1)
    assert other["n"] == 31 and (other["accuracy"], other["nll"]) != (r["accuracy"], r["nll"])


def test_calibration_argument_errors() -> None:
    z, y = torch.randn(10, 3), torch.randint(0, 3, (10,))
    with pytest.raises(CnnkitError, match="needs at least 2 labelled items"):
        evaluate_model(_Fixed(3), _batches(z[:1], y[:1]), conformal=0.5)
    with pytest.raises(CnnkitError, match="Expected 0 < alpha < 1"):
        evaluate_model(_Fixed(3), _batches(z, y), conformal=1.5, calibration_loader=_batches(z, y))
    with pytest.raises(CnnkitError, match="write_sets needs conformal"):
        evaluate_model(_Fixed(3), _batches(z, y), write_sets=True)


def test_conformal_and_temperature_in_report(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(1)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 5, (n,), generator=gen)
        z = torch.randn(n, 5, generator=gen)
        z[torch.arange(n), y] += 2.0
        return 4.0 * z, y  # over-confident by a factor 4

    zc, yc = draw(400)
    zt, yt = draw(600)
    r = evaluate_model(_Fixed(5), _batches(zt, yt), calibration_loader=_batches(zc, yc), temperature_scaling=True,
                       conformal=0.1, score="raps", write_sets=True, out=tmp_path)
    assert r["temperature"] > 2.0 and r["temperature"] == r["temperature_scaled"]["fitted"]
    assert r["temperature_scaled"]["nll"] < r["nll"] and r["temperature_scaled"]["reason"] is None
    assert r["calibration"]["note"] == "calibrated on the 400 items of the calibration data"
    cp = r["conformal"]
    assert cp["n_calibration"] == 400 and cp["score"] == "raps" and "k_reg" in cp
    assert cp["coverage"] >= 0.85  # 1 - alpha within binomial noise for n=600
    lines = (tmp_path / "conformal_sets.jsonl").read_text().splitlines()
    assert len(lines) == 600
    first = json.loads(lines[0])
    assert first["label"] == int(yt[0]) and first["covered"] == (first["label"] in first["set"])
    assert np.mean([json.loads(l)["covered"] for l in lines]) == pytest.approx(cp["coverage"])
    assert "Conformal prediction" in format_report(r)


def test_evaluate_run(trained_run: Path, tmp_path: Path) -> None:
    r = evaluate_run(trained_run, out=tmp_path / "ev", conformal=0.1, score="aps", temperature_scaling=True, write_sets=True)
    assert r["accuracy"] > 0.8  # ~150 steps of a tiny CNN on digits
    assert r["n"] == 449  # 25% of 1797 digits, the fixed test split
    assert r["conformal"]["coverage"] >= 0.85
    assert r["calibration"]["note"] == "calibrated on the 270 items of the validation split"
    assert (tmp_path / "ev" / "conformal_sets.jsonl").is_file()
    flip = evaluate_run(trained_run, out=tmp_path / "ev2", tta="flip")
    assert flip["tta"] == "flip" and 0 <= flip["accuracy"] <= 1
    default = evaluate_run(trained_run)
    assert (trained_run / "eval-test" / "reliability.png").is_file() and default["accuracy"] == r["accuracy"]


def test_replayed_preprocessing_matches_the_loaders(trained_run: Path) -> None:
    """evaluate_run converts raw images with model.json's preprocessing; the data pipeline's own test
    loader must give bit-identical inputs, hence the same logits."""
    from cnnkit.runs import load_model, load_run_data, split_batches

    loaded = load_model(trained_run)
    run = load_run_data(trained_run, loaded)
    ours = torch.cat([x for x, _ in split_batches(run.bundle.test, loaded.preprocessing, batch_size=100)])
    theirs = torch.cat([x for x, _ in run.bundle.test])
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_near_perfect_calibration_split_keeps_t1_in_the_report() -> None:
    gen = torch.Generator().manual_seed(4)
    y = torch.randint(0, 5, (300,), generator=gen)
    z = torch.zeros(300, 5)
    z[torch.arange(300), y] = 4.0 + torch.rand(300, generator=gen) * 3  # never wrong
    zt, yt = z.clone(), y.clone()
    zt[:6, 0], yt[:6] = 20.0, 1  # six confident test errors: a tiny T would make them catastrophic
    r = evaluate_model(_Fixed(5), _batches(zt, yt), calibration_loader=_batches(z, y), temperature_scaling=True)
    ts = r["temperature_scaled"]
    assert r["temperature"] == 1.0 and ts["fitted"] is None and ts["nll"] == pytest.approx(r["nll"])
    assert ts["reason"].startswith("the model makes 0 errors on the 300 calibration items")
    assert "temperature scaling kept T=1: the model makes 0 errors" in format_report(r)


def test_quickstart_run_without_validation_split(run_without_val: Path, tmp_path: Path) -> None:
    """The README's `cnnkit evaluate RUN --conformal 0.1` on a run trained like the Quickstart (digits,
    no validation split): half of the 449 test items calibrate, the other half is measured."""
    from cnnkit.cli import main

    r = evaluate_run(run_without_val, out=tmp_path / "ev", conformal=0.1, temperature_scaling=True, write_sets=True)
    assert r["n"] == 225 and r["conformal"]["n_calibration"] == 224
    assert r["calibration"]["note"] == (
        "calibrated on 224 held-out test items (a seeded random half); coverage and every other metric measured "
        "on the other 225")
    assert r["temperature_scaled"]["n_calibration"] == 224
    assert r["conformal"]["coverage"] >= 0.8  # 1 - alpha within binomial noise for n=225
    assert len((tmp_path / "ev" / "conformal_sets.jsonl").read_text().splitlines()) == 225
    assert json.loads((tmp_path / "ev" / "report.json").read_text())["calibration"]["n"] == 224
    assert evaluate_run(run_without_val, out=tmp_path / "ev2", temperature_scaling=True)["calibration"]["note"] == (
        "calibrated on 224 held-out test items (a seeded random half); every metric measured on the other 225")
    assert evaluate_run(run_without_val, out=tmp_path / "ev3")["n"] == 449  # nothing held out when not needed
    assert main(["evaluate", str(run_without_val), "--conformal", "0.1", "--out", str(tmp_path / "ev4")]) == 0


def test_evaluate_run_errors(trained_run: Path) -> None:
    with pytest.raises(CnnkitError, match="the validation split is the calibration data"):
        evaluate_run(trained_run, split="val", conformal=0.1)
    with pytest.raises(CnnkitError, match="Unknown split"):
        evaluate_run(trained_run, split="dev")
    with pytest.raises(CnnkitError, match="Unknown test-time augmentation"):
        evaluate_run(trained_run, tta="rotate")
    with pytest.raises(CnnkitError, match="did you mean 'aps'"):
        evaluate_run(trained_run, conformal=0.1, score="apss")
    with pytest.raises(CnnkitError, match="too small"):
        evaluate_run(trained_run, conformal=0.001)  # 270 calibration items need alpha >= 1/271
    with pytest.raises(CnnkitError, match="run folder not found"):
        evaluate_run(trained_run / "nope")


@pytest.mark.slow  # reads and resizes all 70,000 Fashion-MNIST images (~15 s)
def test_evaluate_on_another_data_set(trained_run: Path, tmp_path: Path) -> None:
    """data=NAME evaluates on another data set with the same number of classes, converted with the
    model's recorded preprocessing (here Fashion-MNIST, resized to the digits model's 8x8 input)."""
    from cnnkit.data import DATASETS

    if DATASETS.get("fashion-mnist").locate() is None:
        pytest.skip("Fashion-MNIST is not installed")
    r = evaluate_run(trained_run, data="fashion-mnist", out=tmp_path)
    assert r["data"] == "fashion-mnist" and r["n"] == 10000
    assert 0.0 <= r["accuracy"] < 0.5  # a digits model knows nothing about clothes
