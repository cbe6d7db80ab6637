"""Model specs: user-defined CNNs written as data (YAML or a dict) from layer-registry names.

A spec declares its input shape (without batch) and a list of layers. Each layer is a one-key mapping
``{registry_name: {kwargs}}``; constructor arguments that follow from the incoming tensor (``in_channels``,
``in_features``, ``num_features``, ``num_channels``, ``channels``, ``dim``, ``input_size``) are inferred by
running a small dummy batch (2 samples) through the layers as they are built, so a spec states only the
hyperparameters a paper's table gives::

    input: [1, 28, 28]
    layers:
      - conv2d: {out_channels: 32, kernel_size: 3, padding: 1}
      - relu: {}
      - max_pool2d: {kernel_size: 2}
      - residual:
          layers: [{conv2d: {out_channels: 32, kernel_size: 3, padding: 1}}, {relu: {}}]
      - parallel: {merge: concat, branches: [[{conv2d: {out_channels: 16, kernel_size: 1}}],
                                             [{conv2d: {out_channels: 16, kernel_size: 3, padding: 1}}]]}
      - global_avg_pool2d: {}
      - linear: {out_features: 10}

Two block keywords compose layers: ``residual`` (``layers`` plus an optional ``shortcut`` list; the
shortcut defaults to the identity) computes ``layers(x) + shortcut(x)``, and ``parallel`` (``branches``, a
list of layer lists, and ``merge``: ``concat`` along channels or ``add``) runs branches side by side.

Layer paths in error messages are 0-based indices into the YAML lists, dotted through blocks
(``layer 4.layers.0 conv2d``, ``layer 5.branches.1.0 conv2d``), which are also the module names in the
built model's ``features``/``head``.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from .._text import safe_text
from ..errors import ConfigError, UnknownNameError, did_you_mean
from ..layers import LAYERS
from . import _limits
from ._common import FeatureHeadModel

__all__ = ["SpecModel", "Residual", "Parallel", "load_spec", "build_from_spec"]

_SPEC_KEYS = ("input", "layers", "name")
_BLOCK_KEYS = {"residual": ("layers", "shortcut"), "parallel": ("branches", "merge")}
_MERGES = ("concat", "add")
# Constructor arguments that follow from the incoming tensor: name -> which dimension gives the value.
_CHANNEL_ARGS = ("in_channels", "num_features", "num_channels", "channels", "dim")
_LAST_DIM_ARGS = ("in_features", "input_size")
# Where forward_features ends: after the last of these at the top level (see SpecModel).
_SPLIT_RE = re.compile(r"((?<!un)pool|flatten)")
# A spec is a screenful of YAML; a file far larger is not one, and is not read into memory.
_MAX_SPEC_BYTES = 1 << 20


class Residual(nn.Module):
    """``layers(x) + shortcut(x)``; the shortcut is the identity when none is given (He et al. 2016, eq. 1).

    Args:
        layers: The residual branch F.
        shortcut: The projection W_s of eq. 2, or ``None`` for the identity.

    Shape:
        Input and output of ``layers`` and ``shortcut`` must have equal shapes.
    """

    def __init__(self, layers: nn.Sequential, shortcut: nn.Sequential | None = None) -> None:
        super().__init__()
        self.layers = layers
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x) + self.shortcut(x)


class Parallel(nn.Module):
    """Branches applied to the same input, merged by channel concatenation or by addition.

    Args:
        branches: One ``nn.Sequential`` per branch.
        merge: ``"concat"`` (along dim 1, as in an Inception module) or ``"add"``.
    """

    def __init__(self, branches: Sequence[nn.Module], merge: str = "concat") -> None:
        super().__init__()
        if merge not in _MERGES:
            raise ValueError(f"Expected merge in {_MERGES}. Received: merge={merge!r}")
        self.branches = nn.ModuleList(branches)
        self.merge = merge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        if self.merge == "concat":
            return torch.cat(outs, dim=1)
        total = outs[0]
        for o in outs[1:]:
            total = total + o
        return total

    def extra_repr(self) -> str:
        return f"merge={self.merge!r}"


class SpecModel(FeatureHeadModel):
    """A model built from a spec: ``features`` then ``head``.

    ``features`` runs everything up to and including the last top-level pooling or flatten layer (the
    point after which only the classifier's layers remain); ``head`` is the rest. When convolutions or
    blocks follow that layer (a fully convolutional net), ``features`` is everything and ``head`` is empty. ``forward(x)`` equals
    ``forward_head(forward_features(x))``.

    Attributes:
        input_shape: The spec's declared input shape, without batch.
        output_shape: The output shape for that input, without batch.
        spec: The validated spec (a plain dict), enough to rebuild the model.
    """

    def __init__(
        self,
        features: nn.Sequential,
        head: nn.Sequential,
        *,
        input_shape: tuple[int, ...],
        output_shape: tuple[int, ...],
        spec: dict[str, Any],
    ) -> None:
        super().__init__()
        self.features = features
        self.head = head
        self.input_shape = input_shape
        self.output_shape = output_shape
        self.spec = spec

    def extra_repr(self) -> str:
        return f"input_shape={self.input_shape}, output_shape={self.output_shape}"


def load_spec(spec: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Read (if a path) and validate the top level of a spec; returns a plain dict (a deep copy).

    Raises:
        ConfigError: missing file, bad YAML, unknown or missing keys, a malformed ``input``.
    """
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"Model spec file not found: {str(path)!r}")
        if path.stat().st_size > _MAX_SPEC_BYTES:
            raise ConfigError(f"Model spec {str(path)!r} is larger than {_MAX_SPEC_BYTES:,} bytes; it is not a model spec")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"Model spec {str(path)!r} is not UTF-8 text") from None
        except yaml.YAMLError as exc:
            # The parser quotes the offending line: file content, so sanitised and cut short.
            raise ConfigError(f"Model spec {str(path)!r} is not valid YAML: {safe_text(exc, 300)}") from None
        where = f"model spec {str(path)!r}"
    else:
        data = spec
        where = "model spec"
    if not isinstance(data, Mapping):
        raise ConfigError(f"Expected {where} to be a mapping with 'input' and 'layers'. Received: {type(data).__name__}")
    data = copy.deepcopy(dict(data))
    for key in data:
        if key not in _SPEC_KEYS:
            raise ConfigError(f"Unknown key {key!r} in {where}{did_you_mean(str(key), _SPEC_KEYS)}")
    for key in ("input", "layers"):
        if key not in data:
            raise ConfigError(f"Missing key {key!r} in {where}")
    shape = data["input"]
    if (
        not isinstance(shape, Sequence)
        or isinstance(shape, str)
        or not shape
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
    ):
        raise ConfigError(f"Expected {where} 'input' to be a list of positive ints (C, H, W without batch). Received: {shape!r}")
    data["input"] = [int(v) for v in shape]
    _limits.check_input_shape(data["input"], f"{where} 'input'")
    if not isinstance(data["layers"], list) or not data["layers"]:
        raise ConfigError(f"Expected {where} 'layers' to be a non-empty list. Received: {data['layers']!r}")
    return data


