"""Every image classifier in the registry trains from the command line, chosen with ``--set model.name``.

One optimizer step per model through ``cnnkit.cli.main(["train", ...])``, the path a user takes: the
default config (LeNet-5's ``variant: modern``) must not leak into another model, and the data pipeline must
fit the embedded digits to the model's input. A newly registered classifier is tested for free; the table
below only shrinks models whose builder or input size allows it, so each run takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnkit.cli import main
from cnnkit.models import list_models, model_info

# Settings that make a model small and fast; the data is fitted to the (smaller) input size.
SMALL: dict[str, list[str]] = {
    "alexnet": ["data.input_size=[67, 67]"],
    "convnextv2_atto": ["data.input_size=[32, 32]"],
    "googlenet": ["data.input_size=[80, 80]"],
    "mobilenet_v1": ["model.width_multiplier=0.25", "model.resolution=64"],
    "resnet18": ["data.input_size=[32, 32]"],
    "resnet34": ["data.input_size=[32, 32]"],
    "resnet50": ["data.input_size=[32, 32]"],
    "vgg11": ["data.input_size=[32, 32]"],
    "vgg16": ["data.input_size=[32, 32]"],
}
# Over ~5 s each on 2 CPU cores even when small: 60-130 million weights (fully connected 4096-wide layers).
SLOW = {"alexnet", "vgg11", "vgg16"}

ONE_STEP = ["train.epochs=1", "data.limit_train=8", "data.batch_size=8", "data.limit_test=8", "data.eval_batch_size=8"]


def _image_classifiers() -> list[str]:
    names = []
    for name in list_models():
        info = model_info(name)
        if info["task"] == "classification" and len(info["input_size"]) == 3:
            names.append(name)
    return names


def test_the_list_holds_the_image_classifiers() -> None:
    names = _image_classifiers()
    assert {"lenet5", "alexnet", "vgg16", "resnet20", "resnet50", "googlenet", "mobilenet_v1", "nin", "airbench_fmnist"} <= set(names)
    assert "textcnn" not in names and "unet" not in names  # token sequences; segmentation


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in _image_classifiers()]
)
def test_trains_one_step_from_the_command_line(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--set", f"model.name={name}"]
    for setting in ONE_STEP + SMALL.get(name, []):
        args += ["--set", setting]
    code = main([*args, "--out", str(tmp_path / "run"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    build = json.loads((tmp_path / "run" / "model.json").read_text())["build"]
    assert build["name"] == name
    assert name == "lenet5" or "variant" not in build  # the default LeNet-5's variant did not leak
