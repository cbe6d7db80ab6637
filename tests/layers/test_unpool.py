"""Unpool2d: copies each entry into a block (hand value, kron, nearest upsampling)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnkit.layers import Unpool2d


def test_hand_value() -> None:
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    expected = torch.tensor([[1.0, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    assert torch.equal(Unpool2d(2)(x)[0, 0], expected)


def test_equals_kron_and_nearest_upsampling() -> None:
    x = torch.randn(2, 3, 4, 5)
    out = Unpool2d((2, 3))(x)
    torch.testing.assert_close(out[1, 2], torch.kron(x[1, 2], torch.ones(2, 3)))
    torch.testing.assert_close(out, F.interpolate(x, scale_factor=(2, 3), mode="nearest"))


def test_gradient_sums_each_block() -> None:
    x = torch.randn(1, 1, 3, 3, requires_grad=True)
    g = torch.randn(1, 1, 6, 6)
    Unpool2d(2)(x).backward(g)
    torch.testing.assert_close(x.grad, F.avg_pool2d(g, 2) * 4)
