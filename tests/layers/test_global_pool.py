"""ChannelMaxPool2d, GlobalAvgPool2d, GlobalMaxPool2d against loops and torch builtins."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnkit.layers import ChannelMaxPool2d, GlobalAvgPool2d, GlobalMaxPool2d


def test_channel_max_pool_naive_loop() -> None:
    x = torch.randn(2, 6, 3, 4)
    out = ChannelMaxPool2d(3)(x)
    for j in range(3):
        expected = torch.maximum(x[:, 2 * j], x[:, 2 * j + 1])  # consecutive channels 2j, 2j+1
        torch.testing.assert_close(out[:, j], expected)


def test_channel_max_pool_limits() -> None:
    x = torch.randn(2, 5, 3, 3)
    torch.testing.assert_close(ChannelMaxPool2d(5)(x), x)
    torch.testing.assert_close(ChannelMaxPool2d(1)(x), x.amax(1, keepdim=True))


def test_global_pools_equal_adaptive_pools() -> None:
    x = torch.randn(3, 4, 5, 7)
    torch.testing.assert_close(GlobalAvgPool2d()(x), F.adaptive_avg_pool2d(x, 1).flatten(1))
    torch.testing.assert_close(GlobalMaxPool2d()(x), F.adaptive_max_pool2d(x, 1).flatten(1))


def test_global_avg_hand_value() -> None:
    x = torch.arange(8.0).view(1, 2, 2, 2)
    assert GlobalAvgPool2d()(x).tolist() == [[1.5, 5.5]]
    assert GlobalMaxPool2d()(x).tolist() == [[3.0, 7.0]]
