"""Locally connected layers: convolution without weight sharing (one filter bank per output position).

Cost: parameters ``L * C_out * C_in * kh * kw`` (L = number of output positions, i.e. L times a
convolution's); multiply-adds ``B * L * C_out * C_in * kh * kw``, as for a convolution. Memory: the
forward pass loops over the ``kh * kw`` kernel offsets (not over positions) and runs one batched
matrix product per offset on a strided slice of the input, so it never builds the ``kh * kw``-times
larger ``unfold`` copy; a custom backward recomputes the slices, so training saves only the (padded,
channels-last) input and the weight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_int, to_pair
from ._registry import register_layer
from .shape import conv_output_size

__all__ = ["LocallyConnected1d", "LocallyConnected2d", "locally_connected2d"]


def _slices(kh: int, kw: int, oh: int, ow: int, sh: int, sw: int):  # noqa: ANN202
    for dy in range(kh):
        for dx in range(kw):
            yield dy, dx, slice(dy, dy + sh * (oh - 1) + 1, sh), slice(dx, dx + sw * (ow - 1) + 1, sw)


class _LocallyConnectedFn(torch.autograd.Function):
    """out[l, b, o] = sum_{dy, dx, i} x[y_l s + dy, x_l s + dx, b, i] * weight[l, dy, dx, i, o]."""

    @staticmethod
    def forward(ctx: Any, xt: Tensor, weight: Tensor, out_hw: tuple[int, int], stride: tuple[int, int]) -> Tensor:
        oh, ow = out_hw
        positions, kh, kw, cin, cout = weight.shape
        batch = xt.shape[2]
        out = xt.new_zeros(positions, batch, cout)
        # In-place baddbmm_ is outside autocast's cast lists: compute in the inputs' dtype.
        with torch.autocast(xt.device.type, enabled=False):
            for dy, dx, ys, xs in _slices(kh, kw, oh, ow, *stride):
                out.baddbmm_(xt[ys, xs].reshape(positions, batch, cin), weight[:, dy, dx])
        ctx.save_for_backward(xt, weight)
        ctx.geometry = (oh, ow, stride)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        xt, weight = ctx.saved_tensors
        oh, ow, stride = ctx.geometry
        positions, kh, kw, cin, cout = weight.shape
        batch = xt.shape[2]
        grad = grad.contiguous()
        gx = torch.zeros_like(xt) if ctx.needs_input_grad[0] else None
        gw = torch.empty_like(weight) if ctx.needs_input_grad[1] else None
        for dy, dx, ys, xs in _slices(kh, kw, oh, ow, *stride):
            if gw is not None:
                gw[:, dy, dx] = torch.bmm(xt[ys, xs].reshape(positions, batch, cin).transpose(1, 2), grad)
            if gx is not None:
                gx[ys, xs] += torch.bmm(grad, weight[:, dy, dx].transpose(1, 2)).view(oh, ow, batch, cin)
        return gx, gw, None, None


def locally_connected2d(x: Tensor, weight: Tensor, bias: Tensor | None, out_hw: tuple[int, int],
                        stride: tuple[int, int] = (1, 1), padding: tuple[int, int] = (0, 0)) -> Tensor:
    """Locally connected 2-D layer; ``weight`` is (oh * ow, kh, kw, C_in, C_out), ``bias`` (C_out, oh, ow)."""
    ph, pw = padding
    if ph or pw:
        x = F.pad(x, (pw, pw, ph, ph))
    # Channels-last with batch inside: every offset's slice is then a (positions, B, C_in) batch of
    # matrices for one bmm; this is the single copy of the input the layer keeps.
    xt = x.permute(2, 3, 0, 1).contiguous()
    out = _LocallyConnectedFn.apply(xt, weight, out_hw, stride)  # (positions, B, C_out)
    out = out.permute(1, 2, 0).reshape(x.shape[0], weight.shape[-1], *out_hw)
    return out if bias is None else out + bias


@register_layer
class LocallyConnected2d(nn.Module):
    """A convolution whose filters are not shared: each output position has its own filter bank.

    Args:
        in_channels, out_channels: as ``nn.Conv2d``.
        input_size: (H, W) of the input (the layer has weights per position, so the size is fixed).
        kernel_size, stride, padding: as ``nn.Conv2d`` (zero padding); the stride must fit
            (see :func:`~cnnkit.layers.conv_output_size`).
        bias: one bias per output channel and position.

    Shape:
        (B, in_channels, H, W) -> (B, out_channels, H_out, W_out), H_out = (H + 2P - K) / S + 1.
        ``weight``: (H_out * W_out, kh, kw, in_channels, out_channels); ``bias``: (out_channels, H_out, W_out).

    Example:
        >>> lc = LocallyConnected2d(3, 8, input_size=(12, 12), kernel_size=3)
        >>> lc(torch.randn(2, 3, 12, 12)).shape
        torch.Size([2, 8, 10, 10])

    Reference:
        Taigman, Yang, Ranzato & Wolf, "DeepFace", CVPR 2014, Sec. 3 (locally connected layers L4-L6);
        LeCun, "Generalization and network design strategies", 1989 (unshared local receptive fields).

    Deviations:
        None in the math; the memory cost is documented in the module docstring.
    """

    def __init__(self, in_channels: int, out_channels: int, input_size: int | Sequence[int],
                 kernel_size: int | Sequence[int], stride: int | Sequence[int] = 1,
                 padding: int | Sequence[int] = 0, bias: bool = True) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.out_channels = check_int(out_channels, "out_channels")
        self.input_size = to_pair(input_size, "input_size")
        self.kernel_size = to_pair(kernel_size, "kernel_size")
        self.stride = to_pair(stride, "stride")
        self.padding = to_pair(padding, "padding", minimum=0)
        self.output_size = tuple(conv_output_size(n, k, s, p) for n, k, s, p in
                                 zip(self.input_size, self.kernel_size, self.stride, self.padding))
        positions = self.output_size[0] * self.output_size[1]
        self.weight = nn.Parameter(torch.empty(positions, *self.kernel_size, in_channels, out_channels))
        self.bias = nn.Parameter(torch.empty(out_channels, *self.output_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Conv2d's default init: uniform(+-1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5)).
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels or tuple(x.shape[2:]) != self.input_size:
            raise ValueError(f"Expected input of shape (B, {self.in_channels}, {self.input_size[0]}, "
                             f"{self.input_size[1]}). Received: shape={tuple(x.shape)}")
        weight = self.weight.to(x.dtype) if self.weight.dtype != x.dtype else self.weight
        bias = self.bias.to(x.dtype) if self.bias is not None and self.bias.dtype != x.dtype else self.bias
        return locally_connected2d(x, weight, bias, self.output_size, self.stride, self.padding)  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, input_size={self.input_size}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"output_size={self.output_size}, bias={self.bias is not None}")


@register_layer
class LocallyConnected1d(LocallyConnected2d):
    """1-D locally connected layer (e.g. over time): a :class:`LocallyConnected2d` with height 1.

    Shape:
        (B, in_channels, L) -> (B, out_channels, L_out), L_out = (L + 2P - K) / S + 1.
        ``weight``: (L_out, 1, kernel_size, in_channels, out_channels); ``bias``: (out_channels, 1, L_out).

    Example:
        >>> LocallyConnected1d(4, 6, input_size=20, kernel_size=5, stride=3)(torch.randn(2, 4, 20)).shape
        torch.Size([2, 6, 6])

    Reference:
        Taigman et al., "DeepFace", CVPR 2014, Sec. 3 (the 2-D form); Keras 2's LocallyConnected1D.
    """

    def __init__(self, in_channels: int, out_channels: int, input_size: int, kernel_size: int,
                 stride: int = 1, padding: int = 0, bias: bool = True) -> None:
        for name, value in (("input_size", input_size), ("kernel_size", kernel_size), ("stride", stride)):
            check_int(value, name)
        check_int(padding, "padding", minimum=0)
        super().__init__(in_channels, out_channels, (1, input_size), (1, kernel_size), (1, stride), (0, padding), bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3:
            raise ValueError(f"Expected input of shape (B, {self.in_channels}, {self.input_size[1]}). "
                             f"Received: shape={tuple(x.shape)}")
        return super().forward(x.unsqueeze(2)).squeeze(2)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, input_size={self.input_size[1]}, "
                f"kernel_size={self.kernel_size[1]}, stride={self.stride[1]}, padding={self.padding[1]}, "
                f"output_size={self.output_size[1]}, bias={self.bias is not None}")