def build_from_spec(spec: str | Path | Mapping[str, Any]) -> SpecModel:
    """Build a :class:`SpecModel` from a spec path or dict, inferring input sizes by propagation.

    Raises:
        ConfigError: naming the layer path for unknown layer names (with suggestions), bad arguments, and
        shape mismatches ("layer 3 conv2d: expected 4-D input, got (B, 512)").

    Example:
        >>> model = build_from_spec({"input": [1, 8, 8], "layers": [{"conv2d": {"out_channels": 4,
        ...     "kernel_size": 3}}, {"flatten": {}}, {"linear": {"out_features": 2}}]})
        >>> model(torch.zeros(5, 1, 8, 8)).shape
        torch.Size([5, 2])
    """
    importlib.import_module("cnnkit.layers")  # registers the catalog (and torch layers) in LAYERS
    data = load_spec(spec)
    # Non-negative, image-like values: some layers (stochastic pooling) reject negative inputs.
    x = torch.rand(2, *data["input"], generator=torch.Generator().manual_seed(0))
    modules: list[nn.Module] = []
    names: list[str] = []
    budget = _Budget()
    with torch.no_grad():
        for i, item in enumerate(data["layers"]):
            module, x, name = _build_item(item, x, str(i), budget)
            modules.append(module)
            names.append(name)
    split = max((i for i, n in enumerate(names) if _SPLIT_RE.search(n)), default=len(modules) - 1)
    if any("conv" in n or n in _BLOCK_KEYS for n in names[split + 1 :]):
        split = len(modules) - 1  # convolutions after the last pool (a fully convolutional net): no head
    features = nn.Sequential(*modules[: split + 1])
    head = nn.Sequential()
    for i in range(split + 1, len(modules)):
        head.add_module(str(i), modules[i])  # keep the spec index as the module name
    model = SpecModel(
        features,
        head,
        input_shape=tuple(data["input"]),
        output_shape=tuple(x.shape[1:]),
        spec=data,
    )
    model.train()
    return model


