"""Fused forward/backward kernels for the window pooling layers, built from torch's own fast ops.

Why by hand: torch has no softmax, Lp-with-|.|, or stochastic pooling kernel, and composing them from
elementwise ops lets autograd store and replay every intermediate (five to ten full-size passes each
way). Each ``autograd.Function`` here computes the same function as the plain formulation it replaces
(kept in the layer modules as the path taken under ``torch.compile``, and in the tests as the oracle)
with fewer passes: ``avg_pool2d`` and its backward do the window sums, and the backward is the closed
form of the gradient evaluated from a few saved tensors. All are exact up to float rounding; where a
shortcut could lose precision (softmax's map-wide shift), the caller checks and falls back.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._windows import Pair, strided, window_slabs, window_sum, zero_padded


def _avg_backward(grad: Tensor, x: Tensor, k: Pair, s: Pair, p: Pair, count_include_pad: bool) -> Tensor:
    return torch.ops.aten.avg_pool2d_backward(grad, x, list(k), list(s), list(p), False, count_include_pad, None)


class SoftmaxUnderflow(Exception):
    """Raised by :class:`SoftmaxPoolFn` when a window's weights underflow under the map-wide shift."""


class SoftmaxPoolFn(torch.autograd.Function):
    """``out = avg(e x) / avg(e)``, ``e = exp(beta (x - c))``, ``c`` the max (beta > 0) or min of each map.

    Softmax is shift-invariant per window, and a shift shared by a whole map is shared by each of its
    windows, so the result is the per-window-stable softmax pooling exactly. With the shift taken per
    map instead of per window, two ``avg_pool2d`` calls do all window sums for any kernel, stride and
    padding (zero-padded ``e`` gives padded positions weight 0). The cost: a window whose largest weight
    lies below ``tiny / eps`` (float32: beta times its maximum some 70 below the map's) would lose
    precision; forward then raises :class:`SoftmaxUnderflow` and the caller takes the per-window path.

    Backward: ``d out_w / d x_i = e_i (1 + beta (x_i - out_w)) / sum_w e`` summed over the windows that
    hold ``i``, i.e. ``e * (A (1 + beta x) - beta B)`` with ``A``, ``B`` the avg-pool adjoints of
    ``g / den`` and ``g out / den``.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, k: Pair, s: Pair, p: Pair, beta: float) -> Tensor:
        c = x.amax(dim=(-2, -1), keepdim=True) if beta > 0 else x.amin(dim=(-2, -1), keepdim=True)
        e = torch.sub(x, c).mul_(beta).exp_()  # every weight in (0, 1]: cannot overflow
        den = F.avg_pool2d(e, k, s, p)
        info = torch.finfo(x.dtype)
        if bool((den < info.tiny / info.eps * 4).any()):
            raise SoftmaxUnderflow
        out = F.avg_pool2d(e * x, k, s, p).div_(den)
        ctx.save_for_backward(x, e, den, out)
        ctx.window = (k, s, p)
        ctx.beta = beta
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        x, e, den, out = ctx.saved_tensors
        k, s, p = ctx.window
        beta = ctx.beta
        gd = g / den
        a = _avg_backward(gd, x, k, s, p, True)
        b = _avg_backward(gd.mul_(out), x, k, s, p, True)
        grad = torch.addcmul(a, a, x, value=beta).sub_(b, alpha=beta).mul_(e)
        return grad, None, None, None, None


def _inv_count(x: Tensor, k: Pair, pad: Pair) -> Tensor:
    """1 / (number of real inputs) of each stride-1 window: the ``count_include_pad=False`` divisor."""
    ones = F.pad(x.new_ones(1, 1, *x.shape[-2:]), (pad[1], pad[1], pad[0], pad[0]))
    return window_sum(ones, k, (1, 1)).reciprocal_()


class LpPoolFn(torch.autograd.Function):
    """``out = avg(|x|^p) ** (1/p)`` (padding not counted), with the closed-form backward.

    ``d out / d x_i = sum_w g_w mean_w^(1/p - 1) / N_w * sgn(x_i) |x_i|^(p-1)``; a window with
    ``mean = 0`` contributes 0 there (the plain formulation routes it around ``pow``'s infinite slope).
    The factor ``1/p`` of the root's derivative cancels the ``p`` of ``|x|^p``'s. At stride 1 the window
    sums are :func:`window_sum` (faster than ``avg_pool2d`` there), and the adjoint is the same
    window sum of the gradient padded by ``k - 1 - padding``; otherwise ``avg_pool2d`` and its backward.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, p: float, k: Pair, s: Pair, pad: Pair) -> Tensor:
        even = p % 2 == 0  # |x|^p = x^p: one pass less forward and backward
        if s == (1, 1):
            buf, inner = zero_padded(x, (x.shape[-2], x.shape[-1]), (pad[0], pad[0], pad[1], pad[1]))
            if even:
                torch.pow(x, p, out=inner)
            else:
                torch.abs(x, out=inner).pow_(p)
            inv = _inv_count(x, k, pad)
            mean = window_sum(buf, k, s).mul_(inv)
            del buf, inner
        else:
            inv = None
            mean = F.avg_pool2d(x.pow(p) if even else x.abs().pow_(p), k, s, pad, count_include_pad=False)
        out = mean.pow(1.0 / p)
        ctx.save_for_backward(x, mean, out, inv)
        ctx.window = (p, k, s, pad)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        x, mean, out, inv = ctx.saved_tensors
        p, k, s, pad = ctx.window
        if s == (1, 1):
            q = (k[0] - 1 - pad[0], k[1] - 1 - pad[1])
            buf, gm = zero_padded(g, (g.shape[-2], g.shape[-1]), (q[0], q[0], q[1], q[1]))
            torch.div(out, mean, out=gm).nan_to_num_(nan=0.0).mul_(g).mul_(inv)  # mean^(1/p-1) g / N
            gt = window_sum(buf, k, s)
        else:
            gm = torch.div(out, mean).nan_to_num_(nan=0.0).mul_(g)  # out / mean = mean^(1/p - 1); 0/0 -> 0
            gt = _avg_backward(gm, x, k, s, pad, False)
        if p == 2:
            return gt.mul_(x), None, None, None, None
        if p % 2 == 0:
            dx = x.pow(p - 1)
        elif p % 2 == 1 and p >= 3:
            dx = x.abs().pow_(p - 2).mul_(x)  # |x|^(p-2) x: no sign pass
        else:
            dx = x.abs().pow_(p - 1).mul_(x.sign())
        return dx.mul_(gt), None, None, None, None


