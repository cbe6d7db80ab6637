"""VGG against Table 1 of Simonyan & Zisserman (2015): hand counts and weight-layer depth."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.models.vgg import VGG, vgg11, vgg16

# Table 1, written out independently of the module: conv widths per block (each block ends in a max-pool).
TABLE_1 = {
    "A": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "D": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
}


def _hand_count(config: str, batch_norm: bool = False) -> int:
    total, c_in = 0, 3
    for block in TABLE_1[config]:
        for c_out in block:
            total += c_out * c_in * 9 + c_out + (2 * c_out if batch_norm else 0)
            c_in = c_out
    # FC-4096, FC-4096, FC-1000 on the 7x7x512 map.
    return total + (7 * 7 * 512 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("builder", "config", "batch_norm", "published"),
    [
        (vgg11, "A", False, 132_863_336),
        (vgg16, "D", False, 138_357_544),
        (vgg11, "A", True, 132_868_840),
        (vgg16, "D", True, 138_365_992),
    ],
)
def test_hand_count_and_published(builder, config: str, batch_norm: bool, published: int) -> None:  # type: ignore[no-untyped-def]
    assert _hand_count(config, batch_norm) == published
    with torch.device("meta"):
        model = builder(batch_norm=batch_norm)
    assert _params(model) == published


@pytest.mark.parametrize(("builder", "weight_layers"), [(vgg11, 11), (vgg16, 16)])
def test_weight_layer_count(builder, weight_layers: int) -> None:  # type: ignore[no-untyped-def]
    with torch.device("meta"):
        model = builder()
    n = sum(isinstance(m, nn.Conv2d | nn.Linear) for m in model.modules())
    assert n == weight_layers
    assert all(m.kernel_size == (3, 3) and m.padding == (1, 1) for m in model.modules() if isinstance(m, nn.Conv2d))
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 5


def test_feature_map_is_7x7_at_224() -> None:
    with torch.device("meta"):
        model = vgg16()
        assert model.forward_features(torch.empty(1, 3, 224, 224)).shape == (1, 512, 7, 7)


def test_batch_norm_after_every_conv() -> None:
    with torch.device("meta"):
        layers = list(vgg11(batch_norm=True).features)
    for i, m in enumerate(layers):
        if isinstance(m, nn.Conv2d):
            assert isinstance(layers[i + 1], nn.BatchNorm2d) and isinstance(layers[i + 2], nn.ReLU)


def test_bad_cfg_raises() -> None:
    with pytest.raises(ConfigError, match="Expected cfg to hold positive conv widths"):
        VGG([64, "M", 0])
