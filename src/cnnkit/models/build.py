"""Build a model from the ``model`` section of a config: a registry name with arguments, or a spec.

``{"name": "resnet18", "num_classes": 10}`` calls the registered builder; ``{"spec": "path.yaml"}`` (or an
inline spec dict) builds a :class:`~cnnkit.models.spec.SpecModel`. Unknown builder arguments are rejected
with a close-match suggestion, since a misspelt ``num_clases`` must not silently fall back to 1000.

Sizes are bounded before anything is allocated (:mod:`cnnkit.models._limits`): ``num_classes``,
``in_channels`` and the input size against fixed bounds, then the model is built on the ``meta`` device and
refused when its weights exceed ``$CNNKIT_MAX_PARAMS`` (default 500 million). With ``spec_root`` (a received
run folder) a spec path may only name a file inside that folder.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._text import safe_text
from ..errors import ConfigError, did_you_mean
from . import _limits
from ._limits import check_input_shape as check_input_shape
from ._registry import MODELS, model_info
from .spec import build_from_spec, load_spec

__all__ = ["build_model", "check_input_shape", "model_config_for_json"]


def _as_dict(cfg: Any) -> dict[str, Any]:
    if hasattr(cfg, "as_dict"):  # cnnkit.config's ModelConfig: {"name": ..., **kwargs} or {"spec": ...}
        cfg = cfg.as_dict()
    elif hasattr(cfg, "model_dump"):  # another pydantic section
        cfg = cfg.model_dump(exclude_none=True)
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"Expected the model config to be a mapping with 'name' or 'spec'. Received: {cfg!r}")
    return dict(cfg)


def accepted_data_kwargs(cfg: Any, data_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The entries of ``data_kwargs`` that the model ``cfg`` names takes and does not set itself (none for a
    spec): what :func:`build_model` passes on, and what a run's ``model.json`` must record to rebuild it."""
    cfg = _as_dict(cfg)
    if not data_kwargs or cfg.get("name") is None:
        return {}
    params = inspect.signature(MODELS.get(str(cfg["name"]))).parameters
    return {k: v for k, v in data_kwargs.items() if v is not None and k not in cfg and k in params}


def build_model(
    cfg: Any,
    *,
    num_classes: int | None = None,
    in_channels: int | None = None,
    spec_root: str | Path | None = None,
    data_kwargs: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Build a model from ``{"name": str, **builder_kwargs}`` or ``{"spec": path_or_dict}``.

    Args:
        cfg: The model config (a dict or a pydantic section with ``model_dump``).
        num_classes: From the dataset; passed to a builder that accepts it when ``cfg`` does not set it.
            For a spec, checked against the spec's output size instead (as is a ``num_classes`` key next to
            ``spec``).
        in_channels: Likewise; for a spec, checked against the spec's input channels.
        data_kwargs: Further facts from the data (``vocab_size``, ``num_outputs``, ``seq_len``): each is
            passed to a builder that accepts it when ``cfg`` does not set it, and ignored otherwise.
        spec_root: The folder ``cfg`` came from when it was received (a run folder's ``model.json``): a
            spec path is then resolved relative to it and refused, without being read, unless it names a
            file inside it after resolving symlinks.

    Returns:
        The model, always with ``model.input_shape`` (the input shape without batch).

    Raises:
        ConfigError: neither or both of ``name``/``spec``; unknown builder arguments (with suggestions);
            a spec that does not match the dataset; sizes over the bounds (see the module docstring); a
            spec path outside ``spec_root``.
    """
    cfg = _as_dict(cfg)
    has_name, has_spec = cfg.get("name") is not None, cfg.get("spec") is not None
    if has_name == has_spec:
        raise ConfigError("Expected exactly one of 'name' (a registered model) or 'spec' (a model spec) in the model config")
    if has_spec:
        # num_classes / in_channels may sit next to the spec (a run's saved build config adds them); like
        # the keyword arguments, they are checked against the spec rather than passed anywhere.
        extra = [k for k in cfg if k not in ("spec", "num_classes", "in_channels") and cfg[k] is not None]
        if extra:
            raise ConfigError(
                f"A model spec takes no other model keys (the spec file holds the architecture). "
                f"Received: {', '.join(map(repr, extra))}"
            )
        num_classes = cfg.get("num_classes", num_classes)
        in_channels = cfg.get("in_channels", in_channels)
        spec = cfg["spec"]
        if spec_root is not None and not isinstance(spec, Mapping):
            spec = _confined_spec_path(spec, Path(spec_root))
        model = build_from_spec(spec)
        if in_channels is not None and model.input_shape[0] != in_channels:
            raise ConfigError(
                f"The model spec expects {model.input_shape[0]} input channels but the data has {in_channels}"
            )
        if num_classes is not None and len(model.output_shape) == 1 and model.output_shape[0] != num_classes:
            raise ConfigError(f"The model spec outputs {model.output_shape[0]} values but the data has {num_classes} classes")
        return model

    name = str(cfg.pop("name"))
    builder = MODELS.get(name)  # UnknownNameError (a CnnkitError) with suggestions
    params = inspect.signature(builder).parameters
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not var_kw:
        for key in cfg:
            if key not in params:
                raise ConfigError(
                    f"model {name!r} has no argument {key!r}{did_you_mean(key, list(params))}; "
                    f"arguments: {', '.join(params) or '(none)'}"
                )
    for key, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if value is not None and key not in cfg and (key in params or var_kw):
            cfg[key] = value
    cfg.update(accepted_data_kwargs({"name": name, **cfg}, data_kwargs))
    _limits.check_size("num_classes", cfg.get("num_classes"), _limits.MAX_NUM_CLASSES)
    _limits.check_size("in_channels", cfg.get("in_channels"), _limits.MAX_IN_CHANNELS)
    try:
        # On the meta device tensors have shapes but no storage: the weight count is known before a byte
        # is allocated. fork_rng: the probe must not move the random state the real build draws from.
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            probe = builder(**cfg)
        _limits.check_weights(_limits.count_weights(probe), f"model {name!r}")
        del probe
        model = builder(**cfg)  # type: ignore[assignment]
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"model {name!r}: {exc}") from None
    if not hasattr(model, "input_shape"):
        shape = tuple(model_info(name)["input_size"])
        if "in_channels" in cfg:
            shape = (int(cfg["in_channels"]), *shape[1:])
        model.input_shape = shape
    return model


def _confined_spec_path(spec: Any, root: Path) -> Path:
    """``spec`` (a path string from received metadata) resolved inside ``root``, or a refusal.

    Nothing is read before the check, and the message names the path (sanitised), never file content.
    """

    if not isinstance(spec, (str, Path)):
        raise ConfigError(f"Expected the model spec to be a mapping or a file name. Received: {type(spec).__name__}")
    base = root.resolve()
    target = (base / spec).resolve()  # an absolute spec replaces base; '..' and symlinks resolved here
    if not target.is_relative_to(base) or not target.is_file():
        raise ConfigError(
            f"the model spec {safe_text(repr(str(spec)), 120)} is not a file inside the run folder {safe_text(root, 120)}; "
            "refused without reading it (a run folder's model.json must inline its spec as a mapping)"
        )
    return target


def model_config_for_json(cfg: Any) -> dict[str, Any]:
    """The model config with a spec file's content inlined, so ``model.json`` rebuilds without the file."""
    cfg = _as_dict(cfg)
    spec = cfg.get("spec")
    if spec is not None and isinstance(spec, (str, Path)):
        cfg["spec"] = load_spec(spec)
    elif isinstance(spec, Mapping):
        cfg["spec"] = load_spec(spec)
    return cfg
