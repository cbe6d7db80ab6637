"""Receptive-field tracking through a forward pass, op by op (the standard recursion, made general).

For a unit of a feature map, the receptive field along one spatial axis is described by three numbers
in input-pixel units (Dumoulin & Visin 2016; Araujo et al. 2019, "Computing Receptive Fields of
Convolutional Neural Networks", Distill):

- ``size`` r: how many input pixels the unit can see,
- ``jump`` j: the distance in input pixels between adjacent units of the map,
- ``start``: the input coordinate of the centre of the first unit's field (pixel centres are 0, 1, ...;
  negative values mean the field reaches into the padding).

A convolution or pooling with kernel k, stride s, padding p (left) and dilation d maps them as::

    r_out = r_in + (k - 1) * d * j_in
    j_out = j_in * s
    start_out = start_in + ((k - 1) / 2 * d - p) * j_in

Rather than walking a module list (which breaks for any model with a custom ``forward``), the tracker is
a :class:`~torch.utils._python_dispatch.TorchDispatchMode`: every ATen op of a real forward pass maps the
fields of its tensor inputs to its outputs. So residual additions and channel concatenations take the
union of their inputs' fields (the max over paths when the paths are centred alike), and functional
calls inside ``forward`` are seen too. Rules beyond the recursion:

- **Up-sampling** (transposed convolution with stride s, nearest or linear resizing by a factor f):
  which input units feed output o is not linear in o (``floor(o / s)``), so no exact (size, jump,
  start) triple exists. The tracker reports the tightest linear *envelope* that contains every output's
  field: ``j_out = j_in / s`` and, for a transposed convolution,
  ``r_out = r_in + (k - 1) d / s * j_in``, ``start_out = start_in + (p - (k - 1) d / 2) / s * j_in``
  (nearest: ``r_in + (f - 1) / f * j_in``; linear: ``r_in + 2 j_in``). Sizes can then be fractional.
  Adaptive pooling to a size that does not divide the input uses the same kind of envelope.
- **Padding, cropping and strided slicing** shift ``start`` (and scale ``jump`` for a step).
- **Global operations** (global/adaptive-to-1 pooling, reductions or softmax over a spatial axis, matrix
  products as in fully connected and attention layers) give ``global``: the unit covers the whole input,
  and no number is invented. Flattening gives "no spatial axes". Normalization layers are treated as
  position-wise (their statistics as constants, as in eval mode).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["AxisRF", "RFState", "RFTracker", "GLOBAL_REASON"]

GLOBAL_REASON = "global: covers the whole input"


@dataclass(frozen=True)
class AxisRF:
    """Receptive field along one input axis, in input pixels (see the module docstring)."""

    size: float
    jump: float
    start: float

    def interval(self, index: int = 0) -> tuple[float, float]:
        """Input coordinates [lo, hi] (pixel centres) seen by unit ``index`` of the map."""
        centre = self.start + index * self.jump
        half = (self.size - 1) / 2
        return centre - half, centre + half

    def to_dict(self) -> dict[str, float | int]:
        return {k: _num(v) for k, v in (("size", self.size), ("jump", self.jump), ("start", self.start))}


def _num(v: float) -> float | int:
    return int(round(v)) if abs(v - round(v)) < 1e-9 else round(v, 6)


@dataclass(frozen=True)
class RFState:
    """The receptive field of every unit of one tensor.

    ``kind`` is ``"spatial"`` (``axes`` maps a tensor dim to (input axis index, :class:`AxisRF`)),
    ``"global"`` (every unit sees the whole input) or ``"none"`` (no spatial axes; ``reason`` says why).
    """

    kind: str
    axes: dict[int, tuple[int, AxisRF]] = field(default_factory=dict)
    reason: str = ""

    def per_axis(self) -> list[AxisRF] | None:
        if self.kind != "spatial":
            return None
        return [rf for _, rf in sorted(self.axes.values(), key=lambda t: t[0])]


def _global(reason: str = GLOBAL_REASON) -> RFState:
    return RFState("global", reason=reason)


def _none(reason: str) -> RFState:
    return RFState("none", reason=reason)


def _union(states: list[RFState]) -> RFState:
    """Field of an op that combines several inputs position by position: the union of their fields."""
    if any(s.kind == "global" for s in states):
        return next(s for s in states if s.kind == "global")
    if any(s.kind == "none" for s in states):
        return next(s for s in states if s.kind == "none")
    base = states[0]
    if len(states) == 1:
        return base
    axes: dict[int, tuple[int, AxisRF]] = {}
    for dim, (axis, rf) in base.axes.items():
        lo, hi = rf.interval()
        jump = rf.jump
        for other in states[1:]:
            if dim not in other.axes:
                return _none("combines tensors whose spatial axes do not line up")
            o = other.axes[dim][1]
            olo, ohi = o.interval()
            lo, hi, jump = min(lo, olo), max(hi, ohi), max(jump, o.jump)
        axes[dim] = (axis, AxisRF(hi - lo + 1, jump, (lo + hi) / 2))
    return RFState("spatial", axes)


def _ints(v: Any, n: int, default: int | None = None) -> list[int]:
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        v = default
    if isinstance(v, (list, tuple)):
        v = list(v)
        return v * n if len(v) == 1 else v
    return [int(v)] * n


def _bind(func: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, a in enumerate(func._schema.arguments):
        if i < len(args):
            out[a.name] = args[i]
        elif a.name in kwargs:
            out[a.name] = kwargs[a.name]
        elif a.has_default_value():
            out[a.name] = a.default_value
        else:
            out[a.name] = None
    return out


@dataclass
class WindowOp:
    """A sliding-window op seen during tracking (for the stride-fit check).

    ``field`` is the receptive field of the op's input along ``dim`` and ``extent`` the network input's
    size along that axis (both None when the input's field is not tracked there), so a check can tell
    which input pixels the windows that torch drops would have seen.
    """

    op: str
    dim: int
    size_in: int
    kernel: int
    stride: int
    padding: int
    dilation: int
    ceil_mode: bool
    field: AxisRF | None = None
    extent: int | None = None


_REDUCTIONS = {
    "mean", "sum", "amax", "amin", "max", "min", "std", "var", "var_mean", "std_mean", "logsumexp", "norm",
    "linalg_vector_norm", "prod", "argmax", "argmin", "all", "any", "nansum", "nanmean", "median", "mode",
}  # fmt: skip
_DIM_MIXERS = {"_softmax", "_log_softmax", "softmax", "log_softmax", "cumsum", "cumprod", "sort", "topk", "cummax", "cummin"}
_MATMUL = {"mm", "addmm", "bmm", "baddbmm", "matmul", "_scaled_dot_product_flash_attention",
           "_scaled_dot_product_efficient_attention", "_scaled_dot_product_attention_math",
           "_scaled_dot_product_flash_attention_for_cpu", "scaled_dot_product_attention", "addmv", "mv", "dot"}  # fmt: skip
_WINDOW_RE = re.compile(r"(?:max|avg)_pool(\d)d")
_VIEWS = {"view", "_unsafe_view", "reshape", "_reshape_alias", "flatten", "unflatten", "expand", "view_as", "expand_as"}


class RFTracker(TorchDispatchMode):
    """Dispatch mode that attaches an :class:`RFState` to every tensor derived from the input.

    ``on_window(op: WindowOp)`` is called for each convolution/pooling axis (before it runs), so the
    caller can check that strides fit.
    """

    def __init__(self, on_window: Callable[[WindowOp], None] | None = None) -> None:
        super().__init__()
        self._table: dict[int, tuple[torch.Tensor, RFState]] = {}
        self._extent: dict[int, int] = {}  # input axis -> size of the network input along it
        self.on_window = on_window

    # -- table -----------------------------------------------------------------------------------------
    def mark_input(self, x: torch.Tensor) -> None:
        """Declare ``x`` as the network input: dims 2.. are spatial (dims 1.. for integer token ids)."""
        first = 1 if not (x.is_floating_point() or x.is_complex()) else 2
        if x.ndim <= first:
            self._table[id(x)] = (x, _none("the input has no spatial axes"))
            return
        axes = {d: (d - first, AxisRF(1.0, 1.0, 0.0)) for d in range(first, x.ndim)}
        self._extent = {d - first: int(x.shape[d]) for d in range(first, x.ndim)}
        self._table[id(x)] = (x, RFState("spatial", axes))

    def window_op(
        self, op: str, x: torch.Tensor, dim: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
    ) -> WindowOp:
        """The :class:`WindowOp` of a window sliding along ``dim`` of ``x``, with ``x``'s field there."""
        s = self.state(x)
        field_, extent = None, None
        if s is not None and s.kind == "spatial" and dim in s.axes:
            axis, field_ = s.axes[dim]
            extent = self._extent.get(axis)
        return WindowOp(op, dim, int(x.shape[dim]), kernel, stride, padding, dilation, ceil_mode, field_, extent)

    def state(self, t: Any) -> RFState | None:
        if isinstance(t, torch.Tensor):
            entry = self._table.get(id(t))
            if entry is not None and entry[0] is t:
                return entry[1]
        return None

    def _set(self, t: Any, s: RFState) -> None:
        if isinstance(t, torch.Tensor):
            self._table[id(t)] = (t, s)

    def clear(self) -> None:
        self._table.clear()

    # -- dispatch ------------------------------------------------------------------------------------------
    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        flat_args, _ = tree_flatten((args, kwargs))
        tracked = [(t, self.state(t)) for t in flat_args if self.state(t) is not None]
        if tracked and (name in ("convolution", "_convolution") or _WINDOW_RE.match(name)):
            self._check_windows(func, name, args, kwargs)
        out = func(*args, **kwargs)
        if not tracked:
            return out
        try:
            self._propagate(func, name.rstrip("_") if not name.startswith("_") else name, args, kwargs, tracked, out)
        except Exception as exc:  # noqa: BLE001 - a tracking rule must never break the forward pass
            for t in tree_flatten(out)[0]:
                self._set(t, _none(f"aten.{name}: receptive field not tracked ({type(exc).__name__})"))
        return out

    def _check_windows(self, func: Any, name: str, args: tuple, kwargs: dict) -> None:
        if self.on_window is None:
            return
        b = _bind(func, args, kwargs)
        x = b.get("input", b.get("self"))
        if name in ("convolution", "_convolution"):
            if b.get("transposed"):
                return
            w = b["weight"]
            n = w.ndim - 2
            ks, ss = list(w.shape[2:]), _ints(b["stride"], n, 1)
            ps, ds, ceil = _ints(b["padding"], n, 0), _ints(b["dilation"], n, 1), False
        else:
            n = int(_WINDOW_RE.match(name).group(1))  # type: ignore[union-attr]
            ks = _ints(b["kernel_size"], n)
            ss = _ints(b.get("stride"), n, None) if b.get("stride") not in (None, [], ()) else ks
            ps, ds = _ints(b.get("padding"), n, 0), _ints(b.get("dilation"), n, 1)
            ceil = bool(b.get("ceil_mode"))
        for i in range(n):
            self.on_window(self.window_op(name, x, x.ndim - n + i, ks[i], ss[i], ps[i], ds[i], ceil))  # type: ignore[arg-type, union-attr]

    def _propagate(self, func: Any, name: str, args: tuple, kwargs: dict, tracked: list, out: Any) -> None:
        outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if not outs:
            return
        b = _bind(func, args, kwargs)
        main_t, main = tracked[0]
        states = [s for _, s in tracked]
        new: RFState

        if name in ("convolution", "_convolution"):
            new = self._conv(b, main)
        elif _WINDOW_RE.match(name):
            new = self._pool(name, b, main)
        elif "adaptive" in name and "pool" in name:
            new = self._adaptive(main_t, outs[0], main)
        elif name.startswith(("upsample", "_upsample")):
            new = self._resize(name, main_t, outs[0], main)
        elif name in ("constant_pad_nd",) or (name.startswith(("reflection_pad", "replication_pad"))):
            new = self._pad(b, main_t, main)
        elif name == "embedding":
            new = states[0]
        elif name in _MATMUL:
            new = _global("global: covers the whole input (matrix product over all positions)")
        elif name in _REDUCTIONS:
            new = self._reduce(b, main_t, outs[0], main)
        elif name in _DIM_MIXERS:
            dims = {d % main_t.ndim for d in _ints(b.get("dim"), 1, 0)}
            new = _global() if main.kind == "spatial" and dims & set(main.axes) else main
        elif name in _VIEWS:
            new = self._view(main_t, outs[0], main)
        elif name in ("unsqueeze",):
            d = b["dim"] % (main_t.ndim + 1)
            new = self._remap(main, lambda k: k + 1 if k >= d else k)
        elif name in ("squeeze",):
            new = self._view(main_t, outs[0], main)
        elif name == "permute":
            order = [d % main_t.ndim for d in b["dims"]]
            new = self._remap(main, lambda k: order.index(k))
        elif name in ("transpose", "t", "swapaxes"):
            d0, d1 = (0, 1) if name == "t" else (b["dim0"] % main_t.ndim, b["dim1"] % main_t.ndim)
            new = self._remap(main, lambda k: d1 if k == d0 else d0 if k == d1 else k)
        elif name == "slice":
            new = self._slice(b, main_t, main)
        elif name == "select":
            d = b["dim"] % main_t.ndim
            if main.kind == "spatial" and d in main.axes:
                new = _none("selects one position along a spatial axis")
            else:
                new = self._remap(main, lambda k: k - 1 if k > d else k)
        elif name in ("cat", "stack"):
            new = self._cat(name, b, tracked, outs[0])
        elif name in ("split", "split_with_sizes", "chunk", "unbind", "unsafe_split"):
            d = b.get("dim", 0) % main_t.ndim
            if main.kind == "spatial" and d in main.axes:
                new = _none("split along a spatial axis")
            elif name == "unbind":
                new = self._remap(main, lambda k: k - 1 if k > d else k)
            else:
                new = main
        elif name in ("native_layer_norm", "native_group_norm"):
            new = main  # statistics treated as constants (see module docstring)
        elif name in ("im2col", "col2im", "pixel_shuffle", "pixel_unshuffle", "grid_sampler_2d", "roi_align"):
            new = _none(f"aten.{name}: receptive field not tracked through this op")
        else:
            new = self._elementwise(name, tracked, outs, main_t)
        for t in outs:
            self._set(t, new)

    def apply_window(
        self, x: torch.Tensor, y: torch.Tensor, kernel: list[int], stride: list[int], padding: list[int], dilation: list[int]
    ) -> None:
        """Give ``y`` the field of a sliding window over ``x`` (for custom layers whose ops hide it)."""
        s = self.state(x)
        if s is None:
            return
        n = len(kernel)
        self._set(
            y,
            self._map_axes(
                s, x, n, lambda i, r: AxisRF(r.size + (kernel[i] - 1) * dilation[i] * r.jump, r.jump * stride[i],
                                             r.start + ((kernel[i] - 1) / 2 * dilation[i] - padding[i]) * r.jump)
            ),
        )  # fmt: skip

    # -- rules ------------------------------------------------------------------------------------------------
    @staticmethod
    def _remap(s: RFState, f: Callable[[int], int]) -> RFState:
        if s.kind != "spatial":
            return s
        return RFState("spatial", {f(d): v for d, v in s.axes.items()})

    @staticmethod
    def _map_axes(s: RFState, x: torch.Tensor, n: int, fn: Callable[[int, AxisRF], AxisRF]) -> RFState:
        if s.kind != "spatial":
            return s if s.kind == "global" else _global("global: covers the whole input (window over a flattened input)")
        axes = dict(s.axes)
        for i in range(n):
            dim = x.ndim - n + i
            if dim in axes:
                axis, rf = axes[dim]
                axes[dim] = (axis, fn(i, rf))
        return RFState("spatial", axes)

    def _conv(self, b: dict, s: RFState) -> RFState:
        x, w = b["input"], b["weight"]
        n = w.ndim - 2
        ks = list(w.shape[2:])
        ss, ps, ds = _ints(b["stride"], n, 1), _ints(b["padding"], n, 0), _ints(b["dilation"], n, 1)
        if not b.get("transposed"):
            return self._map_axes(
                s, x, n, lambda i, r: AxisRF(r.size + (ks[i] - 1) * ds[i] * r.jump, r.jump * ss[i],
                                             r.start + ((ks[i] - 1) / 2 * ds[i] - ps[i]) * r.jump)
            )  # fmt: skip

        def tconv(i: int, r: AxisRF) -> AxisRF:
            # Output o is fed by input units ceil((o + p - (k-1) d) / s) .. floor((o + p) / s): the linear
            # envelope [(o + p - (k-1) d) / s, (o + p) / s] holds them for every o.
            k, st, p, d = ks[i], ss[i], ps[i], ds[i]
            return AxisRF(r.size + (k - 1) * d / st * r.jump, r.jump / st, r.start + (p - (k - 1) * d / 2) / st * r.jump)

        return self._map_axes(s, x, n, tconv)

    def _pool(self, name: str, b: dict, s: RFState) -> RFState:
        x = b.get("self", b.get("input"))
        n = int(_WINDOW_RE.match(name).group(1))  # type: ignore[union-attr]
        ks = _ints(b["kernel_size"], n)
        ss = _ints(b.get("stride"), n, None) if b.get("stride") not in (None, [], ()) else ks
        ps, ds = _ints(b.get("padding"), n, 0), _ints(b.get("dilation"), n, 1)
        return self._map_axes(
            s, x, n, lambda i, r: AxisRF(r.size + (ks[i] - 1) * ds[i] * r.jump, r.jump * ss[i],  # type: ignore[arg-type]
                                         r.start + ((ks[i] - 1) / 2 * ds[i] - ps[i]) * r.jump)
        )  # fmt: skip

    def _adaptive(self, x: torch.Tensor, y: torch.Tensor, s: RFState) -> RFState:
        n = y.ndim - 2 if y.ndim >= 3 else 1
        if s.kind != "spatial":
            return s
        sizes = [(int(x.shape[x.ndim - n + i]), int(y.shape[y.ndim - n + i])) for i in range(n)]
        if all(o == 1 for _, o in sizes) or any(o == 1 and (x.ndim - n + i) in s.axes for i, (_, o) in enumerate(sizes)):
            return _global("global: covers the whole input (global pooling)")

        def ad(i: int, r: AxisRF) -> AxisRF:
            w, o = sizes[i]
            if w % o == 0:  # an ordinary pool with kernel = stride = w / o
                k = w // o
                return AxisRF(r.size + (k - 1) * r.jump, r.jump * k, r.start + (k - 1) / 2 * r.jump)
            # Bin j covers units floor(j w / o) .. ceil((j + 1) w / o) - 1, inside the linear envelope
            # [j w / o - 1, (j + 1) w / o].
            return AxisRF(r.size + (w / o + 1) * r.jump, r.jump * w / o, r.start + (w / (2 * o) - 0.5) * r.jump)

        return self._map_axes(s, x, n, ad)

    def _resize(self, name: str, x: torch.Tensor, y: torch.Tensor, s: RFState) -> RFState:
        n = y.ndim - 2
        linear = any(m in name for m in ("linear", "bilinear", "bicubic", "trilinear"))
        extra = 2 if "bicubic" in name else 1

        def rs(i: int, r: AxisRF) -> AxisRF:
            f = y.shape[y.ndim - n + i] / x.shape[x.ndim - n + i]
            if not linear:
                # nearest: output o copies unit floor(o / f), inside the envelope [(o - (f-1)) / f, o / f]
                return AxisRF(r.size + (f - 1) / f * r.jump, r.jump / f, r.start - (f - 1) / (2 * f) * r.jump)
            # (bi/tri)linear, half-pixel centres: output o reads units around c = (o + 1/2) / f - 1/2,
            # within [c - 1, c + 1] (bicubic: [c - 2, c + 2])
            return AxisRF(r.size + 2 * extra * r.jump, r.jump / f, r.start + (0.5 / f - 0.5) * r.jump)

        return self._map_axes(s, x, n, rs)

    def _pad(self, b: dict, x: torch.Tensor, s: RFState) -> RFState:
        pad = list(b.get("pad", b.get("padding")) or [])
        if s.kind != "spatial":
            return s
        axes = dict(s.axes)
        for i in range(len(pad) // 2):
            dim = x.ndim - 1 - i
            if dim in axes:
                axis, r = axes[dim]
                axes[dim] = (axis, AxisRF(r.size, r.jump, r.start - pad[2 * i] * r.jump))
        return RFState("spatial", axes)

    def _reduce(self, b: dict, x: torch.Tensor, y: torch.Tensor, s: RFState) -> RFState:
        dim = b.get("dim")
        dims = set(range(x.ndim)) if dim is None or dim == [] else {d % x.ndim for d in _ints(dim, 1)}
        if s.kind == "spatial" and dims & set(s.axes):
            return _global("global: covers the whole input (reduction over a spatial axis)")
        if y.ndim == x.ndim:
            return s
        return self._remap(s, lambda k: k - sum(1 for d in dims if d < k))

    def _view(self, x: torch.Tensor, y: torch.Tensor, s: RFState) -> RFState:
        if s.kind != "spatial" or tuple(x.shape) == tuple(y.shape):
            return s

        def suffix(shape: tuple[int, ...], d: int) -> int:
            return math.prod(shape[d + 1 :])

        xs, ys = tuple(x.shape), tuple(y.shape)
        axes = {}
        for d, v in s.axes.items():
            hit = [e for e in range(len(ys)) if ys[e] == xs[d] and suffix(ys, e) == suffix(xs, d)]
            if not hit:
                return _none("flattened: no spatial axes" if y.ndim <= 2 else "reshaped: spatial axes merged")
            if hit[-1] in axes:
                return _none("reshaped: spatial axes merged")
            axes[hit[-1]] = v
        return RFState("spatial", axes)

    def _slice(self, b: dict, x: torch.Tensor, s: RFState) -> RFState:
        d = b["dim"] % x.ndim
        if s.kind != "spatial" or d not in s.axes:
            return s
        size = x.shape[d]
        start = b.get("start") or 0
        start = start + size if start < 0 else min(start, size)
        step = b.get("step") or 1
        axes = dict(s.axes)
        axis, r = axes[d]
        axes[d] = (axis, AxisRF(r.size, r.jump * step, r.start + start * r.jump))
        return RFState("spatial", axes)

    def _cat(self, name: str, b: dict, tracked: list, y: torch.Tensor) -> RFState:
        tensors = b["tensors"]
        d = b.get("dim", 0)
        states = [self.state(t) for t in tensors]
        states = [st for st in states if st is not None]
        ref = tensors[0]
        d = d % (ref.ndim + (1 if name == "stack" else 0))
        if name == "cat":
            if any(st.kind == "spatial" and d in st.axes for st in states):  # type: ignore[union-attr]
                return _none("concatenated along a spatial axis")
            return _union(states)  # type: ignore[arg-type]
        return self._remap(_union(states), lambda k: k + 1 if k >= d else k)  # type: ignore[arg-type]

    def _elementwise(self, name: str, tracked: list, outs: list, x: torch.Tensor) -> RFState:
        y = outs[0]
        states = [s for t, s in tracked if t.ndim == y.ndim or s.kind != "spatial"]
        if not states:
            return _none(f"aten.{name}: receptive field not tracked through this op")
        main = tracked[0][1]
        if main.kind == "spatial":
            for d in main.axes:
                if d >= y.ndim or (d < x.ndim and y.shape[d] != x.shape[d] and x.shape[d] != 1):
                    return _none(f"aten.{name}: receptive field not tracked through this op")
        # Broadcast partners of size 1 along an axis (e.g. squeeze-excitation gates) carry their own state.
        return _union(states)
