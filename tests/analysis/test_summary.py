"""summarize(): shapes, parameters, FLOPs against hand counts, stride fit, JSON/table output."""

import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnkit.analysis import FLOP_CONVENTION, parse_input_shape, summarize, summary_for
from cnnkit.errors import CnnkitError, ConfigError, UnknownNameError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "models"


def test_flops_params_and_memory_by_hand():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # 8x8 out
        nn.ReLU(),
        nn.MaxPool2d(2),  # 4x4
        nn.Conv2d(8, 8, 3, padding=1, groups=4),  # grouped: each output sees 2 input channels
        nn.Flatten(),
        nn.Linear(8 * 16, 10),
    )
    s = summarize(net, (3, 8, 8))
    assert s.row("0").flops == 2 * (8 * 8 * 8) * (3 * 3 * 3)  # 2 x outputs x MACs per output
    assert s.row("1").flops == 0 and s.row("2").flops == 0  # activations and pooling not counted
    assert s.row("3").flops == 2 * (8 * 4 * 4) * (2 * 3 * 3)
    assert s.row("5").flops == 2 * 128 * 10
    assert s.total_flops == sum(r.flops for r in s.layers) == 27_648 + 4_608 + 2_560
    assert s.row("0").params == 3 * 8 * 9 + 8 and s.row("3").params == 8 * 2 * 9 + 8
    assert s.total_params == sum(p.numel() for p in net.parameters()) == sum(r.params for r in s.layers)
    assert s.row("0").output_shape == (8, 8, 8) and s.row("4").output_shape == (128,)
    assert s.row("0").activation_bytes == 8 * 8 * 8 * 4  # float32
    assert "2 x multiply-accumulates" in FLOP_CONVENTION


def test_transposed_conv_and_depthwise_flops():
    s = summarize(nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1), (4, 5, 5))
    # every input pixel scatters a 4x4 kernel to each output channel: 2 x (5*5) x 4 x 2 x 16
    assert s.layers[0].flops == 2 * 25 * 4 * 2 * 16
    assert s.layers[0].output_shape == (2, 10, 10)
    s = summarize(nn.Conv1d(6, 6, 5, groups=6), (6, 20))
    assert s.layers[0].flops == 2 * 6 * 16 * 5


def test_spec_model_summary_and_json():
    s = summary_for(CONFIGS / "lenet5.yaml")
    assert s.input_shape == (1, 32, 32)
    d = json.loads(json.dumps(s.to_dict()))
    assert d["total_params"] == 61_706
    for row in d["layers"]:
        assert {"name", "type", "output_shape", "params", "flops", "receptive_field"} <= set(row)
    # C1: 6 x 28 x 28 outputs x 25 MACs; C3: 16 x 10 x 10 x 150; C5: 120 x 150... x 16 x 25; F6; output
    hand = 2 * (6 * 28 * 28 * 25 + 16 * 10 * 10 * 6 * 25 + 120 * 16 * 25 + 120 * 84 + 84 * 10)
    assert d["total_flops"] == hand
    text = s.to_text()
    assert "total" in text and "61,706" in text
    assert type(s.to_table()).__name__ == "Table"


def test_summary_for_registered_model_and_errors():
    s = summary_for("dqn")
    assert s.total_params == 1_693_362
    assert [r.output_shape for r in s.layers if r.type == "Conv2d"] == [(32, 20, 20), (64, 9, 9), (64, 7, 7)]
    assert summary_for("tdnn", "16,20").row("features.2").output_shape == (3, 14)
    with pytest.raises(UnknownNameError, match="did you mean"):
        summary_for("dqm")
    with pytest.raises(ConfigError, match="Expected an input shape"):
        summary_for("dqn", "4,eighty,84")
    with pytest.raises(ConfigError, match="does not accept input shape"):
        summary_for("dqn", "3,84,84")
    with pytest.raises(CnnkitError, match="not found"):
        summary_for("missing-spec.yaml")


def test_integer_token_input():
    s = summary_for("textcnn")
    assert s.input_shape == (56,)
    assert s.row("convs.0").receptive_field == [{"size": 3, "jump": 1, "start": 1}]
    assert s.row("fc").receptive_field_note.startswith("global")


def test_parse_input_shape():
    assert parse_input_shape("3,224,224") == (3, 224, 224)
    assert parse_input_shape([1, 28, 28]) == (1, 28, 28)
    with pytest.raises(ConfigError):
        parse_input_shape("0,3")


def test_stride_fit_error_names_layer_numbers_and_paddings():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3, stride=3))  # 11 -> 9 ... (9 - 3)/3 fits
    summarize(net, (1, 11, 11))
    with pytest.raises(ConfigError) as exc:
        summarize(net, (1, 13, 13))  # second conv sees 11: (11 - 3 + 0)/3 + 1 = 3.67
    msg = str(exc.value)
    assert "layer 1 (Conv2d)" in msg
    assert "(11 - 3 + 2*0)/3 + 1 = 3.66667" in msg
    assert "paddings that fit: 2" in msg  # (11 - 3 + 4)/3 = 4


def test_stride_fit_no_padding_fits_suggests_sizes():
    with pytest.raises(ConfigError, match=r"no padding fits .* layer input sizes that fit: 9, 11"):
        summarize(nn.Conv2d(1, 1, 3, stride=2), (1, 10, 10))  # (10 - 3)/2: 7 + 2P is always odd


