"""The stride-fit check refuses only a floor that loses input pixels; the project's own models pass it."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import yaml
from torch import nn

from cnnkit.analysis import summarize, summary_for
from cnnkit.cli import main
from cnnkit.errors import ConfigError
from cnnkit.models import build_from_spec, list_models

# Building these takes seconds (hundreds of millions of weights, or a 572x572 input).
_SLOW = {"unet", "vgg11", "vgg16"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW else n for n in list_models()]
)
def test_every_registered_model_fits_at_its_registered_input(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary_for(name)


def test_airbench_drops_a_row_whose_input_the_kept_windows_see() -> None:
    # 1x28x28 -> 2x2 whitening conv -> 27 -> 2x2 max-pool keeps 13 windows: row 26 is dropped, but row 25
    # sees input rows 25..27 as well (fields of size 4), so no input pixel is lost.
    s = summary_for("airbench_fmnist")
    notes = s.row("layers.0.pool").notes
    assert len(notes) == 2 and all("13.5" in n and "see no input pixel the kept windows do not see" in n for n in notes)


def _blur_spec(size: int, layer: str) -> dict:
    return {"input": [3, size, size], "layers": [{"conv2d": {"out_channels": 4, "kernel_size": 3, "padding": 1}}, {layer: {}}]}


@pytest.mark.parametrize(("size", "layer"), [(32, "blur_pool2d"), (28, "blur_pool2d"), (15, "max_blur_pool2d")])
def test_blur_pool_fits_and_keeps_its_traced_field(size: int, layer: str) -> None:
    # blur_pool2d reflect-pads by 1, then convolves 3x3 with stride 2: on an even size the floor drops the
    # last padded column, which is padding. max_blur_pool2d's dense 2x2 max-pool makes the size even first.
    s = summarize(build_from_spec(_blur_spec(size, layer)), (3, size, size))
    row = s.row("features.1")
    assert any("see no input pixel" in n for n in row.notes)
    # The field is the one traced from the padding and the convolution, not one guessed from attributes:
    # blur: 3 + 2 * 1 = 5 wide, centred on pixel 0 (the padding is on the left too).
    expected = {"blur_pool2d": {"size": 5, "jump": 2, "start": 0}, "max_blur_pool2d": {"size": 6, "jump": 2, "start": 0.5}}
    assert row.receptive_field[0] == expected[layer]


def test_a_floor_that_loses_input_pixels_still_fails() -> None:
    with pytest.raises(ConfigError, match=r"ignores 1 input position\(s\) at the end \(input pixels 9\.\.9 reach no window\)"):
        summarize(nn.Conv2d(1, 1, 3, stride=2), (1, 10, 10))
    # Deeper in the net: a 3x3 conv (field 3) then a 3x3 stride-3 conv on 11 drops positions 9 and 10,
    # which see input pixels 8..12; the kept windows see up to pixel 10.
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3, stride=3))
    with pytest.raises(ConfigError, match=r"layer 1 \(Conv2d\).*input pixels 11\.\.12 reach no window"):
        summarize(net, (1, 13, 13))


def test_fields_with_gaps_do_not_cover_a_dropped_position() -> None:
    # A 1x1 stride-2 conv leaves fields 1 pixel wide, 2 apart: the next layer's dropped position sees
    # pixel 8, which no kept window sees.
    net = nn.Sequential(nn.Conv2d(1, 1, 1, stride=2), nn.Conv2d(1, 1, 2, stride=2))
    with pytest.raises(ConfigError, match=r"layer 1 \(Conv2d\).*input pixels 8\.\.8 reach no window"):
        summarize(net, (1, 9, 9))


def test_catalog_layer_misfit_still_fails() -> None:
    model = build_from_spec({"input": [3, 9, 9], "layers": [{"stochastic_pool2d": {"kernel_size": 2}}]})
    with pytest.raises(ConfigError, match=r"StochasticPool2d\): strides don't fit .*input pixels 8\.\.8 reach no window"):
        summarize(model, (3, 9, 9))


def test_cli_summary_of_airbench_and_blur_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "airbench_fmnist", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_shape"] == [1, 28, 28]
    spec = tmp_path / "blur.yaml"
    spec.write_text(yaml.safe_dump(_blur_spec(32, "blur_pool2d")))
    assert main(["summary", str(spec), "--json"]) == 0
    capsys.readouterr()


def test_cli_allow_floor_still_turns_a_misfit_into_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump({"input": [1, 28, 28], "layers": [{"conv2d": {"out_channels": 4, "kernel_size": 3, "stride": 2}}]}))
    assert main(["summary", str(spec)]) == 2
    assert "reach no window" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="strides don't fit"):
        assert main(["summary", str(spec), "--allow-floor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"][0]["output_shape"] == [4, 13, 13]