def _fmt_shape(x: torch.Tensor) -> str:
    return "(" + ", ".join(["B", *(str(s) for s in x.shape[1:])]) + ")"


class _Budget:
    """The weights a spec's layers hold so far, checked against the limit before each real allocation."""

    def __init__(self) -> None:
        self.weights = 0

    def add(self, probe: nn.Module, label: str) -> None:
        self.weights += _limits.count_weights(probe)
        _limits.check_weights(self.weights, f"the model spec up to {label}")


def _probe_output(probe: nn.Module, x: torch.Tensor, label: str) -> None:
    """Bound the layer's output size by running the meta copy; layers without meta support
    (``.item()``, custom kernels) skip the check, since their outputs are no larger than their weights
    or their input."""
    probe.eval()
    try:
        y = probe(x.to("meta"))
    except Exception:  # noqa: BLE001 - any failure here is reported by the real forward below
        return
    if isinstance(y, torch.Tensor):
        _limits.check_activation(y, label)


def _build_list(items: Any, x: torch.Tensor, path: str, budget: _Budget) -> tuple[nn.Sequential, torch.Tensor]:
    if not isinstance(items, list) or not items:
        raise ConfigError(f"layer {path}: expected a non-empty list of layers. Received: {items!r}")
    seq = nn.Sequential()
    for j, item in enumerate(items):
        module, x, _ = _build_item(item, x, f"{path}.{j}", budget)
        seq.add_module(str(j), module)
    return seq, x


def _build_item(item: Any, x: torch.Tensor, path: str, budget: _Budget) -> tuple[nn.Module, torch.Tensor, str]:
    """Build one spec entry at ``path`` for input ``x``; returns (module, its output, entry name)."""
    if not isinstance(item, Mapping) or len(item) != 1:
        raise ConfigError(
            f"layer {path}: expected a one-key mapping {{layer_name: {{arguments}}}}. Received: {item!r}"
        )
    ((name, kwargs),) = item.items()
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, Mapping):
        raise ConfigError(f"layer {path} {name}: expected a mapping of arguments. Received: {kwargs!r}")
    kwargs = dict(kwargs)
    if name in _BLOCK_KEYS:
        return (*_build_block(str(name), kwargs, x, path, budget), str(name))
    try:
        cls = LAYERS.get(str(name))
    except UnknownNameError as exc:
        raise ConfigError(f"layer {path}: {exc}") from None
    label = f"layer {path} {name}"
    _check_ndim(cls, x, label)
    _infer_args(cls, kwargs, x)
    try:
        # Built on the meta device first (shapes, no storage): its weights and output size are bounded
        # before the real layer allocates anything. fork_rng: the probe must not move the random state
        # the real layer is initialised from.
        with torch.random.fork_rng(devices=[]):
            with torch.device("meta"):
                probe = cls(**kwargs)
            budget.add(probe, label)
            _probe_output(probe, x, label)
        del probe
        module = cls(**kwargs)
    except ConfigError:
        raise
    except TypeError as exc:
        raise ConfigError(f"{label}: {_explain_type_error(cls, kwargs, exc)}") from None
    except ValueError as exc:
        raise ConfigError(f"{label}: {exc}") from None
    module.eval()  # propagate in eval mode: dropout/batch-norm statistics must not matter for shapes
    try:
        y = module(x)
    except (RuntimeError, ValueError, IndexError) as exc:
        raise ConfigError(f"{label}: cannot apply to input of shape {_fmt_shape(x)}: {_first_line(exc)}") from None
    if not isinstance(y, torch.Tensor):
        raise ConfigError(f"{label}: returns {type(y).__name__}, not a tensor; it cannot be used in a spec")
    return module, y, str(name)


