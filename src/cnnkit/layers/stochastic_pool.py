"""Stochastic pooling (Zeiler & Fergus 2013): sample one activation per region in proportion to it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._registry import register_layer
from .pooling import IntPair, _Pool2d, _window_args

__all__ = ["StochasticPool2d", "stochastic_pool2d"]


def stochastic_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, training: bool = True,
                      generator: torch.Generator | None = None) -> Tensor:
    """Stochastic pooling of non-negative ``x`` (the caller checks the sign).

    Training: in each region pick ``a_i`` with probability ``a_i / sum_j a_j`` (0 for an all-zero region);
    the gradient flows to the picked position. Evaluation: ``sum_i a_i^2 / sum_j a_j`` (0 where the
    region sums to 0).

    Sampling uses the exponential race: with ``E_i ~ Exp(1)`` i.i.d., ``argmax_i a_i / E_i`` is ``i``
    with probability ``a_i / sum_j a_j`` (``E_i / a_i ~ Exp(a_i)``, and the smallest of independent
    exponentials is ``i`` with probability ``a_i / sum_j a_j``). For non-overlapping regions one
    ``max_pool2d`` with indices does the sampling, without a Python loop or an unfold copy; overlapping
    regions draw their own race per window (on a window copy), so regions sample independently.
    """
    k, s, _ = _window_args(kernel_size, stride, 0)
    if not training:
        num = F.avg_pool2d(x * x, k, s)
        den = F.avg_pool2d(x, k, s)
        positive = den > 0
        safe = torch.where(positive, den, torch.ones_like(den))
        return torch.where(positive, num / safe, torch.zeros_like(num))
    dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    a = x.detach().to(dtype)
    if s[0] >= k[0] and s[1] >= k[1]:
        race = torch.empty_like(a)
        # exponential_ may return exactly 0 (u = 0); a tiny floor keeps 0 / E finite and non-NaN.
        race.exponential_(generator=generator).clamp_min_(torch.finfo(dtype).tiny)
        _, index = F.max_pool2d(a / race, k, s, return_indices=True)
    else:
        windows = a.unfold(2, k[0], s[0]).unfold(3, k[1], s[1])  # (B, C, H_out, W_out, kh, kw) view
        oh, ow = windows.shape[2:4]
        race = torch.empty(windows.shape, dtype=dtype, device=x.device)
        race.exponential_(generator=generator).clamp_min_(torch.finfo(dtype).tiny)
        pick = (windows / race).flatten(-2).argmax(dim=-1)  # (B, C, H_out, W_out), index in the window
        rows = torch.arange(oh, device=x.device)[:, None] * s[0] + pick // k[1]
        cols = torch.arange(ow, device=x.device)[None, :] * s[1] + pick % k[1]
        index = rows * x.shape[-1] + cols
    return x.flatten(2).gather(2, index.flatten(2)).view(index.shape)


@register_layer
class StochasticPool2d(_Pool2d):
    """Stochastic pooling: sample one activation per region with probability ``a_i / sum_j a_j``.

    In training the output of a region is ``a_l`` with ``l ~ Multinomial(p_1, ..., p_n)``,
    ``p_i = a_i / sum_j a_j``; in evaluation it is the probabilistic weighting
    ``sum_i p_i a_i = sum_i a_i^2 / sum_j a_j``, 0 for a region that sums to 0. Inputs must be
    non-negative (e.g. after a ReLU); negative inputs raise, except under ``torch.compile`` where the
    check is skipped to keep the graph whole.

    Args:
        kernel_size: region size (int or pair).
        stride: step between regions; defaults to ``kernel_size`` (the paper's non-overlapping regions).

    Shape:
        (B, C, H, W) -> (B, C, H_out, W_out), ``H_out = floor((H - K) / S) + 1``.

    Example:
        >>> pool = StochasticPool2d(2).eval()
        >>> pool(torch.tensor([[[[1.0, 3.0], [0.0, 0.0]]]]))  # (1 + 9) / 4
        tensor([[[[2.5000]]]])

    Reference:
        Zeiler & Fergus, "Stochastic Pooling for Regularization of Deep Convolutional Neural
        Networks", ICLR 2013, Sec. 3 (sampling) and Sec. 3.1 (probabilistic weighting at test time).

    Deviations:
        None from the paper. The article's claim that this equals average pooling in expectation is wrong: the expectation
        is the probabilistic weighting, used here at test time (as in Caffe).
    """

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None) -> None:
        super().__init__(kernel_size, stride, 0)

    def forward(self, x: Tensor) -> Tensor:
        if not torch.compiler.is_compiling() and bool((x < 0).any()):
            raise ValueError(
                "Expected non-negative input to StochasticPool2d (region probabilities are a_i / sum_j a_j; "
                f"put it after a ReLU). Received: min={float(x.min()):.4g}")
        return stochastic_pool2d(x, self.kernel_size, self.stride, training=self.training)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"
