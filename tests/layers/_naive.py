"""Naive loop references, written independently of the library (no unfold, no pooling ops)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def window_reduce(x: Tensor, k: int, s: int, p: int, fn: Callable[[list[float]], float]) -> Tensor:
    """Apply ``fn`` to the list of real (unpadded) values of each k x k window, stride s, padding p."""
    b, c, h, w = x.shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = torch.empty(b, c, oh, ow, dtype=torch.float64)
    for n in range(b):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    vals = [float(x[n, ch, y, z])
                            for y in range(i * s - p, i * s - p + k) for z in range(j * s - p, j * s - p + k)
                            if 0 <= y < h and 0 <= z < w]
                    out[n, ch, i, j] = fn(vals)
    return out


def lp(p: float) -> Callable[[list[float]], float]:
    return lambda v: (sum(abs(a) ** p for a in v) / len(v)) ** (1 / p)


def softmax_weighted(beta: float) -> Callable[[list[float]], float]:
    def f(v: list[float]) -> float:
        m = max(beta * a for a in v)
        w = [math.exp(beta * a - m) for a in v]
        return sum(wi * a for wi, a in zip(w, v)) / sum(w)
    return f


def mean(v: list[float]) -> float:
    return sum(v) / len(v)
