"""Local pooling with a window: Lp, mixed (max/average) and softmax pooling.

Each op is a pure function (``lp_pool2d``) plus a thin module holding the hyperparameters
(``LpPool2d``). Padding is never counted in a window: averages divide by the number of real inputs,
maxima ignore padded positions (``count_include_pad=False`` in torch terms), so that the limiting
cases (``p = 1`` is average pooling, ``beta -> inf`` is max pooling) hold at the borders too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_real, to_pair
from ..errors import ConfigError
from ._fused_pool import LpPoolFn, SoftmaxPoolFn, SoftmaxUnderflow
from ._registry import register_layer

__all__ = ["LpPool2d", "MixedPool2d", "SoftmaxPool2d", "lp_pool2d", "mixed_pool2d", "softmax_pool2d"]

IntPair = int | Sequence[int]


def _window_args(kernel_size: IntPair, stride: IntPair | None, padding: IntPair
                 ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    k = to_pair(kernel_size, "kernel_size")
    s = to_pair(stride, "stride") if stride is not None else k
    p = to_pair(padding, "padding", minimum=0)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:  # torch's rule: a window must hold at least one real input
        raise ConfigError(f"Expected padding <= kernel_size // 2. Received: padding={padding!r}, "
                         f"kernel_size={kernel_size!r}")
    return k, s, p


class _Pool2d(nn.Module):
    """Holds and validates ``kernel_size``, ``stride`` (default: ``kernel_size``) and ``padding``."""

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = _window_args(kernel_size, stride, padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


def lp_pool2d(x: Tensor, p: float, kernel_size: IntPair, stride: IntPair | None = None,
              padding: IntPair = 0) -> Tensor:
    """Normalized Lp pooling ``(1/N sum_i |a_i|^p)^(1/p)`` over each window; ``p = inf`` is max of ``|a|``.

    Computed as ``avg_pool2d(|x|^p) ** (1/p)``, forward and closed-form backward fused in
    :class:`~cnnkit.layers._fused_pool.LpPoolFn` (the autograd formulation under ``torch.compile``). For p > 4, ``|x|`` is first divided by its maximum over
    each feature map (exact: the result is homogeneous of degree 1) so that ``|x|^p`` cannot overflow;
    a window whose values all lie below ``tiny ** (1/p)`` times that maximum then underflows to 0
    (float32, p = 8: below 1.8e-5 of the map maximum). For p <= 4 the range limits are float32's:
    overflow above 1.4e9 (p = 4), underflow of windows below 3e-10.
    """
    k, s, pad = _window_args(kernel_size, stride, padding)
    if math.isinf(p):
        return F.max_pool2d(x.abs(), k, s, pad)
    if p == 1:
        return F.avg_pool2d(x.abs(), k, s, pad, count_include_pad=False)
    a = x
    if p > 4:
        # |a|^p overflows float32 for |a| > 3.4e38^(1/p) (6e4 at p = 8): divide by the per-map maximum
        # first. The output is homogeneous of degree 1 in a, so this is exact and the scale is a
        # constant for the gradient. Windows below tiny^(1/p) of that maximum then read 0.
        scale = x.detach().abs().amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
        a = a / scale
    if torch.compiler.is_compiling():
        out = _lp_pool2d_plain(a, p, k, s, pad)  # elementwise ops inductor fuses; the Function would not
    else:
        out = LpPoolFn.apply(a, p, k, s, pad)
    return out * scale if p > 4 else out


def _lp_pool2d_plain(a: Tensor, p: float, k: tuple[int, int], s: tuple[int, int], pad: tuple[int, int]) -> Tensor:
    """``avg_pool2d(|a|^p) ** (1/p)`` through autograd: the reference formulation of :class:`LpPoolFn`,
    and the one ``torch.compile`` sees."""
    # |a|^p = a^p for even integer p: skipping abs saves a pass forward and one backward.
    mean = F.avg_pool2d((a if p % 2 == 0 else a.abs()).pow(p), k, s, pad, count_include_pad=False)
    # pow(., 1/p) has an infinite slope at 0 (0 * inf = NaN in backward): route zeros around it.
    positive = mean > 0
    root = torch.where(positive, mean, torch.ones_like(mean)).pow(1.0 / p)
    return torch.where(positive, root, torch.zeros_like(root))


@register_layer
class LpPool2d(_Pool2d):
    """Lp pooling in the article's normalized form: ``(1/N sum_i |a_i|^p)^(1/p)``.

    ``p = 1`` is average pooling of ``|a|`` (of ``a`` for non-negative input), ``p = 2`` square-root
    pooling, ``p -> inf`` max pooling of ``|a|`` (``p=math.inf`` is accepted and is exactly that).

    Args:
        p: the norm order, ``p >= 1`` (``math.inf`` allowed).
        kernel_size: window size (int or pair).
        stride: step between windows; defaults to ``kernel_size``.
        padding: implicit zero padding per side, at most ``kernel_size // 2``; padded positions are
            not counted in ``N``.

    Shape:
        (B, C, H, W) -> (B, C, H_out, W_out), ``H_out = floor((H + 2P - K) / S) + 1``.

    Example:
        >>> pool = LpPool2d(2, kernel_size=2)
        >>> pool(torch.ones(1, 1, 4, 4)).shape
        torch.Size([1, 1, 2, 2])

    Reference:
        Sermanet, Chintala & LeCun, "Convolutional Neural Networks Applied to House Numbers Digit
        Classification", ICPR 2012, Eq. 1 (Lp pooling); Boureau, Ponce & LeCun, ICML 2010.

    Deviations:
        torch's ``nn.LPPool2d`` computes the unnormalized ``(sum_i a_i^p)^(1/p)`` without ``|.|``; this
        layer follows the article (mean, absolute value). It is registered as ``lp_pool2d``; torch's as
        ``torch_lp_pool2d``.
    """

    def __init__(self, p: float, kernel_size: IntPair, stride: IntPair | None = None,
                 padding: IntPair = 0) -> None:
        super().__init__(kernel_size, stride, padding)
        self.p = check_real(p, "p", low=1.0, allow_inf=True)

    def forward(self, x: Tensor) -> Tensor:
        return lp_pool2d(x, self.p, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"p={self.p}, {super().extra_repr()}"


def mixed_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
                 alpha: float | Tensor = 0.5) -> Tensor:
    """``alpha * max_pool2d(x) + (1 - alpha) * avg_pool2d(x)`` (padding not counted in the average)."""
    k, s, p = _window_args(kernel_size, stride, padding)
    return alpha * F.max_pool2d(x, k, s, p) + (1 - alpha) * F.avg_pool2d(x, k, s, p, count_include_pad=False)


@register_layer
class MixedPool2d(_Pool2d):
    """Mixed max-average pooling: ``alpha * max + (1 - alpha) * average`` over each window.

    With ``learnable=True`` alpha is one trainable scalar per layer, kept in (0, 1) by a sigmoid:
    the module stores ``alpha_logit`` and exposes ``alpha``.

    Args:
        kernel_size: window size (int or pair).
        stride: step between windows; defaults to ``kernel_size``.
        padding: implicit padding per side, at most ``kernel_size // 2``, never counted.
        alpha: weight of the max, ``0 <= alpha <= 1`` (``0 < alpha < 1`` when learnable).
        learnable: learn alpha by backpropagation.

    Shape:
        (B, C, H, W) -> (B, C, H_out, W_out), as for ``nn.MaxPool2d``.

    Example:
        >>> MixedPool2d(2, alpha=0.25)(torch.arange(4.0).view(1, 1, 2, 2))  # 0.25 * 3 + 0.75 * 1.5
        tensor([[[[1.8750]]]])

    Reference:
        Lee, Gallagher & Tu, "Generalizing Pooling Functions in Convolutional Neural Networks: Mixed,
        Gated, and Tree", AISTATS 2016, Sec. 2 (mixed max-average pooling, one alpha per layer).

    Deviations:
        The paper learns alpha directly and keeps it in [0, 1]; we learn its logit, which keeps it
        in (0, 1) without clipping (clipping would stop the gradient at the ends).
    """

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
                 alpha: float = 0.5, learnable: bool = False) -> None:
        super().__init__(kernel_size, stride, padding)
        self.learnable = bool(learnable)
        if self.learnable:
            a = check_real(alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True)
            self.alpha_logit = nn.Parameter(torch.tensor(math.log(a / (1 - a))))
        else:
            self._alpha = check_real(alpha, "alpha", low=0.0, high=1.0)

    @property
    def alpha(self) -> float | Tensor:
        return torch.sigmoid(self.alpha_logit) if self.learnable else self._alpha

    def forward(self, x: Tensor) -> Tensor:
        alpha = self.alpha
        if isinstance(alpha, Tensor):
            alpha = alpha.to(x.dtype)
        return mixed_pool2d(x, self.kernel_size, self.stride, self.padding, alpha)

    def extra_repr(self) -> str:
        alpha = float(self.alpha) if not self.learnable else float(self.alpha.detach())  # type: ignore[union-attr]
        return f"{super().extra_repr()}, alpha={alpha:.4g}, learnable={self.learnable}"


def softmax_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
                   beta: float = 1.0) -> Tensor:
    """Softmax pooling ``sum_i e^(beta a_i) a_i / sum_i e^(beta a_i)`` over each window.

    Stable for any beta: softmax is shift-invariant, so the maximum of ``beta * a`` over each feature
    map is subtracted before ``exp`` and two ``avg_pool2d`` calls sum the weights
    (:class:`~cnnkit.layers._fused_pool.SoftmaxPoolFn`); if a window's weights would then underflow
    (a window far below its map's maximum, large beta), the maximum is subtracted per window instead,
    on a window copy, where every weight lies in (0, 1] and the largest is exactly 1.
    ``beta = +inf`` is max pooling, ``-inf`` min pooling, ``0`` average pooling.
    """
    k, s, p = _window_args(kernel_size, stride, padding)
    if math.isinf(beta):
        return F.max_pool2d(x, k, s, p) if beta > 0 else -F.max_pool2d(-x, k, s, p)
    if beta == 0:
        return F.avg_pool2d(x, k, s, p, count_include_pad=False)
    if not torch.compiler.is_compiling():
        try:
            return SoftmaxPoolFn.apply(x, k, s, p, beta)
        except SoftmaxUnderflow:
            pass  # some window lies far below its map's maximum: shift per window instead
    return _softmax_pool2d_windows(x, k, s, p, beta)


def _softmax_pool2d_windows(x: Tensor, k: tuple[int, int], s: tuple[int, int], p: tuple[int, int],
                            beta: float) -> Tensor:
    """Softmax pooling on a window copy with torch's stable softmax (the max subtracted per window).

    The reference formulation: taken under ``torch.compile`` (inductor fuses it) and when the fused
    map-shift path of :class:`~cnnkit.layers._fused_pool.SoftmaxPoolFn` would underflow.
    """
    if p != (0, 0):
        x = F.pad(x, (p[1], p[1], p[0], p[0]))
    # (B, C, H_out, W_out, kh * kw): one row per window. For the usual non-overlapping windows this
    # copy is the size of the input; torch's fused softmax then does the stable exp-normalize.
    xw = x.unfold(2, k[0], s[0]).unfold(3, k[1], s[1])
    xw = xw.reshape(*xw.shape[:4], k[0] * k[1])
    logits = xw * beta
    if p != (0, 0):
        # Padded positions get weight exactly 0 (logit -inf), whatever the sign of beta.
        valid = F.pad(torch.ones(1, 1, x.shape[2] - 2 * p[0], x.shape[3] - 2 * p[1], dtype=x.dtype, device=x.device),
                      (p[1], p[1], p[0], p[0]))
        vw = valid.unfold(2, k[0], s[0]).unfold(3, k[1], s[1]).reshape(1, 1, *xw.shape[2:])
        logits = logits.masked_fill(vw == 0, float("-inf"))
    weights = torch.softmax(logits, dim=-1)
    return (weights * xw).sum(dim=-1)


@register_layer
class SoftmaxPool2d(_Pool2d):
    """Softmax pooling: ``sum_i e^(beta a_i) a_i / sum_i e^(beta a_i)`` over each window.

    A smooth interpolation between average pooling (``beta -> 0``) and max pooling
    (``beta -> inf``); negative beta moves towards min pooling.

    Args:
        kernel_size: window size (int or pair).
        stride: step between windows; defaults to ``kernel_size``.
        padding: implicit padding per side, at most ``kernel_size // 2``, never counted.
        beta: inverse temperature; any real number, ``math.inf`` gives max pooling exactly.

    Shape:
        (B, C, H, W) -> (B, C, H_out, W_out), as for ``nn.MaxPool2d``.

    Example:
        >>> SoftmaxPool2d(2, beta=0.0)(torch.arange(4.0).view(1, 1, 2, 2))  # the average
        tensor([[[[1.5000]]]])

    Reference:
        The article's "softmax pooling"; the same soft-max weighting of a pooling region is Eq. 6 of
        Boureau, Ponce & LeCun, "A Theoretical Analysis of Feature Pooling in Visual Recognition",
        ICML 2010 (there with log-sum-exp), and "softmax pooling" in Lee et al., AISTATS 2016.

    Deviations:
        The article requires ``beta > 0``; any real beta is accepted (0 and negative values give
        average and soft-min pooling).
    """

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
                 beta: float = 1.0) -> None:
        super().__init__(kernel_size, stride, padding)
        self.beta = check_real(beta, "beta", allow_inf=True)

    def forward(self, x: Tensor) -> Tensor:
        return softmax_pool2d(x, self.kernel_size, self.stride, self.padding, self.beta)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, beta={self.beta}"
