"""Per-layer summary of a model: output shapes, parameters, FLOPs, activation memory, receptive fields.

FLOP convention: **FLOPs = 2 x multiply-accumulates** of convolutions (plain and transposed), matrix
products (fully connected layers, attention) and batched matrix products, as counted by
:class:`torch.utils.flop_counter.FlopCounterMode`. Bias additions, activations, pooling, normalization
and other element-wise work are not counted (they are a small fraction for CNNs and conventions differ).
So a k x k convolution from C_in to C_out channels producing an H x W map costs
``2 * C_out * H * W * C_in / groups * k * k`` and a linear layer ``2 * in_features * out_features``, for one
sample.

Every number is for one sample (batch 1). Activation memory is the size in bytes of each layer's output.
Rows are leaf modules in call order; a module called twice (a shared pooling layer) has two rows, each
showing its total FLOPs over both calls (``total_flops`` counts every op once). Layers computed without
convolution or matrix-product ops (e.g. a locally connected layer's custom kernel) show 0 FLOPs.
Receptive fields come from :mod:`cnnkit.analysis.receptive_field`.

Stride fit (the article's check): for every convolution and pooling axis the output size is
``(W - K + 2P)/S + 1`` with ``K = d (k - 1) + 1``. When it is not an integer torch floors it, and the last
``r = (W - K + 2P) mod S`` positions of the padded input are never covered by a window. The strides do not
fit when that silently loses information: some of those positions are real input (``r > P``) *and* they
see network-input pixels that no kept window sees. :func:`summarize` then raises
:class:`~cnnkit.errors.ConfigError` naming the layer, the numbers and paddings that would fit (a warning
instead with ``allow_floor=True``). The other cases get a note on the row:

- only right padding is dropped (``r <= P``, e.g. a 3x3 stride-2 conv with padding 1 on an even input);
- the dropped positions see only input pixels that kept windows see too (their receptive fields, from
  :mod:`cnnkit.analysis.receptive_field`, lie inside the kept ones' or outside the input): airbench's 2x2
  pooling of a 27-wide map, whose dropped last row sees no input row that the row before does not, or a
  blur-pool on an even size, whose dropped position is its own reflection padding;
- windows smaller than the stride (``K < S``, e.g. ResNet's 1x1 stride-2 projection) skip positions
  between them anyway;
- pooling with ``ceil_mode=True`` chose its rounding explicitly.
"""

from __future__ import annotations

import inspect
import math
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .._text import safe_markup, safe_text
from ..errors import CnnkitError, ConfigError
from ..models import MODELS, build_from_spec, create_model
from .receptive_field import RFTracker, WindowOp

__all__ = ["LayerRow", "Summary", "summarize", "summary_for", "FLOP_CONVENTION", "parse_input_shape"]

FLOP_CONVENTION = (
    "FLOPs = 2 x multiply-accumulates of convolutions and matrix products (torch FlopCounterMode); "
    "bias, activation, pooling and normalization work not counted; per sample"
)

_AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("time", "height", "width")}


