"""Window arithmetic on strided views: per-offset slabs, separable window sums, padding, and their adjoints.

Why by hand: torch's pooling kernels fix the reduction (max, mean); softmax, Lp, stochastic and blur
pooling need other per-window arithmetic, and on CPU a few elementwise ops over output-sized strided
views beat both an unfold copy and a depthwise convolution with a tiny kernel. The adjoints (transposes)
here are what the fused backward passes in :mod:`._fused_pool` and :mod:`.blur_pool` call.
"""

from __future__ import annotations

import torch
from torch import Tensor

Pair = tuple[int, int]
Pads = tuple[int, int, int, int]  # (top, bottom, left, right)


def window_slabs(x: Tensor, k: Pair, s: Pair) -> list[Tensor]:
    """The ``kh * kw`` strided views ``x[..., i::sh, j::sw]`` cut to the output size, window order row-major.

    Slab ``i * kw + j`` holds, for every output position, the window element at offset (i, j): a
    per-window reduction over a few elements becomes a few elementwise ops on output-sized views,
    without an unfold copy and without reducing over a short strided axis (slow on CPU).
    """
    oh = (x.shape[-2] - k[0]) // s[0] + 1
    ow = (x.shape[-1] - k[1]) // s[1] + 1
    return [x[..., i:i + s[0] * (oh - 1) + 1:s[0], j:j + s[1] * (ow - 1) + 1:s[1]]
            for i in range(k[0]) for j in range(k[1])]


def zero_padded(like: Tensor, size: Pair, pad: tuple[int, int, int, int]) -> tuple[Tensor, Tensor]:
    """``(buffer, interior)``: an uninitialized ``size`` map padded by (top, bottom, left, right) zeros.

    Writing straight into ``interior`` (``torch.abs(x, out=interior)``) saves the copy ``F.pad`` makes.
    """
    top, bottom, left, right = pad
    h, w = size
    buf = like.new_empty(*like.shape[:-2], h + top + bottom, w + left + right)
    for strip in (buf[..., :top, :], buf[..., top + h:, :], buf[..., :, :left], buf[..., :, left + w:]):
        strip.zero_()
    return buf, buf[..., top:top + h, left:left + w]


def _strided(x: Tensor, dim: int, start: int, n: int, step: int) -> Tensor:
    v = x.narrow(dim, start, step * (n - 1) + 1)
    return v[..., ::step, :] if dim == -2 else v[..., ::step]


def _tap_sum(x: Tensor, dim: int, taps: list[float], n: int, step: int) -> Tensor:
    views = [_strided(x, dim, i, n, step) for i in range(len(taps))]
    if taps[0] == 1.0 and len(views) > 1:
        acc, rest = torch.add(views[0], views[1], alpha=taps[1]), 2
    else:
        acc, rest = torch.mul(views[0], taps[0]), 1
    for view, tap in zip(views[rest:], taps[rest:], strict=True):
        acc.add_(view, alpha=tap)
    return acc


def window_sum(t: Tensor, k: Pair, s: Pair, taps: tuple[list[float], list[float]] | None = None) -> Tensor:
    """Separable (weighted) window sums of an already padded ``t``: rows, then columns of the row sums.

    ``kh + kw - 2`` elementwise ops on strided views in place of one pooling or depthwise-conv kernel:
    for a 3x3 window at stride 1 about half the time of ``avg_pool2d`` on CPU (measured in
    ``benchmarks/layers.py``). ``taps`` are the row and column weights of a separable filter.
    """
    th, tw = taps if taps is not None else ([1.0] * k[0], [1.0] * k[1])
    oh = (t.shape[-2] - k[0]) // s[0] + 1
    ow = (t.shape[-1] - k[1]) // s[1] + 1
    return _tap_sum(_tap_sum(t, -2, th, oh, s[0]), -1, tw, ow, s[1])


def window_sum_adjoint(g: Tensor, size: Pair, k: Pair, s: Pair,
                       taps: tuple[list[float], list[float]] | None = None) -> Tensor:
    """The transpose of :func:`window_sum` onto a padded map of ``size``: scatter-adds of strided slabs."""
    th, tw = taps if taps is not None else ([1.0] * k[0], [1.0] * k[1])
    oh, ow = g.shape[-2:]
    cols = g.new_zeros(*g.shape[:-1], size[1])
    for j, tap in enumerate(tw):
        _strided(cols, -1, j, ow, s[1]).add_(g, alpha=tap)
    full = g.new_zeros(*g.shape[:-2], *size)
    for i, tap in enumerate(th):
        _strided(full, -2, i, oh, s[0]).add_(cols, alpha=tap)
    return full




def _sources(mode: str, lo: int, hi: int, n: int) -> tuple[list[int], list[int]]:
    """Padded-axis indices: the ``lo + hi`` padding positions and the interior position each copies."""
    dst = list(range(lo)) + list(range(lo + n, lo + n + hi))
    src = []
    for d in dst:
        i = d - lo  # position in the unpadded axis, < 0 or >= n
        if mode == "reflect":
            i = -i if i < 0 else 2 * (n - 1) - i
        elif mode == "replicate":
            i = min(max(i, 0), n - 1)
        else:  # circular
            i %= n
        src.append(i + lo)
    return dst, src


def pad_copy(x: Tensor, pads: Pads, mode: str) -> Tensor:
    """``F.pad(x, (left, right, top, bottom), mode)`` for "zeros", "reflect", "replicate", "circular".

    One copy of ``x`` plus the thin border strips (torch's reflection-pad kernel is several times
    slower than a copy on CPU). Rows are padded over the interior columns first, then columns over the
    full height, which fills the corners as padding both axes does. Needs ``pads`` smaller than the
    map for "reflect" and at most its size for "circular", as ``F.pad`` does (callers check).
    """
    top, bottom, left, right = pads
    h, w = x.shape[-2:]
    buf, inner = zero_padded(x, (h, w), pads)
    inner.copy_(x)
    if mode == "zeros":
        return buf
    dst, src = _sources(mode, top, bottom, h)
    if dst:
        buf[..., dst, left:left + w] = buf[..., src, left:left + w]
    dst, src = _sources(mode, left, right, w)
    if dst:
        buf[..., :, dst] = buf[..., :, src]
    return buf


def pad_copy_adjoint(g: Tensor, pads: Pads, mode: str) -> Tensor:
    """The transpose of :func:`pad_copy`: each padding cell's gradient goes back to the cell it copied.

    Modifies ``g`` (a buffer of the padded size) in place and returns the interior view.
    """
    top, bottom, left, right = pads
    h = g.shape[-2] - top - bottom
    w = g.shape[-1] - left - right
    if mode != "zeros":
        # Undo the columns (full height) first, then the rows (interior columns): the forward order reversed.
        dst, src = _sources(mode, left, right, w)
        for d, s_ in zip(dst, src, strict=True):
            g[..., :, s_] += g[..., :, d]
        dst, src = _sources(mode, top, bottom, h)
        for d, s_ in zip(dst, src, strict=True):
            g[..., s_, left:left + w] += g[..., d, left:left + w]
    return g[..., top:top + h, left:left + w]