class StochasticEvalFn(torch.autograd.Function):
    """Probabilistic weighting ``sum_i a_i^2 / sum_i a_i`` per region (0 where the region sums to 0).

    Regions are summed as ``kh * kw`` strided slabs (:func:`window_slabs`); backward is
    ``d out / d a_i = (2 a_i - out) / sum_j a_j`` per region, written slab by slab.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, k: Pair, s: Pair) -> Tensor:
        slabs = window_slabs(x, k, s)
        den = slabs[0].clone()
        num = slabs[0] * slabs[0]
        for a in slabs[1:]:
            den.add_(a)
            num.addcmul_(a, a)
        positive = den > 0
        out = num.div_(torch.where(positive, den, 1.0)).masked_fill_(~positive, 0.0)
        g_scale = torch.where(positive, den, torch.inf).reciprocal_()  # 1 / den, 0 for empty regions
        ctx.save_for_backward(x, out, g_scale)
        ctx.window = (k, s)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        x, out, g_scale = ctx.saved_tensors
        k, s = ctx.window
        gd = g * g_scale
        tiles = s == k and x.shape[-2] % k[0] == 0 and x.shape[-1] % k[1] == 0
        grad = torch.empty_like(x) if tiles else torch.zeros_like(x)
        for a, ga in zip(window_slabs(x, k, s), window_slabs(grad, k, s), strict=True):
            term = torch.mul(a, 2.0).sub_(out).mul_(gd)
            if tiles:
                ga.copy_(term)  # every input lies in exactly one region
            else:
                ga.add_(term)
        return grad, None, None


def stochastic_sample_index(a: Tensor, k: Pair, s: Pair, generator: torch.Generator | None) -> Tensor:
    """Flat index into each map of ``a`` (non-negative) of one element per region, drawn with prob ``a_i / sum_j a_j``.

    Inverse-CDF sampling: one uniform ``u`` per region, and the pick is the first ``i`` whose running sum
    ``S_i = a_0 + ... + a_i`` exceeds ``t = u S_{n-1}``, i.e. the count of ``S_j <= t`` for ``j < n - 1``.
    ``P(pick = i) = P(S_{i-1} <= t < S_i) = a_i / S_{n-1}``; a zero ``a_i`` is an empty interval, never
    picked. ``u < 1`` and ``S_{n-1}`` is the same float in ``t`` and in the comparisons, so ``t < S_{n-1}``
    exactly. An all-zero region picks its last element (value 0). One uniform per region is a quarter of
    the random numbers of the exponential race for 2x2 regions, and uniforms are far cheaper than
    exponentials on CPU; overlapping regions draw independently as their ``u`` are independent.
    """
    slabs = window_slabs(a, k, s)
    sums = [slabs[0]]  # S_0 ... S_{n-2}
    for x in slabs[1:-1]:
        sums.append(sums[-1] + x)
    total = sums[-1] + slabs[-1] if len(slabs) > 1 else slabs[0]
    t = torch.rand(total.shape, generator=generator, dtype=total.dtype, device=total.device).mul_(total)
    pick = torch.zeros(total.shape, dtype=torch.int64, device=a.device)
    for cum in sums if len(slabs) > 1 else []:
        pick.add_(t >= cum)
    oh, ow = total.shape[-2:]
    width = a.shape[-1]
    base = (torch.arange(oh, device=a.device)[:, None] * (s[0] * width)
            + torch.arange(ow, device=a.device)[None, :] * s[1])
    if k[1] == 1:
        return pick.mul_(width).add_(base)
    row = torch.div(pick, k[1], rounding_mode="floor")
    return pick.add_(row, alpha=width - k[1]).add_(base)  # row * W + (pick - row * kw) + base


def _max_along(x: Tensor, dim: int, k: int, n: int, step: int) -> tuple[Tensor, Tensor | None]:
    """Running max over ``k`` strided views along ``dim`` and which offset attains it first.

    The choice is a float 0/1 mask of the second offset for ``k = 2`` (a float multiply in backward is
    several times faster on CPU than ``where`` or ``masked_fill``), the offset as uint8 otherwise.
    """
    views = [strided(x, dim, i, n, step) for i in range(k)]
    if k == 1:
        return views[0].clone(), None
    acc = torch.maximum(views[0], views[1])  # NaN-propagating, as max_pool2d
    if k == 2:
        return acc, torch.gt(views[1], views[0], out=torch.empty_like(acc))  # strict: a tie keeps offset 0
    pick = (views[1] > views[0]).to(torch.uint8)
    for i, view in enumerate(views[2:], 2):
        pick.masked_fill_(view > acc, i)
        torch.maximum(acc, view, out=acc)
    return acc, pick


def _max_along_adjoint(g: Tensor, pick: Tensor | None, size: int, dim: int, k: int, step: int) -> Tensor:
    """Each output's gradient to the offset ``pick`` chose: ``k`` masked strided adds (zeros elsewhere)."""
    n = g.shape[dim]
    if pick is None and n == size:
        return g
    shape = list(g.shape)
    shape[dim] = size
    full = g.new_zeros(shape)
    if pick is None:  # k == 1: a strided subsample
        strided(full, dim, 0, n, step).copy_(g)
    elif k == 2:
        second = g * pick
        torch.sub(g, second, out=strided(full, dim, 0, n, step))  # offset 0 is written before 1 adds
        strided(full, dim, 1, n, step).add_(second)
    else:
        for i in range(k):
            strided(full, dim, i, n, step).add_(g * (pick == i))
    return full


class SeparableMaxFn(torch.autograd.Function):
    """``max_pool2d(x, k, s)`` (no padding) as a max over rows then over columns, on strided views.

    Max is separable, and so is its first-maximum choice: the first (row-major) window element equal to
    the window maximum lies in the first row whose maximum it is, at that row's first maximum. So the
    gradient goes where ``max_pool2d``'s does, ties included. Used by :class:`MaxBlurPool2d`'s dense
    (stride-1) max, where torch's kernel with indices costs several times the elementwise passes here.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, k: Pair, s: Pair) -> Tensor:
        oh = (x.shape[-2] - k[0]) // s[0] + 1
        ow = (x.shape[-1] - k[1]) // s[1] + 1
        cols, pick_w = _max_along(x, -1, k[1], ow, s[1])
        out, pick_h = _max_along(cols, -2, k[0], oh, s[0])
        ctx.save_for_backward(pick_w, pick_h)
        ctx.meta = (x.shape[-2:], k, s)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        pick_w, pick_h = ctx.saved_tensors
        (h, w), k, s = ctx.meta
        cols = _max_along_adjoint(g, pick_h, h, -2, k[0], s[0])
        return _max_along_adjoint(cols, pick_w, w, -1, k[1], s[1]), None, None