@dataclass
class LayerRow:
    """One leaf module call. ``receptive_field`` is one ``{size, jump, start}`` per spatial axis, or
    ``None`` with the reason in ``receptive_field_note``."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    flops: int
    activation_bytes: int
    receptive_field: list[dict[str, float | int]] | None
    receptive_field_note: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:

        d = asdict(self)
        d["output_shape"] = list(self.output_shape)
        return d


@dataclass
class Summary:
    """The result of :func:`summarize`; ``to_dict()`` for JSON, ``print(summary)`` or ``to_text()`` for the
    terminal, ``to_table()`` for a :class:`rich.table.Table` to place in a rich layout."""

    input_shape: tuple[int, ...]
    layers: list[LayerRow]
    total_params: int
    trainable_params: int
    total_flops: int
    total_activation_bytes: int
    flop_convention: str = FLOP_CONVENTION

    def row(self, name: str) -> LayerRow:
        """The (first) row of the module called ``name``."""
        for r in self.layers:
            if r.name == name:
                return r
        raise KeyError(f"No layer {name!r} in the summary; layers: {', '.join(r.name for r in self.layers)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "layers": [r.to_dict() for r in self.layers],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "total_flops": self.total_flops,
            "total_activation_bytes": self.total_activation_bytes,
            "flop_convention": self.flop_convention,
        }

    def to_table(self) -> Any:
        """A :class:`rich.table.Table` (rows, then totals; exact totals in the caption).

        Counts of 10,000 and more are shown with 3 significant digits (``236M``) so that the table fits
        an 80-column terminal; ``to_dict()`` has every exact number.
        """

        from rich import box  # rich loads only when a table is printed (keeps `import cnnkit.train` fast)
        from rich.table import Table  # rich loads only when a table is printed (keeps `import cnnkit.train` fast)

        caption = (
            f"total: {self.total_params:,} parameters, {self.total_flops:,} FLOPs, "
            f"{self.total_activation_bytes:,} activation bytes (act. B). {self.flop_convention}"
        )
        # Narrow borders, numbers that never wrap, and text that folds rather than ellipsizes: on a narrow
        # terminal long layer names and notes take a second line.
        table = Table(title=f"input {tuple(self.input_shape)}", caption=caption, box=box.SIMPLE_HEAD, pad_edge=False,
                      collapse_padding=True)
        for col, justify in (("layer", "left"), ("type", "left"), ("output", "left"), ("params", "right"),
                             ("FLOPs", "right"), ("act. B", "right"), ("RF", "right"),
                             ("jump", "right"), ("start", "right")):  # fmt: skip
            text = col in ("layer", "type", "RF", "start")  # RF may hold a note instead of numbers
            table.add_column(col, justify=justify, overflow="fold", no_wrap=not text)  # type: ignore[arg-type]
        for r in self.layers:
            rf = r.receptive_field
            if rf is None:
                size, jump, start = (r.receptive_field_note or "-"), "", ""
            else:
                size = "x".join(str(a["size"]) for a in rf)
                jump = "x".join(str(a["jump"]) for a in rf)
                start = ",".join(f"{a['start']:g}" for a in rf)
            # Module names and notes are text, not rich markup ("[...]" in a name would vanish).
            table.add_row(safe_markup(r.name, None), safe_markup(r.type, None), "x".join(map(str, r.output_shape)),
                          _count(r.params), _count(r.flops), _count(r.activation_bytes), safe_markup(size, None),
                          jump, start)  # fmt: skip
        table.add_section()
        table.add_row("total", "", "", _count(self.total_params), _count(self.total_flops),
                      _count(self.total_activation_bytes), "", "", "")  # fmt: skip
        return table

    def to_text(self, width: int | None = None) -> str:
        """The table as plain text, ``width`` columns wide (default: the terminal's, or ``$COLUMNS``)."""

        from rich.console import Console  # rich loads only when a table is printed (keeps `import cnnkit.train` fast)


        if width is None:
            # The console writes to nowhere, so rich cannot see the terminal; ask for it here (COLUMNS first).
            width = shutil.get_terminal_size(fallback=(80, 24)).columns
        console = Console(record=True, width=width, file=_Null())  # type: ignore[arg-type]
        console.print(self.to_table())
        return console.export_text()

    def __str__(self) -> str:
        """The table as text: ``print(summarize(model, shape))`` prints it."""
        return self.to_text()


def _count(n: int) -> str:
    """``9,408``; from 10,000 on 3 significant digits with k/M/G/T (``36.9k``, ``236M``, ``3.63G``)."""
    if n < 10_000:
        return f"{n:,}"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale * 0.9995:
            value = n / scale
            return f"{value:.3g}{unit}" if value < 1000 else f"{value:,.0f}{unit}"
    return f"{n:,}"


class _Null:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def parse_input_shape(text: str | Sequence[int]) -> tuple[int, ...]:
    """``"3,224,224"`` -> ``(3, 224, 224)``; raises :class:`ConfigError` for anything else."""
    if isinstance(text, str):
        try:
            shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
        except ValueError:
            raise ConfigError(f"Expected an input shape like 3,224,224. Received: {text!r}") from None
    else:
        shape = tuple(int(v) for v in text)
    if not shape or min(shape) < 1:
        raise ConfigError(f"Expected an input shape of positive ints like 3,224,224. Received: {text!r}")
    return shape


def _make_input(model: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    dtype = getattr(model, "input_dtype", None)
    if dtype is not None and not dtype.is_floating_point:
        high = int(getattr(model, "vocab_size", 2))
        return torch.randint(0, high, (1, *shape), generator=gen, dtype=dtype).to(device)
    fdtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    # Uniform [0, 1) like image data: some layers (stochastic pooling) require non-negative input.
    return torch.rand(1, *shape, generator=gen, dtype=fdtype).to(device)


def summarize(model: nn.Module, input_shape: Sequence[int], *, allow_floor: bool = False) -> Summary:
    """Run one sample of ``input_shape`` (without batch) through ``model`` and summarize every leaf module.

    Args:
        model: Any module; it is run in eval mode under ``no_grad`` and restored to its previous mode.
        input_shape: Input shape without batch, e.g. ``(3, 224, 224)``.
        allow_floor: Warn instead of raising when strides do not fit (see the module docstring).

    Returns:
        A :class:`Summary`; rows are leaf modules in call order.

    Raises:
        ConfigError: strides that do not fit, or an input shape the model rejects.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
        >>> s = summarize(net, (1, 10, 10))
        >>> s.row("2").receptive_field[0]
        {'size': 4, 'jump': 2, 'start': 1.5}
    """
    shape = parse_input_shape(input_shape)
    names = {m: n for n, m in model.named_modules()}
    root = type(model).__name__
    stack: list[nn.Module] = []
    notes: dict[int, list[str]] = {}
    pending: list[tuple[nn.Module, torch.Tensor]] = []
    problems: list[str] = []

    def label(m: nn.Module) -> str:
        return f"layer {names.get(m) or '(model)'} ({type(m).__name__})"

    def on_window(op: WindowOp) -> None:
        m = stack[-1] if stack else model
        windows_seen.add(id(m))
        k_eff = op.dilation * (op.kernel - 1) + 1
        num = op.size_in - k_eff + 2 * op.padding
        if num < 0 or num % op.stride == 0:
            return
        r = num % op.stride
        axis = op.dim - 2
        axis_name = _AXIS_NAMES.get(len(shape) - 1, ())
        ax = axis_name[axis] if 0 <= axis < len(axis_name) else f"axis {axis}"
        value = f"({op.size_in} - {k_eff} + 2*{op.padding})/{op.stride} + 1 = {num / op.stride + 1:g}"
        if op.ceil_mode:
            notes.setdefault(id(m), []).append(f"{ax}: {value}; ceil_mode rounds up (last window partial)")
            return
        if r <= op.padding:
            notes.setdefault(id(m), []).append(f"{ax}: {value}; floor drops only right padding")
            return
        lost = _unseen_input(op, num // op.stride + 1)
        if lost is None:
            notes.setdefault(id(m), []).append(
                f"{ax}: {value}; floor drops positions that see no input pixel the kept windows do not see"
            )
            return
        if k_eff < op.stride:
            # Windows smaller than the stride skip positions between them anyway (a 1x1 stride-2
            # projection reads every other pixel); the dropped last position is one more such gap.
            notes.setdefault(id(m), []).append(f"{ax}: {value}; kernel smaller than stride, positions skipped anyway")
            return
        fits = [p for p in range(0, k_eff + 1) if (op.size_in - k_eff + 2 * p) % op.stride == 0][:3]
        sizes = [op.size_in - r, op.size_in - r + op.stride]
        hint = (
            f"paddings that fit: {', '.join(map(str, fits))}"
            if fits
            else f"no padding fits (W - K is odd and the stride is even); layer input sizes that fit: {sizes[0]}, {sizes[1]}"
        )
        kernel = f"K = {k_eff}" + (f" (kernel {op.kernel}, dilation {op.dilation})" if op.dilation > 1 else "")
        unseen = f" (input pixels {lost[0]}..{lost[1]} reach no window)" if lost else ""
        problems.append(
            f"{label(m)}: strides don't fit on the {ax} axis: (W - K + 2P)/S + 1 = {value} is not an integer "
            f"({kernel}); torch floors it and ignores {r - op.padding} input position(s) at the end{unseen}; {hint}"
        )
        if not allow_floor:
            raise ConfigError(problems[-1])

    windows_seen: set[int] = set()

    def pre_hook(m: nn.Module, args: Any) -> None:
        stack.append(m)

    def post_hook(m: nn.Module, args: Any, out: Any) -> None:
        if stack and stack[-1] is m:
            stack.pop()
        if not any(True for _ in m.children()) and not isinstance(m, (nn.Sequential, nn.ModuleList)):
            t = out if isinstance(out, torch.Tensor) else next((o for o in _flat(out) if isinstance(o, torch.Tensor)), None)
            if t is not None:
                x_in = next((a for a in _flat(args) if isinstance(a, torch.Tensor)), None)
                geometry = _custom_window(m, x_in, t)
                if geometry is not None and x_in is not None and id(m) not in windows_seen:
                    # A catalog layer (locally connected, stochastic pooling, ...) that computes its window
                    # with unfold or a custom autograd function: its attributes give the geometry instead.
                    # Layers whose convolutions and poolings the tracker saw (a blur-pool pads, then convolves)
                    # keep the exact field traced from those ops.
                    n = len(geometry[0])
                    stack.append(m)  # the window is this layer's (its hook has already left the stack)
                    try:
                        for i in range(n):
                            k, st, p, d = (g[i] for g in geometry)
                            ceil = bool(getattr(m, "ceil_mode", False))
                            on_window(tracker.window_op(type(m).__name__, x_in, x_in.ndim - n + i, k, st, p, d, ceil))
                    finally:
                        stack.pop()
                    tracker.apply_window(x_in, t, *geometry)
                pending.append((m, t))

    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(pre_hook))
        handles.append(m.register_forward_hook(post_hook, always_call=True))
    was_training = model.training
    model.eval()
    x = _make_input(model, shape)
    rows: list[LayerRow] = []
    try:
        # Not under no_grad: FlopCounterMode's module tracker asserts on inputs that require grad but have
        # no grad_fn (e.g. a learned query expanded in an attention pool). Batch 1 keeps the graph small.
        with FlopCounterMode(display=False) as fc, RFTracker(on_window) as tracker:
            tracker.mark_input(x)
            try:
                model(x)
            except CnnkitError:
                raise
            except (RuntimeError, ValueError, IndexError, TypeError) as exc:
                raise ConfigError(
                    f"{type(model).__name__} does not accept input shape {shape}: {str(exc).strip().splitlines()[0]}"
                ) from None
            counts = fc.get_flop_counts()
            for m, t in pending:
                name = names.get(m, "")
                state = tracker.state(t)
                if state is None:
                    rf, note = None, "not derived from the input"
                elif state.kind == "spatial":
                    rf, note = [a.to_dict() for a in state.per_axis() or []], None
                else:
                    rf, note = None, state.reason
                flops = sum(counts.get(f"{root}.{name}" if name else root, {}).values())
                rows.append(
                    LayerRow(
                        name=name,
                        type=type(m).__name__,
                        output_shape=tuple(t.shape[1:]),
                        params=sum(p.numel() for p in m.parameters(recurse=False)),
                        flops=int(flops),
                        activation_bytes=t.numel() * t.element_size(),
                        receptive_field=rf,
                        receptive_field_note=note,
                        notes=list(notes.get(id(m), [])),
                    )
                )
            total_flops = int(fc.get_total_flops())
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    for p in problems:  # only reached with allow_floor=True
        warnings.warn(p, stacklevel=2)
    params = list({id(p): p for p in model.parameters()}.values())
    return Summary(
        input_shape=shape,
        layers=rows,
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_flops=total_flops,
        total_activation_bytes=sum(r.activation_bytes for r in rows),
    )


def _unseen_input(op: WindowOp, n_out: int) -> tuple[int, int] | tuple[()] | None:
    """Network-input pixels that only the positions dropped by the floor see: ``(first, last)``; None when
    there are none; ``()`` when unknown (the op's input has no tracked field along that axis).

    Fields are taken as intervals: the kept windows cover positions ``0 .. last_kept`` of the op's input,
    which together see input pixels up to ``hi(last_kept)`` when adjacent fields overlap or touch.
    """
    rf, extent = op.field, op.extent
    if rf is None or extent is None:
        return ()
    k_eff = op.dilation * (op.kernel - 1) + 1
    last_kept = (n_out - 1) * op.stride + k_eff - 1 - op.padding  # in unpadded positions of the op's input
    lo = max(rf.interval(last_kept + 1)[0], 0.0)
    hi = min(rf.interval(op.size_in - 1)[1], extent - 1.0)
    if rf.jump <= rf.size:
        lo = max(lo, rf.interval(last_kept)[1] + 1)
    if lo > hi + 1e-9:  # outside the input, or inside what the kept windows see
        return None
    return math.ceil(lo - 1e-9), math.floor(hi + 1e-9)


def _custom_window(
    m: nn.Module, x: torch.Tensor | None, y: torch.Tensor
) -> tuple[list[int], list[int], list[int], list[int]] | None:
    """(kernel, stride, padding, dilation) per spatial axis of a non-torch leaf layer with a window."""
    if x is None or type(m).__module__.startswith("torch.") or not hasattr(m, "kernel_size"):
        return None
    if not hasattr(m, "stride") or x.ndim < 3 or y.ndim != x.ndim:
        return None
    n = x.ndim - 2

    def per_axis(v: Any, default: int) -> list[int] | None:
        if v is None:
            v = default
        if isinstance(v, int):
            return [v] * n
        if isinstance(v, (tuple, list)) and all(isinstance(e, int) for e in v):
            return list(v) if len(v) == n else list(v) * n if len(v) == 1 else None
        return None

    k = per_axis(m.kernel_size, 1)
    s = per_axis(m.stride, 1) if m.stride is not None else k
    d = per_axis(getattr(m, "dilation", 1), 1)
    pad = getattr(m, "padding", 0)
    if pad == "same" and k is not None and d is not None:
        pad = [(ki - 1) * di // 2 for ki, di in zip(k, d)]
    p = per_axis(pad, 0)
    if k is None or s is None or d is None or p is None:
        return None
    return k, s, p, d


def _flat(out: Any) -> list[Any]:
    if isinstance(out, (list, tuple)):
        return [v for o in out for v in _flat(o)]
    if isinstance(out, dict):
        return [v for o in out.values() for v in _flat(o)]
    return [out]


def _is_spec_path(name: str) -> bool:
    return name.endswith((".yaml", ".yml", ".json")) or Path(name).is_file()


def _refuse_training_config(path: Path) -> None:
    """A training config (``cnnkit train``'s YAML) is not a model spec: say what to pass instead."""
    if path.suffix not in (".yaml", ".yml") or not path.is_file() or path.stat().st_size > 1 << 20:
        return
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        return  # build_from_spec reports a file it cannot read
    if isinstance(doc, dict) and isinstance(doc.get("model"), dict) and ({"data", "train", "task", "optim"} & doc.keys()):
        name = doc["model"].get("name")
        hint = f"`cnnkit summary {safe_text(name, 60)}`" if isinstance(name, str) else "`cnnkit summary MODEL_NAME`"
        raise ConfigError(
            f"{safe_text(str(path), 200)} is a training config, not a model spec: summarize its model with {hint} "
            "(add --input for another shape) or a trained run with `cnnkit summary RUN_DIR`"
        )


def _sized_for(name: str, input_shape: str | Sequence[int] | None) -> dict[str, Any]:
    """Builder arguments that size a clip model for ``input_shape`` (C, T, H, W): ``in_channels`` and
    ``input_size`` (C3D, two-stream and CNN + LSTM size their classifiers for the clip), when it takes them."""
    if input_shape is None:
        return {}
    shape = parse_input_shape(input_shape)
    params = inspect.signature(MODELS.get(name)).parameters
    if len(shape) != 4 or "input_size" not in params:
        return {}
    return {"input_size": shape[1:], **({"in_channels": shape[0]} if "in_channels" in params else {})}


def summary_for(
    name_or_spec: str | Path, input_shape: str | Sequence[int] | None = None, *, allow_floor: bool = False
) -> Summary:
    """Summarize a registered model (by name, default arguments) or a model spec file.

    Args:
        name_or_spec: A model name from ``cnnkit models``, the path of a YAML/JSON model spec, or a run
            folder (the trained model, at the input shape it was trained on).
        input_shape: ``(C, H, W)`` or ``"C,H,W"``; defaults to the run's or the model's ``input_shape``.
        allow_floor: See :func:`summarize`.

    Raises:
        CnnkitError: unknown model name (with suggestions), bad spec, bad input shape, strides that
            do not fit.
    """
    key = str(name_or_spec)
    default_shape: Sequence[int] | None = None  # a run's training shape, else the model's own
    if Path(key).is_dir():
        # A run folder: the trained architecture at the input shape it was trained on (model.json is
        # read as data by load_model, which checks it and its weights file; no pickle).
        from ..runs.model_io import load_model

        loaded = load_model(key)
        model: nn.Module = loaded.model
        default_shape = loaded.info.get("input_shape") or None
    elif isinstance(name_or_spec, Path) or _is_spec_path(key):
        try:
            model = build_from_spec(Path(key))
        except ConfigError:
            _refuse_training_config(Path(key))  # a recipe passed by mistake: say what to pass instead
            raise
    else:
        model = create_model(key, **_sized_for(key, input_shape))
    if input_shape is not None:
        shape = parse_input_shape(input_shape)
    else:
        shape = tuple(default_shape or model.input_shape)  # type: ignore[arg-type]
    return summarize(model, shape, allow_floor=allow_floor)


