"""A received run folder is data: no file outside it is read, sizes are bounded before allocation, and its
strings reach the terminal sanitised (README "Security")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from cnnkit.cli import main
from cnnkit.data.preprocess import make_preprocessing
from cnnkit.errors import CnnkitError
from cnnkit.runs import load_model, save_model

SECRET = "root:SECRET-HASH:19000:0:99999:7:::"
# A terminal title change (OSC 0), a screen clear (CSI 2J), and rich markup.
EVIL = ["\x1b]0;owned\x07cat", "\x1b[2Jdog", "[bold red]bird[/bold red]"]


def _save_run(path: Path, *, class_names: list[str] | None = None) -> Path:
    from cnnkit.models import build_model

    build = {"name": "lenet5", "variant": "modern", "num_classes": 3}
    torch.manual_seed(0)
    pre = make_preprocessing(source_shape=(1, 32, 32), input_shape=(1, 32, 32), fit="auto", mean=[0.5], std=[0.5])
    save_model(path, build_model(build), build=build, preprocessing=pre, class_names=class_names or ["a", "b", "c"])
    return path


def _edit_model_json(run: Path, **changes: object) -> None:
    info = json.loads((run / "model.json").read_text())
    info.update(changes)
    (run / "model.json").write_text(json.dumps(info))


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return _save_run(tmp_path / "run")


# ------------------------------------------------------------------------- paths stay inside the run folder


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_spec_path_outside_the_run_folder_is_refused_unread(run: Path, tmp_path: Path, how: str) -> None:
    outside = tmp_path / "shadow"
    outside.write_text(SECRET + "\n")  # YAML would parse it and quote the line in its error
    spec = {"absolute": str(outside), "dotdot": "../shadow", "symlink": "spec.yaml"}[how]
    if how == "symlink":
        (run / "spec.yaml").symlink_to(outside)
    _edit_model_json(run, build={"spec": spec})
    with pytest.raises(CnnkitError, match="not a file inside the run folder") as err:
        load_model(run)
    assert "SECRET" not in str(err.value)


def test_the_cli_refuses_an_outside_spec_in_one_line(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "shadow").write_text(SECRET + "\n")
    _edit_model_json(run, build={"spec": str(tmp_path / "shadow")})
    assert main(["export", str(run), "--no-check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnkit: error: ") and err.count("\n") == 1 and "SECRET" not in err


def test_a_spec_file_inside_the_run_folder_is_used(tmp_path: Path) -> None:
    spec = {"input": [1, 8, 8], "layers": [{"conv2d": {"out_channels": 2, "kernel_size": 3}}, {"flatten": {}},
                                           {"linear": {"out_features": 3}}]}  # fmt: skip
    from cnnkit.models import build_model

    run = tmp_path / "run"
    model = build_model({"spec": spec})
    save_model(run, model, build={"spec": spec}, preprocessing={"input_shape": [1, 8, 8]})
    (run / "arch").mkdir()
    (run / "arch" / "spec.json").write_text(json.dumps(spec))
    _edit_model_json(run, build={"spec": "arch/spec.json"})
    loaded = load_model(run)
    torch.testing.assert_close(loaded.model.state_dict(), model.state_dict())


def test_yaml_errors_quoting_a_spec_are_sanitised(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run / "spec.yaml").write_text("input: [1, 8\n\x1b]0;owned\x07: [\n")
    _edit_model_json(run, build={"spec": "spec.yaml"})
    assert main(["export", str(run), "--no-check"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and err.count("\n") == 1


# ------------------------------------------------------------------------ sizes bounded before allocation

_PEAK_RSS = """
import json, resource, sys
from cnnkit.errors import CnnkitError
from cnnkit.runs import load_model
import cnnkit.models, safetensors.torch  # imported before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_model(sys.argv[1])
    message = None
except CnnkitError as exc:
    message = str(exc)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grew_kb": after - before, "message": message}))