def _build_block(
    name: str, kwargs: dict[str, Any], x: torch.Tensor, path: str, budget: _Budget
) -> tuple[nn.Module, torch.Tensor]:
    allowed = _BLOCK_KEYS[name]
    for key in kwargs:
        if key not in allowed:
            raise ConfigError(f"layer {path} {name}: unknown key {key!r}{did_you_mean(str(key), allowed)}")
    if name == "residual":
        if "layers" not in kwargs:
            raise ConfigError(f"layer {path} residual: missing key 'layers'")
        body, y = _build_list(kwargs["layers"], x, f"{path}.layers", budget)
        shortcut = None
        s = x
        if kwargs.get("shortcut") is not None:
            shortcut, s = _build_list(kwargs["shortcut"], x, f"{path}.shortcut", budget)
        if s.shape != y.shape:
            what = "the shortcut gives" if shortcut is not None else "the identity shortcut gives"
            hint = "" if shortcut is not None else " (add a 'shortcut' list, e.g. a 1x1 conv2d with the same stride)"
            raise ConfigError(
                f"layer {path} residual: layers give {_fmt_shape(y)} but {what} {_fmt_shape(s)}{hint}"
            )
        return Residual(body, shortcut), y + s
    # parallel
    merge = kwargs.get("merge", "concat")
    if merge not in _MERGES:
        raise ConfigError(f"layer {path} parallel: expected merge in {_MERGES}. Received: merge={merge!r}")
    branches = kwargs.get("branches")
    if not isinstance(branches, list) or not branches:
        raise ConfigError(f"layer {path} parallel: expected 'branches', a non-empty list of layer lists")
    built: list[nn.Module] = []
    outs: list[torch.Tensor] = []
    for b, branch in enumerate(branches):
        seq, y = _build_list(branch, x, f"{path}.branches.{b}", budget)
        built.append(seq)
        outs.append(y)
    shapes = [_fmt_shape(o) for o in outs]
    if merge == "add" and len({o.shape for o in outs}) != 1:
        raise ConfigError(f"layer {path} parallel: merge 'add' needs equal branch shapes. Received: {', '.join(shapes)}")
    if merge == "concat" and (
        len({o.ndim for o in outs}) != 1 or len({(o.shape[0], *o.shape[2:]) for o in outs}) != 1
    ):
        raise ConfigError(
            f"layer {path} parallel: merge 'concat' needs branch shapes equal except channels. Received: {', '.join(shapes)}"
        )
    block = Parallel(built, merge)
    return block, block(x)


def _check_ndim(cls: type, x: torch.Tensor, label: str) -> None:
    """Layers named ...1d/2d/3d take a batched (N+2)-D input; say so before torch's terser message."""
    m = re.search(r"([123])d$", cls.__name__.lower())
    if m and not issubclass(cls, nn.Flatten):
        want = int(m.group(1)) + 2
        allowed = {want, 2} if issubclass(cls, nn.BatchNorm1d) else {want}  # BatchNorm1d takes (B, C) too
        if x.ndim not in allowed:
            raise ConfigError(f"{label}: expected {want}-D input, got {_fmt_shape(x)}")


def _infer_args(cls: type, kwargs: dict[str, Any], x: torch.Tensor) -> None:
    """Fill required size arguments from ``x`` (only those without a default and not given).

    ``in_channels``/``num_features``/``num_channels``/``channels``: dim 1. ``in_features``: the last dim.
    ``input_size``: the spatial size for layers that also take ``in_channels`` (locally connected layers
    hold weights per position), else the last dim (recurrent layers). ``dim``: the vector size, i.e. the
    last dim of ``(B, N, dim)`` / ``(B, dim)`` inputs and dim 1 of ``(B, C, H, W)`` ones; never for
    ``unflatten``, whose ``dim`` is an axis index.
    """
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # builtins without a signature: nothing to infer
        return
    for arg, p in params.items():
        if arg in kwargs or p.default is not inspect.Parameter.empty:
            continue
        if arg in _CHANNEL_ARGS and x.ndim < 2:
            raise ConfigError(f"cannot infer {arg!r} from input of shape {tuple(x.shape)}")
        if arg == "dim":
            if issubclass(cls, nn.Unflatten):
                continue
            kwargs[arg] = int(x.shape[-1] if x.ndim <= 3 else x.shape[1])
        elif arg in _CHANNEL_ARGS:
            kwargs[arg] = int(x.shape[1])
        elif arg == "input_size" and "in_channels" in params:
            spatial = tuple(int(v) for v in x.shape[2:])
            kwargs[arg] = spatial[0] if len(spatial) == 1 else spatial
        elif arg in _LAST_DIM_ARGS:
            kwargs[arg] = int(x.shape[-1])


def _explain_type_error(cls: type, kwargs: Mapping[str, Any], exc: TypeError) -> str:
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return _first_line(exc)
    takes_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not takes_var_kw:
        for key in kwargs:
            if key not in params:
                names = [n for n in params if n != "self"]
                return f"unknown argument {key!r}{did_you_mean(key, names)}; arguments: {', '.join(names)}"
    missing = [
        n
        for n, p in params.items()
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and n not in kwargs
    ]
    if missing:
        return f"missing argument(s) {', '.join(repr(m) for m in missing)}"
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
