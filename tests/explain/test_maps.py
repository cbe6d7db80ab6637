"""First-layer filters and feature maps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit.errors import CnnkitError
from cnnkit.explain import feature_maps, filter_images
from cnnkit.explain.maps import first_conv_layer


def _net(c: int = 3) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(c, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(5, 7, 3), nn.Flatten()).eval()


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_feature_maps_equal_the_sub_network() -> None:
    net = _net()
    x = torch.randn(2, 3, 10, 10)
    name, maps = feature_maps(net, x, "2")
    assert name == "2"
    torch.testing.assert_close(maps, net[:3](x))
    name, maps = feature_maps(net, x)  # default: the first conv
    assert name == "0" and maps.shape == (2, 5, 10, 10)
    assert _hooks(net) == 0


def test_feature_map_errors_leave_no_hooks() -> None:
    net = _net()
    with pytest.raises(CnnkitError, match="no layer 'features'"):
        feature_maps(net, torch.randn(1, 3, 10, 10), "features")
    with pytest.raises(CnnkitError, match=r"not \(N, C, H, W\) feature maps"):
        feature_maps(net, torch.randn(1, 3, 10, 10), "4")  # Flatten
    assert _hooks(net) == 0


def test_filter_images() -> None:
    rgb = _net(3)
    imgs = filter_images(first_conv_layer(rgb)[1])
    assert imgs.shape == (5, 3, 3, 3)  # shown as RGB
    assert imgs.min() >= 0 and imgs.max() <= 1
    assert torch.allclose(imgs.amax(dim=(1, 2, 3)), torch.ones(5)) and torch.allclose(imgs.amin(dim=(1, 2, 3)), torch.zeros(5))
    w = rgb[0].weight.detach()[2]
    torch.testing.assert_close(imgs[2], (w - w.min()) / (w.max() - w.min()))
    gray = filter_images(nn.Conv2d(4, 6, 5))
    assert gray.shape == (6, 1, 5, 5)  # many input channels: their mean
    with pytest.raises(CnnkitError, match="no Conv2d"):
        first_conv_layer(nn.Linear(2, 2))
