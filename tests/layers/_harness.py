"""One spec per layer: how to build it, feed it, what comes out, and which arguments it must refuse.

``test_layer_harness.py`` runs every check on every case; a new layer gets tested by adding a case.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from cnnkit import layers as L


def _randn(*shape: int) -> Callable[[], tuple[Tensor, ...]]:
    return lambda: (torch.randn(*shape),)


def _positive(*shape: int) -> Callable[[], tuple[Tensor, ...]]:
    return lambda: (torch.rand(*shape) + 0.1,)


def _rois() -> tuple[Tensor, ...]:
    feats = torch.randn(2, 3, 9, 11)
    rois = torch.tensor([[0, 0.0, 0.0, 10.0, 8.0], [1, 2.0, 1.0, 7.0, 6.0], [0, 4.0, 3.0, 5.0, 4.0]])
    return feats, rois


@dataclass
class Case:
    """A layer under test."""

    name: str                                   # registry name
    make: Callable[[], nn.Module]               # builds the layer (float32)
    inputs: Callable[[], tuple[Tensor, ...]]    # seeded by the test; first input is the one checked for grads
    out_shape: tuple[int, ...]
    repr_has: tuple[str, ...]                   # substrings repr() must show (the hyperparameters)
    bad_args: list[tuple[Callable[[], object], str]] = field(default_factory=list)  # (call, message regex)
    random_in_training: bool = False            # train outputs vary, eval outputs are deterministic
    gradcheck: bool = True                      # float64 gradcheck in eval mode
    id: str = ""

    def __post_init__(self) -> None:
        self.id = self.id or self.name


CASES: list[Case] = [
    Case("lp_pool2d", lambda: L.LpPool2d(2, 3, stride=2, padding=1), _randn(2, 3, 7, 8), (2, 3, 4, 4),
         ("p=2.0", "kernel_size=(3, 3)", "stride=(2, 2)", "padding=(1, 1)"),
         [(lambda: L.LpPool2d(0.5, 2), r"Expected .*1.0 <= p.*Received: p=0.5"),
          (lambda: L.LpPool2d(float("nan"), 2), r"Received: p=nan"),
          (lambda: L.LpPool2d(2, 0), r"Expected kernel_size to be an integer >= 1. Received: kernel_size=0"),
          (lambda: L.LpPool2d(2, 2, stride=0), r"Received: stride=0"),
          (lambda: L.LpPool2d(2, 2, padding=2), r"Expected padding <= kernel_size // 2")]),
    Case("lp_pool2d", lambda: L.LpPool2d(math.inf, 2), _randn(2, 3, 6, 6), (2, 3, 3, 3), ("p=inf",), id="lp_pool2d_inf"),
    Case("mixed_pool2d", lambda: L.MixedPool2d(3, stride=2, padding=1, alpha=0.3, learnable=True), _randn(2, 3, 7, 7),
         (2, 3, 4, 4), ("alpha=0.3", "learnable=True", "kernel_size=(3, 3)"),
         [(lambda: L.MixedPool2d(2, alpha=1.5), r"Expected .*alpha <= 1.0. Received: alpha=1.5"),
          (lambda: L.MixedPool2d(2, alpha=1.0, learnable=True), r"alpha < 1.0. Received: alpha=1.0"),
          (lambda: L.MixedPool2d((2, 2, 2)), r"pair of integers. Received: kernel_size=\(2, 2, 2\)")]),
    Case("softmax_pool2d", lambda: L.SoftmaxPool2d(3, stride=2, padding=1, beta=2.0), _randn(2, 3, 7, 6), (2, 3, 4, 3),
         ("beta=2.0", "padding=(1, 1)"),
         [(lambda: L.SoftmaxPool2d(2, beta=float("nan")), r"Received: beta=nan"),
          (lambda: L.SoftmaxPool2d(2, beta="big"), r"Received: beta='big'")]),
    Case("stochastic_pool2d", lambda: L.StochasticPool2d(2), _positive(2, 3, 6, 7), (2, 3, 3, 3),
         ("kernel_size=(2, 2)", "stride=(2, 2)"),
         [(lambda: L.StochasticPool2d(-1), r"Received: kernel_size=-1"),
          (lambda: L.StochasticPool2d(2)(-torch.ones(1, 1, 2, 2)), r"Expected non-negative input")],
         random_in_training=True),
    Case("channel_max_pool2d", lambda: L.ChannelMaxPool2d(2), _randn(2, 6, 4, 5), (2, 2, 4, 5), ("out_channels=2",),
         [(lambda: L.ChannelMaxPool2d(0), r"Received: out_channels=0"),
          (lambda: L.ChannelMaxPool2d(4)(torch.randn(1, 6, 2, 2)), r"C divisible by out_channels=4")]),
    Case("masked_global_avg_pool1d", L.MaskedGlobalAvgPool1d, _randn(2, 3, 7), (2, 3), ("padding=nan",),
         [(lambda: L.MaskedGlobalAvgPool1d()(torch.randn(3, 4)), r"Expected input of shape \(B, C, L\)")]),
    Case("global_avg_pool2d", L.GlobalAvgPool2d, _randn(2, 3, 4, 5), (2, 3), ("(B, C)",),
         [(lambda: L.GlobalAvgPool2d()(torch.randn(3, 4)), r"Expected a \(B, C, H, W\) input")]),
    Case("global_max_pool2d", L.GlobalMaxPool2d, _randn(2, 3, 4, 5), (2, 3), ("(B, C)",),
         [(lambda: L.GlobalMaxPool2d()(torch.randn(3)), r"Expected a \(B, C, H, W\) input")]),
    Case("spatial_pyramid_pool2d", lambda: L.SpatialPyramidPool2d((1, 2, 3), "avg"), _randn(2, 3, 7, 9),
         (2, 3 * 14), ("levels=(1, 2, 3)", "mode='avg'"),
         [(lambda: L.SpatialPyramidPool2d((1, 0)), r"Received: levels=0"),
          (lambda: L.SpatialPyramidPool2d(()), r"non-empty sequence"),
          (lambda: L.SpatialPyramidPool2d(mode="sum"), r"one of 'max', 'avg'. Received: mode='sum'")]),
    Case("roi_pool", lambda: L.RoIPool((2, 3), spatial_scale=0.5), _rois, (3, 3, 2, 3),
         ("output_size=(2, 3)", "spatial_scale=0.5"),
         [(lambda: L.RoIPool(0), r"Received: output_size=0"),
          (lambda: L.RoIPool(2, spatial_scale=0.0), r"0.0 < spatial_scale. Received: spatial_scale=0.0"),
          (lambda: L.RoIPool(2)(torch.randn(1, 1, 4, 4), torch.zeros(2, 4)), r"rois of shape \(K, 5\)")]),
    Case("roi_align", lambda: L.RoIAlign((2, 3), spatial_scale=0.5, sampling_ratio=2), _rois, (3, 3, 2, 3),
         ("output_size=(2, 3)", "spatial_scale=0.5", "sampling_ratio=2", "aligned=True"),
         [(lambda: L.RoIAlign(0), r"Received: output_size=0"),
          (lambda: L.RoIAlign(2, sampling_ratio=0), r"Received: sampling_ratio=0"),
          (lambda: L.RoIAlign(2)(torch.randn(1, 1, 4, 4), torch.zeros(2, 4)), r"rois of shape \(K, 5\)")]),
    Case("attention_pool", lambda: L.AttentionPool(8, num_heads=2, num_queries=3, hidden_dim=16), _randn(2, 8, 3, 4),
         (2, 3, 8), ("dim=8", "num_heads=2", "num_queries=3", "hidden_dim=16"),
         [(lambda: L.AttentionPool(8, num_heads=3), r"num_heads to divide dim. Received: dim=8, num_heads=3"),
          (lambda: L.AttentionPool(0), r"Received: dim=0"),
          (lambda: L.AttentionPool(8)(torch.randn(2, 5, 7)), r"Expected \(B, N, 8\)")]),
    Case("blur_pool2d", lambda: L.BlurPool2d(3, kernel_size=4, stride=2), _randn(2, 3, 9, 8), (2, 3, 5, 4),
         ("channels=3", "kernel_size=4", "stride=2", "pad_mode='reflect'"),
         [(lambda: L.BlurPool2d(3, kernel_size=8), r"1 <= kernel_size <= 7. Received: kernel_size=8"),
          (lambda: L.BlurPool2d(3, pad_mode="wrap"), r"Received: pad_mode='wrap'"),
          (lambda: L.BlurPool2d(3)(torch.randn(1, 4, 6, 6)), r"Expected \(B, 3, H, W\)")]),
    Case("max_blur_pool2d", lambda: L.MaxBlurPool2d(3), _randn(2, 3, 9, 8), (2, 3, 4, 4),
         ("kernel_size=(2, 2)", "blur_kernel_size=3", "stride=2"),
         [(lambda: L.MaxBlurPool2d(3, stride=0), r"Received: stride=0")]),
    Case("unpool2d", lambda: L.Unpool2d((2, 3)), _randn(2, 3, 4, 5), (2, 3, 8, 15), ("kernel_size=(2, 3)",),
         [(lambda: L.Unpool2d(0), r"Received: kernel_size=0")]),
    Case("depthwise_separable_conv2d", lambda: L.DepthwiseSeparableConv2d(4, 6, 3, stride=2, padding=1, dilation=1),
         _randn(2, 4, 9, 8), (2, 6, 5, 4), ("4, 6", "kernel_size=(3, 3)", "stride=(2, 2)", "padding=(1, 1)"),
         [(lambda: L.DepthwiseSeparableConv2d(0, 6, 3), r"Received: in_channels=0"),
          (lambda: L.DepthwiseSeparableConv2d(4, 6, 3, depth_multiplier=0), r"Received: depth_multiplier=0")]),
    Case("depthwise_separable_conv1d", lambda: L.DepthwiseSeparableConv1d(4, 6, 5, padding=2), _randn(2, 4, 11),
         (2, 6, 11), ("4, 6", "kernel_size=(5,)"),
         [(lambda: L.DepthwiseSeparableConv1d(4, -1, 3), r"Received: out_channels=-1")]),
    Case("multi_dilation_conv2d", lambda: L.MultiDilationConv2d(3, 7, 3, dilations=(1, 2, 4)), _randn(2, 3, 9, 10),
         (2, 7, 9, 10), ("dilations=(1, 2, 4)", "split=(3, 2, 2)"),
         [(lambda: L.MultiDilationConv2d(3, 2, 3, dilations=(1, 2, 3)), r"out_channels >= len\(dilations\)"),
          (lambda: L.MultiDilationConv2d(3, 6, 3, dilations=(1, 0)), r"Received: dilations=0"),
          (lambda: L.MultiDilationConv2d(3, 6, 3, dilations=[]), r"non-empty sequence")]),
    Case("locally_connected2d", lambda: L.LocallyConnected2d(3, 4, (7, 9), 3, stride=2, padding=1), _randn(2, 3, 7, 9),
         (2, 4, 4, 5), ("3, 4", "input_size=(7, 9)", "kernel_size=(3, 3)", "stride=(2, 2)", "output_size=(4, 5)"),
         [(lambda: L.LocallyConnected2d(3, 4, 8, 3, stride=3), r"stride does not fit.*padding=2 "),
          (lambda: L.LocallyConnected2d(3, 4, 2, 3), r"kernel to fit in the padded input"),
          (lambda: L.LocallyConnected2d(3, 4, 8, 3)(torch.randn(1, 3, 9, 8)), r"Expected input of shape \(B, 3, 8, 8\)")]),
    Case("locally_connected1d", lambda: L.LocallyConnected1d(3, 4, 10, 4, stride=2), _randn(2, 3, 10), (2, 4, 4),
         ("input_size=10", "kernel_size=4", "stride=2", "output_size=4"),
         [(lambda: L.LocallyConnected1d(3, 4, 10, 0), r"Received: kernel_size=0")]),
    Case("upsample_conv2d", lambda: L.UpsampleConv2d(3, 5, 3, scale_factor=2, mode="bilinear"), _randn(2, 3, 4, 5),
         (2, 5, 8, 10), ("3, 5", "scale_factor=2.0", "mode='bilinear'"),
         [(lambda: L.UpsampleConv2d(3, 5, 3, mode="area2"), r"Received: mode='area2'"),
          (lambda: L.UpsampleConv2d(3, 5, 3, scale_factor=0), r"Received: scale_factor=0")]),
    Case("global_response_norm", lambda: _perturbed(L.GlobalResponseNorm(4)), _randn(2, 4, 3, 5), (2, 4, 3, 5),
         ("channels=4", "eps=1e-06"),
         [(lambda: L.GlobalResponseNorm(4, eps=0), r"0.0 < eps. Received: eps=0"),
          (lambda: L.GlobalResponseNorm(4)(torch.randn(1, 3, 2, 2)), r"Expected \(B, 4, H, W\)")]),
    Case("abs_tanh", L.AbsTanh, _randn(3, 5), (3, 5), ("|tanh(x)|",)),
    Case("scaled_tanh", L.ScaledTanh, _randn(3, 5), (3, 5), ("amplitude=1.7159", "slope=0.666667"),
         [(lambda: L.ScaledTanh(amplitude=-1), r"Received: amplitude=-1")]),
    Case("drop_connect_linear", lambda: L.DropConnectLinear(6, 4, p=0.3), _randn(5, 6), (5, 4),
         ("in_features=6", "out_features=4", "p=0.3"),
         [(lambda: L.DropConnectLinear(6, 4, p=1.0), r"Expected 0 <= p < 1. Received: p=1.0"),
          (lambda: L.DropConnectLinear(6, 4, p=-0.1), r"Received: p=-0.1")],
         random_in_training=True),
    Case("drop_connect_conv2d", lambda: L.DropConnectConv2d(3, 4, 3, padding=1, p=0.4), _randn(2, 3, 5, 6), (2, 4, 5, 6),
         ("kernel_size=(3, 3)", "padding=(1, 1)", "p=0.4"),
         [(lambda: L.DropConnectConv2d(3, 4, 3, p=2), r"Received: p=2")],
         random_in_training=True),
]


def _perturbed(m: nn.Module) -> nn.Module:
    """GRN starts as the identity (gamma = beta = 0); test it away from that point too."""
    with torch.no_grad():
        for p in m.parameters():
            p.normal_()
    return m