"""


def test_six_million_classes_are_refused_without_a_large_allocation(run: Path) -> None:
    # lenet5 with 6,000,000 classes would allocate a 84 x 6e6 float32 matrix (2 GB) before any check.
    _edit_model_json(run, build={"name": "lenet5", "variant": "modern", "num_classes": 6_000_000})
    proc = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(run)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["grew_kb"] < 100_000, result  # peak RSS grew by less than 100 MB
    assert result["message"] is not None and "num_classes" in result["message"]


def test_the_weight_limit_is_checked_on_the_meta_device(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNKIT_MAX_PARAMS", "50000")  # lenet5 holds about 60,000 weights
    with pytest.raises(CnnkitError, match="CNNKIT_MAX_PARAMS"):
        load_model(run)
    monkeypatch.setenv("CNNKIT_MAX_PARAMS", "1000000")
    assert load_model(run).model is not None


def test_a_huge_input_shape_in_metadata_is_refused(run: Path) -> None:
    _edit_model_json(run, input_shape=[3, 100_000, 100_000])
    with pytest.raises(CnnkitError, match="input_shape"):
        load_model(run)


def test_a_spec_with_huge_layers_is_refused_before_allocation(tmp_path: Path) -> None:
    run = _save_run(tmp_path / "run")
    # 12,288 x 100,000 weights: 4.9 GB of float32.
    spec = {"input": [3, 64, 64], "layers": [{"flatten": {}}, {"linear": {"out_features": 100_000}}]}
    _edit_model_json(run, build={"spec": spec})
    with pytest.raises(CnnkitError, match="weights, more than the limit"):
        load_model(run)
    spec = {"input": [3, 64, 64], "layers": [{"upsample": {"scale_factor": 400}}]}  # 3 x 25,600^2 outputs
    _edit_model_json(run, build={"spec": spec})
    with pytest.raises(CnnkitError, match="values per sample"):
        load_model(run)


def test_a_weights_file_with_foreign_tensors_is_refused_before_loading(run: Path) -> None:
    tensors = {"output.weight": torch.zeros(3, 84), "payload": torch.zeros(10)}
    save_file(tensors, str(run / "model.safetensors"))
    with pytest.raises(CnnkitError, match="'payload': not in the model"):
        load_model(run)


# -------------------------------------------------------------------------- strings reach the terminal safe


def test_predict_prints_class_names_sanitised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _save_run(tmp_path / "run", class_names=EVIL)
    np.save(tmp_path / "x.npy", np.zeros((32, 32), dtype=np.uint8))
    assert main(["predict", str(run), str(tmp_path / "x.npy")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "cat" in out and "dog" in out and "[bold red]bird[/bold red]" in out


def test_the_evaluation_report_prints_class_names_as_text() -> None:
    from cnnkit.evaluate import evaluate_model, format_report

    class Fixed(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1)[:, :3]

    z = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    y = torch.arange(12) % 3
    report = evaluate_model(Fixed(), [(z[:, None, None, :], y)], class_names=EVIL)
    text = format_report(report)
    assert "\x1b" not in text and "\x07" not in text
    assert "[bold red]bird[/bold red]" in text  # markup shown as typed, not rendered (and not eaten)


def test_the_audit_table_prints_layer_names_as_text() -> None:
    from cnnkit.explain import format_audit

    result = {"shift_mode": "circular", "max_shift": 2, "shifts": 2, "n_images": 4, "consistency": 1.0,
              "accuracy": 1.0, "accuracy_shifted": 1.0,
              "layers": [{"layer": "\x1b]0;owned\x07conv[red]x[/red]", "type": "Conv2d", "stride": 1, "shape": [4, 8, 8],
                          "error_aligned": 0.0, "error_one_pixel": None}]}  # fmt: skip
    text = format_audit(result)
    assert "\x1b" not in text and "\x07" not in text and "conv[red]x[/red]" in text.replace("\n", "")


def test_cli_errors_quoting_metadata_are_sanitised(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnkit import cli

    def handler(args: object) -> int:
        raise CnnkitError("model.json names class '\x1b]0;owned\x07x'\nsecond line")

    monkeypatch.setattr(cli, "_cmd_models", handler)
    assert main(["models"]) == 2
    err = capsys.readouterr().err
    assert err == "cnnkit: error: model.json names class 'x' second line\n"


def test_no_pickle_in_the_package() -> None:
    files = list((Path(__file__).resolve().parents[1] / "src" / "cnnkit").rglob("*.py"))
    assert len(files) > 50
    for path in files:
        text = path.read_text(encoding="utf-8")
        for needle in ("import pickle", "torch.load(", "allow_pickle=True", "weights_only=False"):
            assert needle not in text, f"{path}: {needle}"
