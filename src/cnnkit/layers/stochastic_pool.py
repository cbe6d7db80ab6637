"""Stochastic pooling (Zeiler & Fergus 2013): sample one activation per region in proportion to it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._fused_pool import StochasticEvalFn, stochastic_sample_index
from ._registry import register_layer
from .pooling import IntPair, _Pool2d, _window_args

__all__ = ["StochasticPool2d", "stochastic_pool2d"]


def stochastic_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, training: bool = True,
                      generator: torch.Generator | None = None) -> Tensor:
    """Stochastic pooling of non-negative ``x`` (the caller checks the sign).

    Training: in each region pick ``a_i`` with probability ``a_i / sum_j a_j`` (0 for an all-zero region);
    the gradient flows to the picked position. Evaluation: ``sum_i a_i^2 / sum_j a_j`` (0 where the
    region sums to 0).

    Sampling is by inverse CDF, one uniform per region
    (:func:`~cnnkit.layers._fused_pool.stochastic_sample_index`); overlapping regions sample
    independently. Evaluation sums each region as ``kh * kw`` strided slabs, forward and closed-form
    backward fused in :class:`~cnnkit.layers._fused_pool.StochasticEvalFn` (the plain autograd
    formulation, :func:`_probability_weighting`, under ``torch.compile``).
    """
    k, s, _ = _window_args(kernel_size, stride, 0)
    if not training:
        if torch.compiler.is_compiling():
            return _probability_weighting(x, k, s)
        return StochasticEvalFn.apply(x, k, s)
    dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    index = stochastic_sample_index(x.detach().to(dtype), k, s, generator)
    return x.flatten(2).gather(2, index.flatten(2)).view(index.shape)


def _probability_weighting(x: Tensor, k: tuple[int, int], s: tuple[int, int]) -> Tensor:
    """``avg_pool2d(x^2) / avg_pool2d(x)`` through autograd, 0 where a region sums to 0."""
    num = F.avg_pool2d(x * x, k, s)
    den = F.avg_pool2d(x, k, s)
    positive = den > 0
    safe = torch.where(positive, den, torch.ones_like(den))
    return torch.where(positive, num / safe, torch.zeros_like(num))


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
        # amin is one reduction pass; (x < 0).any() would also write a full-size boolean mask.
        if not torch.compiler.is_compiling() and bool(x.amin() < 0):
            raise ValueError(
                "Expected non-negative input to StochasticPool2d (region probabilities are a_i / sum_j a_j; "
                f"put it after a ReLU). Received: min={float(x.min()):.4g}")
        return stochastic_pool2d(x, self.kernel_size, self.stride, training=self.training)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"
