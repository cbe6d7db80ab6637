"""Anti-aliased downsampling (Zhang 2019): low-pass filter with a binomial kernel, then subsample."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .._checks import check_choice, check_int, to_pair
from ..errors import ConfigError
from ._registry import register_layer
from ._windows import pad_copy, pad_copy_adjoint, window_sum, window_sum_adjoint

__all__ = ["BlurPool2d", "MaxBlurPool2d", "binomial_filter2d", "blur_pool2d", "max_blur_pool2d"]

_PAD_MODES = ("reflect", "replicate", "zeros", "circular")


def binomial_filter2d(kernel_size: int, dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> Tensor:
    """The (k, k) outer product of binomial row ``C(k-1, i)``, normalized to sum 1 ([1,2,1]/4 squared for k=3)."""
    row = torch.tensor([math.comb(kernel_size - 1, i) for i in range(kernel_size)], dtype=dtype, device=device)
    row = row / row.sum()
    return row[:, None] * row[None, :]


def _pads(kernel_size: int) -> tuple[int, int, int, int]:
    lo, hi = (kernel_size - 1) // 2, kernel_size // 2  # even kernels pad one more on the far side
    return lo, hi, lo, hi


def blur_pool2d(x: Tensor, kernel_size: int = 3, stride: int = 2, pad_mode: str = "reflect",
                kernel: Tensor | None = None) -> Tensor:
    """Depthwise binomial blur with "same" padding, evaluated only at every ``stride``-th position.

    The binomial filter is separable (the outer product of the row ``C(k-1, i)``), so the blur runs as
    a row pass then a column pass over strided views with an analytic adjoint (:class:`_BlurFn`); a
    ``kernel`` other than :func:`binomial_filter2d`'s, ``torch.compile`` and maps too small for the
    padding take the depthwise convolution (:func:`_blur_pool2d_conv`, the reference formulation).
    """
    pads = _pads(kernel_size)
    h, w = x.shape[-2:]
    fits = (min(h, w) > max(pads) if pad_mode == "reflect" else min(h, w) >= max(pads)) and x.dim() == 4
    binomial = kernel is None or torch.equal(kernel, binomial_filter2d(kernel_size, kernel.dtype, kernel.device))
    if fits and binomial and not torch.compiler.is_compiling():
        return _BlurFn.apply(x, kernel_size, stride, pad_mode)
    return _blur_pool2d_conv(x, kernel_size, stride, pad_mode, kernel)


def _blur_pool2d_conv(x: Tensor, kernel_size: int = 3, stride: int = 2, pad_mode: str = "reflect",
                      kernel: Tensor | None = None) -> Tensor:
    """The blur as ``F.pad`` and a depthwise ``conv2d`` with the full 2-D filter."""
    c = x.shape[1]
    if kernel is None:
        kernel = binomial_filter2d(kernel_size, x.dtype, x.device)
    weight = kernel.to(x.dtype).expand(c, 1, kernel_size, kernel_size)
    pads = _pads(kernel_size)
    if pad_mode == "zeros":
        x = F.pad(x, pads)
    elif any(pads):
        x = F.pad(x, pads, mode=pad_mode)
    return F.conv2d(x, weight, stride=stride, groups=c)


class _BlurFn(torch.autograd.Function):
    """Separable binomial blur-and-subsample: pad (one copy), row taps, column taps, one scale.

    Taps are the integers ``C(k-1, i)`` and the ``4^-(k-1)`` normalisation is applied once to the
    (smallest) output; backward is the exact transpose: scale, strided scatter-adds of the taps
    (:func:`~cnnkit.layers._windows.window_sum_adjoint`), and the padding folded back onto the cells
    it copied (:func:`~cnnkit.layers._windows.pad_copy_adjoint`).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, kernel_size: int, stride: int, pad_mode: str) -> Tensor:
        lo, hi = _pads(kernel_size)[:2]
        pads = (lo, hi, lo, hi)
        taps = [float(math.comb(kernel_size - 1, i)) for i in range(kernel_size)]
        scale = 4.0 ** -(kernel_size - 1)
        xp = pad_copy(x, pads, pad_mode)
        k, s = (kernel_size, kernel_size), (stride, stride)
        out = window_sum(xp, k, s, (taps, taps)).mul_(scale)
        ctx.meta = (xp.shape[-2:], pads, k, s, taps, scale, pad_mode)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        size, pads, k, s, taps, scale, pad_mode = ctx.meta
        gp = window_sum_adjoint(g * scale, tuple(size), k, s, (taps, taps))
        return pad_copy_adjoint(gp, pads, pad_mode), None, None, None


