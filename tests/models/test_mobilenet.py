"""MobileNet v1 against Table 1 of Howard et al. (2017): hand counts, width/resolution multipliers."""

from __future__ import annotations

import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models.mobilenet import mobilenet_v1

# Table 1, transcribed: (stride, output channels) of each depthwise separable layer, after the
# stride-2 3x3 full convolution with 32 filters. (The table's last "Conv dw / s2" is stride 1.)
TABLE_1 = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)] + [(1, 512)] * 5 + [(2, 1024), (1, 1024)]


def _hand_count(alpha: float = 1.0, num_classes: int = 1000) -> int:
    def w(c: int) -> int:
        return int(c * alpha)

    c = w(32)
    total = 3 * c * 9 + 2 * c  # full conv (no bias) + BN
    for _, out in TABLE_1:
        total += c * 9 + 2 * c  # depthwise 3x3 + BN
        total += c * w(out) + 2 * w(out)  # pointwise 1x1 + BN
        c = w(out)
    return total + c * num_classes + num_classes


def _mult_adds(alpha: float, resolution: int) -> int:
    """Eq. (5) of the paper summed over Table 1: D_K^2 M D_F^2 + M N D_F^2 per layer, plus the first
    conv and the FC layer."""
    f = resolution // 2
    c = int(32 * alpha)
    total = 9 * 3 * c * f * f
    for stride, out in TABLE_1:
        f //= stride
        total += 9 * c * f * f + c * int(out * alpha) * f * f
        c = int(out * alpha)
    return total + c * 1000


def test_published_count() -> None:
    assert _hand_count() == 4_231_976
    assert sum(p.numel() for p in mobilenet_v1().parameters()) == 4_231_976


def test_width_multiplier_scales_every_layer() -> None:
    with torch.device("meta"):
        model = mobilenet_v1(width_multiplier=0.5)
    assert model.features[0][0].out_channels == 16
    assert [b.pw.out_channels for b in list(model.features)[1:]] == [out // 2 for _, out in TABLE_1]
    assert model.fc.in_features == 512


@pytest.mark.parametrize(
    ("alpha", "resolution", "million_mult_adds", "million_params"),
    [
        (1.0, 224, 569, 4.2),  # Table 6 / Table 7
        (0.75, 224, 325, 2.6),  # Table 6
        (0.5, 224, 149, 1.3),  # Table 6
        (0.25, 224, 41, 0.5),  # Table 6
        (1.0, 192, 418, 4.2),  # Table 7
        (1.0, 160, 290, 4.2),  # Table 7
        (1.0, 128, 186, 4.2),  # Table 7
    ],
)
def test_tables_6_and_7(alpha: float, resolution: int, million_mult_adds: int, million_params: float) -> None:
    assert abs(_mult_adds(alpha, resolution) / 1e6 - million_mult_adds) < 1.0
    assert round(_hand_count(alpha) / 1e6, 1) == million_params
    with torch.device("meta"):
        model = mobilenet_v1(width_multiplier=alpha, resolution=resolution)
    assert sum(p.numel() for p in model.parameters()) == _hand_count(alpha)


def test_resolution_sets_input_shape_and_keeps_params() -> None:
    model = mobilenet_v1(resolution=160, in_channels=1)
    assert model.input_shape == (1, 160, 160)
    assert model.forward_features(torch.zeros(1, 1, 160, 160)).shape == (1, 1024, 5, 5)
    assert sum(p.numel() for p in mobilenet_v1(resolution=128).parameters()) == 4_231_976


def test_depthwise_layers_are_grouped() -> None:
    model = mobilenet_v1()
    for block in list(model.features)[1:]:
        assert block.dw.groups == block.dw.in_channels == block.dw.out_channels
        assert block.pw.kernel_size == (1, 1)
    assert [b.dw.stride[0] for b in list(model.features)[1:]] == [s for s, _ in TABLE_1]


@pytest.mark.parametrize("alpha", [0, 1.5, -0.5])
def test_invalid_width_multiplier(alpha: float) -> None:
    with pytest.raises(ConfigError, match=f"Expected 0 < width_multiplier <= 1. Received: width_multiplier={alpha}"):
        mobilenet_v1(width_multiplier=alpha)


def test_invalid_resolution() -> None:
    with pytest.raises(ConfigError, match="Received: resolution=16"):
        mobilenet_v1(resolution=16)
