"""Network in Network (Lin et al. 2014), CIFAR-10 model: hand count, map sizes, GAP head."""

from __future__ import annotations

import torch

from cnnkit.models.nin import nin


def _conv(c_in: int, c_out: int, k: int) -> int:
    return c_out * c_in * k * k + c_out


def test_hand_count() -> None:
    # mlpconv1: 5x5 192, 1x1 160, 1x1 96; mlpconv2: 5x5 192, 1x1 192, 1x1 192; mlpconv3: 3x3 192,
    # 1x1 192, 1x1 10. No fully connected layer.
    expected = (
        _conv(3, 192, 5) + _conv(192, 160, 1) + _conv(160, 96, 1)
        + _conv(96, 192, 5) + _conv(192, 192, 1) + _conv(192, 192, 1)
        + _conv(192, 192, 3) + _conv(192, 192, 1) + _conv(192, 10, 1)
    )  # fmt: skip
    assert expected == 966_986
    assert sum(p.numel() for p in nin().parameters()) == expected
    assert not any(isinstance(m, torch.nn.Linear) for m in nin().modules())


def test_map_sizes_and_class_maps() -> None:
    model = nin(num_classes=100).eval()
    sizes = {}
    for name, m in model.features.named_children():
        m.register_forward_hook(lambda mod, i, o, name=name: sizes.__setitem__(name, tuple(o.shape[1:])))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        maps = model.forward_features(x)
    assert sizes["mlpconv1"] == (96, 32, 32)
    assert sizes["pool1"] == (96, 16, 16)
    assert sizes["pool2"] == (192, 8, 8)
    assert sizes["mlpconv3"] == (100, 8, 8)
    # Global average pooling: the score of class k is the mean of its confidence map (Sec. 3.3).
    torch.testing.assert_close(out, maps.mean(dim=(2, 3)))