def max_blur_pool2d(x: Tensor, kernel_size: int = 2, stride: int = 2, blur_kernel_size: int = 3,
                    pad_mode: str = "reflect") -> Tensor:
    """MaxBlurPool: dense (stride-1) max pooling, then blur-and-subsample."""
    return blur_pool2d(F.max_pool2d(x, kernel_size, stride=1), blur_kernel_size, stride, pad_mode)


@register_layer
class BlurPool2d(nn.Module):
    """Blur-pool: a fixed depthwise binomial low-pass filter followed by subsampling.

    Args:
        channels: number of input channels (the filter is depthwise).
        kernel_size: binomial filter size, 1 to 7 (1: plain subsampling; 2: [1, 1]; 3: [1, 2, 1]; ...).
        stride: subsampling factor.
        pad_mode: "reflect" (the paper), "replicate", "zeros" or "circular"; padding keeps "same" size.

    Shape:
        (B, channels, H, W) -> (B, channels, ceil(H / stride), ceil(W / stride)).

    Example:
        >>> BlurPool2d(4)(torch.randn(2, 4, 9, 8)).shape
        torch.Size([2, 4, 5, 4])

    Reference:
        Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019, Sec. 3.2 (BlurPool =
        Subsample o Blur) and Table 1 filters (Rect-2, Tri-3, Bin-5, ...).
    """

    def __init__(self, channels: int, kernel_size: int = 3, stride: int = 2, pad_mode: str = "reflect") -> None:
        super().__init__()
        self.channels = check_int(channels, "channels")
        self.kernel_size = check_int(kernel_size, "kernel_size")
        if kernel_size > 7:
            raise ConfigError(f"Expected 1 <= kernel_size <= 7. Received: kernel_size={kernel_size}")
        self.stride = check_int(stride, "stride")
        self.pad_mode = check_choice(pad_mode, "pad_mode", _PAD_MODES)
        # A fixed filter: a buffer, not a parameter; not saved, since it is a function of kernel_size.
        self.register_buffer("kernel", binomial_filter2d(kernel_size), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"Expected (B, {self.channels}, H, W) input. Received: shape={tuple(x.shape)}")
        return blur_pool2d(x, self.kernel_size, self.stride, self.pad_mode, self.kernel)  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}, stride={self.stride}, pad_mode={self.pad_mode!r}"


@register_layer
class MaxBlurPool2d(BlurPool2d):
    """MaxBlurPool: max pooling evaluated densely (stride 1), then a :class:`BlurPool2d` subsampling.

    Args:
        channels: number of input channels.
        kernel_size: max-pooling window (the paper replaces MaxPool(k, s) by Max(k, 1) then BlurPool(s)).
        stride: subsampling factor.
        blur_kernel_size: binomial filter size of the blur (1 to 7).
        pad_mode: padding mode of the blur.

    Shape:
        (B, channels, H, W) -> (B, channels, ceil((H - kernel_size + 1) / stride), ...).

    Example:
        >>> MaxBlurPool2d(4)(torch.randn(2, 4, 8, 8)).shape
        torch.Size([2, 4, 4, 4])

    Reference:
        Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019, Sec. 3.2
        (MaxPool_k,s -> BlurPool_m,s o Max_k,1) and Fig. 2.
    """

    def __init__(self, channels: int, kernel_size: int | Sequence[int] = 2, stride: int = 2,
                 blur_kernel_size: int = 3, pad_mode: str = "reflect") -> None:
        super().__init__(channels, blur_kernel_size, stride, pad_mode)
        self.max_kernel_size = to_pair(kernel_size, "kernel_size")

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"Expected (B, {self.channels}, H, W) input. Received: shape={tuple(x.shape)}")
        return blur_pool2d(F.max_pool2d(x, self.max_kernel_size, stride=1), self.kernel_size, self.stride,
                           self.pad_mode, self.kernel)  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, kernel_size={self.max_kernel_size}, stride={self.stride}, "
                f"blur_kernel_size={self.kernel_size}, pad_mode={self.pad_mode!r}")