def test_allow_floor_warns_instead():
    net = nn.Conv2d(1, 1, 3, stride=2)
    with pytest.warns(UserWarning, match="strides don't fit"):
        s = summarize(net, (1, 10, 10), allow_floor=True)
    assert s.layers[0].output_shape == (1, 4, 4)  # what torch computes (floor)


def test_leftover_inside_padding_and_ceil_mode_are_notes():
    # 3x3 stride 2 padding 1 on an even input: the floor drops only the right padding column.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = summarize(
            nn.Sequential(nn.Conv2d(1, 1, 3, 2, 1), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Conv2d(1, 1, 1, 2)), (1, 8, 8)
        )  # 8 -> 4 -> 2 (ceil) -> (2 - 1)/2 + 1 = 1.5: a 1x1 stride-2 conv (ResNet's projection)
    assert any("only right padding" in n for n in s.layers[0].notes)
    assert any("ceil_mode" in n for n in s.layers[1].notes)
    assert any("kernel smaller than stride" in n for n in s.layers[2].notes)


def test_model_mode_restored():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5))
    net.train()
    summarize(net, (1, 5, 5))
    assert net.training and all(m.training for m in net.modules())
    stats = net[1].running_mean.clone()
    summarize(net, (1, 5, 5))
    torch.testing.assert_close(net[1].running_mean, stats)  # summaries run in eval mode


def test_rows_are_leaf_modules_in_call_order():
    spec = {
        "input": [3, 8, 8],
        "layers": [{"parallel": {"merge": "concat", "branches": [[{"conv2d": {"out_channels": 2, "kernel_size": 1}}],
                                                                 [{"conv2d": {"out_channels": 3, "kernel_size": 1}}]]}}],
    }  # fmt: skip
    s = summary_for_spec(spec)
    assert [r.name for r in s.layers] == ["features.0.branches.0.0", "features.0.branches.1.0"]


def summary_for_spec(spec):
    from cnnkit.models import build_from_spec

    model = build_from_spec(spec)
    return summarize(model, model.input_shape)


def test_stride_fit_checked_for_catalog_layers():
    from cnnkit.models import build_from_spec

    model = build_from_spec({"input": [3, 9, 9], "layers": [{"stochastic_pool2d": {"kernel_size": 2}}]})
    with pytest.raises(ConfigError, match=r"layer features\.0 \(StochasticPool2d\): strides don't fit .* \(9 - 2 \+ 2\*0\)/2 \+ 1 = 4\.5"):
        summarize(model, (3, 9, 9))


def test_print_summary_prints_the_table(capsys):
    s = summarize(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 5)), (3, 8, 8))
    print(s)
    out = capsys.readouterr().out
    assert "rich.table" not in out and "Table object" not in out
    assert "Conv2d" in out and "total" in out and f"{s.total_params:,}" in out
    assert all(len(line) <= 60 for line in s.to_text(width=60).splitlines())


def test_the_readme_python_example_prints_a_table(capsys, monkeypatch):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    line = next(ln for ln in block.splitlines() if "summarize(" in ln and ln.startswith("print("))
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    monkeypatch.setenv("COLUMNS", "80")
    exec(line, {"summarize": summarize, "model": model})  # noqa: S102  # the README's own line (a small model for its shape)
    out = capsys.readouterr().out
    assert "<rich.table.Table" not in out and "total" in out and "Conv2d" in out


@pytest.mark.parametrize(
    "argv",
    [["summary", "resnet18", "--input", "3,224,224"], ["summary", str(CONFIGS / "vgg-style.yaml")], ["models"], ["datasets"]],
)
def test_cli_tables_fit_an_80_column_terminal(argv, capsys, monkeypatch):
    from cnnkit.cli import main

    monkeypatch.setenv("COLUMNS", "80")
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 5 and max(len(line) for line in lines) <= 80
    if argv == ["models"]:  # names are what users type: never cut
        from cnnkit.models import list_models

        assert all(any(line.startswith((f" {name} ", f"{name} ")) for line in lines) for name in list_models())


def test_summary_for_run_folder_uses_the_trained_shape(tmp_path):
    """A run folder is summarized as trained: its architecture from model.json, at its input shape
    (here a 1-D FCN trained on length-60 series, which the model's own default shape does not say)."""
    from cnnkit.models import create_model
    from cnnkit.runs.model_io import save_model

    model = create_model("fcn1d", in_channels=2, num_classes=3)
    save_model(tmp_path, model, build={"name": "fcn1d", "in_channels": 2, "num_classes": 3},
               preprocessing={"input_shape": [2, 60]}, extra={"input_shape": [2, 60]})
    s = summary_for(tmp_path)
    assert s.total_params == sum(p.numel() for p in model.parameters())
    assert s.input_shape == (2, 60)
    conv = next(r for r in s.layers if r.type == "Conv1d")
    assert conv.output_shape == (128, 60)  # FCN's first block: 128 maps, "same" padding keeps the length
    wider = summary_for(str(tmp_path), "2,90")
    assert next(r for r in wider.layers if r.type == "Conv1d").output_shape == (128, 90)
    with pytest.raises(CnnkitError, match="not found"):
        summary_for(tmp_path / "missing")  # a path that is neither a folder nor a spec file


def test_summary_for_training_config_names_what_to_pass(tmp_path):
    cfg = tmp_path / "recipe.yaml"
    cfg.write_text("seed: 0\nmodel:\n  name: fcn1d\ndata:\n  name: ucr\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"training config.*cnnkit summary fcn1d.*RUN_DIR"):
        summary_for(cfg)
