"""Convolution variants against explicit compositions and loops; structural properties of convolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnkit.layers import (
    DepthwiseSeparableConv1d,
    DepthwiseSeparableConv2d,
    MultiDilationConv2d,
    Unpool2d,
    UpsampleConv2d,
)

FAST = settings(max_examples=25, deadline=None)


def test_depthwise_separable_is_per_channel_conv_then_pointwise() -> None:
    torch.manual_seed(0)
    conv = DepthwiseSeparableConv2d(3, 5, 3, stride=2, padding=1, dilation=2).double()
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    # Depthwise by an explicit loop over channels, each a single-channel convolution.
    dw = torch.cat([F.conv2d(x[:, c:c + 1], conv.depthwise.weight[c:c + 1], stride=2, padding=1, dilation=2)
                    for c in range(3)], dim=1)
    pw = torch.einsum("bchw,oc->bohw", dw, conv.pointwise.weight[:, :, 0, 0]) + conv.pointwise.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(conv(x), pw)


def test_depthwise_separable_parameter_count() -> None:
    # Howard et al. 2017: C_in K^2 + C_in C_out weights (+ C_out biases).
    conv = DepthwiseSeparableConv2d(32, 64, 3)
    assert sum(p.numel() for p in conv.parameters()) == 32 * 9 + 32 * 64 + 64
    conv1d = DepthwiseSeparableConv1d(8, 16, 5, bias=False, depth_multiplier=2)
    assert sum(p.numel() for p in conv1d.parameters()) == 16 * 5 + 16 * 16


def test_multi_dilation_branches_are_dilated_convs_with_same_padding() -> None:
    torch.manual_seed(1)
    conv = MultiDilationConv2d(2, 7, 3, dilations=(1, 2, 3)).double()
    x = torch.randn(1, 2, 11, 10, dtype=torch.float64)
    out = conv(x)
    start = 0
    for branch, d, n in zip(conv.branches, (1, 2, 3), (3, 2, 2)):
        expected = F.conv2d(x, branch.weight, branch.bias, padding=d, dilation=d)
        torch.testing.assert_close(out[:, start:start + n], expected)
        start += n


def test_multi_dilation_receptive_fields() -> None:
    # An impulse at the centre reaches exactly the taps at offsets {-d, 0, d} of each group.
    conv = MultiDilationConv2d(1, 3, 3, dilations=(1, 2, 3), bias=False)
    with torch.no_grad():
        for b in conv.branches:
            b.weight.fill_(1.0)
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 4] = 1
    out = conv(x)[0]
    for ch, d in enumerate((1, 2, 3)):
        expected = torch.zeros(9, 9)
        for dy in (-d, 0, d):
            for dx in (-d, 0, d):
                expected[4 + dy, 4 + dx] = 1
        assert torch.equal(out[ch], expected)


def test_upsample_conv_nearest_is_conv_of_copied_entries() -> None:
    torch.manual_seed(2)
    layer = UpsampleConv2d(3, 4, 3, scale_factor=2)
    x = torch.randn(2, 3, 5, 6)
    torch.testing.assert_close(layer(x), F.conv2d(Unpool2d(2)(x), layer.conv.weight, layer.conv.bias, padding=1))


def test_upsample_conv_has_no_checkerboard_on_constant_input() -> None:
    # Odena et al.: a stride-2 transposed conv with a 3x3 kernel of ones maps a constant image to a
    # checkerboard (taps overlap unevenly); resize-convolution gives a constant interior.
    x = torch.ones(1, 1, 6, 6)
    deconv = F.conv_transpose2d(x, torch.ones(1, 1, 3, 3), stride=2)[0, 0, 2:-2, 2:-2]
    assert deconv.unique().numel() > 1
    up = UpsampleConv2d(1, 1, 3, bias=False)
    with torch.no_grad():
        up.conv.weight.fill_(1.0)
    interior = up(x)[0, 0, 1:-1, 1:-1]
    assert interior.unique().numel() == 1


@FAST
@given(st.integers(3, 8), st.integers(3, 8), st.sampled_from([1, 3]), st.integers(-4, 4), st.integers(-4, 4),
       st.integers(0, 2**31 - 1))
def test_circular_stride1_conv_commutes_with_circular_shifts(h: int, w: int, k: int, dy: int, dx: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 2, h, w, generator=g, dtype=torch.float64)
    conv = nn.Conv2d(2, 3, k, padding=k // 2, padding_mode="circular").double()
    shift = lambda t: torch.roll(t, shifts=(dy, dx), dims=(2, 3))  # noqa: E731
    torch.testing.assert_close(conv(shift(x)), shift(conv(x)))


@FAST
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 1), st.integers(5, 9), st.integers(0, 2**31 - 1))
def test_transposed_conv_is_the_adjoint_of_conv(k: int, s: int, p: int, n: int, seed: int) -> None:
    # <conv(x), y> = <x, conv_T(y)> with the same weight: conv_transpose2d multiplies by the
    # transposed convolution matrix (output_padding restores the input size lost to flooring).
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(3, 2, k, k, generator=g, dtype=torch.float64)
    x = torch.randn(1, 2, n, n, generator=g, dtype=torch.float64)
    y_ = F.conv2d(x, weight, stride=s, padding=p)
    y = torch.randn(y_.shape, generator=g, dtype=torch.float64)
    out_pad = (n + 2 * p - k) % s
    xt = F.conv_transpose2d(y, weight, stride=s, padding=p, output_padding=out_pad)
    assert xt.shape == x.shape
    torch.testing.assert_close((y_ * y).sum(), (x * xt).sum())
