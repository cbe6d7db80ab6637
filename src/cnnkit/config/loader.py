"""Loading, overriding, validating and dumping run configs.

Errors are :class:`~cnnkit.errors.ConfigError` with one line naming the key path, e.g.
``config key train.epoch: unknown key; did you mean 'epochs'?`` or
``config key train.epochs: expected an integer, received 'ten' (str)``.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ConfigError
from ._errors import format_validation_error
from .defaults import DEFAULT_RUN
from .schema import Config, DataConfig

__all__ = ["load_config", "parse_overrides", "apply_overrides", "validate_config", "config_to_yaml", "read_yaml"]

# PyYAML follows YAML 1.1, where "1e-3" is a string; users mean a float.
_FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _scalar(text: str) -> Any:
    """Parse an override value as a YAML scalar/flow value (``3``, ``1e-3``, ``true``, ``[1, 2]``, ``null``)."""
    if _FLOAT_RE.match(text.strip()):
        return float(text)
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set value {text!r} is not valid YAML: {exc.problem}") from None


def _fix_floats(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _fix_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fix_floats(v) for v in obj]
    if isinstance(obj, str) and _FLOAT_RE.match(obj):
        return float(obj)
    return obj


def read_yaml(path: str | Path, *, what: str = "config") -> Any:
    """Read a YAML file with ``yaml.safe_load`` (never the unsafe loader), with one-line errors."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} file not found: {p}")
    try:
        return _fix_floats(yaml.safe_load(p.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{what} file {p} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} file {p} is not UTF-8 text") from None


def parse_overrides(items: list[str] | None) -> list[tuple[list[str], Any]]:
    """``["train.epochs=3", "optim.lr=1e-3"]`` -> ``[(["train", "epochs"], 3), (["optim", "lr"], 0.001)]``."""
    out = []
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set expects key.path=value. Received: {item!r}")
        out.append((key.split("."), _scalar(value)))
    return out


# Keys that choose the model: changing one starts the model section afresh (see apply_overrides).
_MODEL_CHOICE = ("name", "spec")


def apply_overrides(raw: dict[str, Any], overrides: list[tuple[list[str], Any]]) -> dict[str, Any]:
    """``raw`` with each ``(path, value)`` of :func:`parse_overrides` set, in order (``raw`` is not changed).

    An override that changes the model (``model.name`` or ``model.spec`` to another value, or the whole
    ``model`` section) starts the model section afresh, as LightningCLI does when a class changes: the
    previous model's keyword arguments (``variant: modern`` of the default LeNet-5) mean nothing to another
    builder. Only the ``model.*`` keys given by ``--set`` (before or after the change) are kept.

    Example:
        >>> apply_overrides({"model": {"name": "lenet5", "variant": "modern"}}, parse_overrides(["model.name=resnet20"]))
        {'model': {'name': 'resnet20'}}
    """
    raw = copy.deepcopy(raw)
    if _changes_model(raw, overrides):
        raw["model"] = {}
    _drop_dataset_options(raw, overrides)
    for path, value in overrides:
        node = raw
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            elif not isinstance(nxt, dict):
                raise ConfigError(f"--set {'.'.join(path)}: {'.'.join(path[: i + 1])} is a value, not a section")
            node = nxt
        node[path[-1]] = value
    return raw


def _drop_dataset_options(raw: dict[str, Any], overrides: list[tuple[list[str], Any]]) -> None:
    """``--set data.name=X`` to another dataset drops the previous dataset's own options (``num_train`` of
    the generated scenes means nothing to ``segmentation-folder``); the common ``data.*`` keys stay."""
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for path, value in overrides:
        if path == ["data", "name"] and value != data.get("name", DataConfig.model_fields["name"].default):
            for key in [k for k in data if k not in DataConfig.model_fields]:
                del data[key]
            return


def _changes_model(raw: dict[str, Any], overrides: list[tuple[list[str], Any]]) -> bool:
    """Whether ``overrides`` choose another model than ``raw`` holds (a name or spec different from it)."""
    model = raw.get("model")
    current = model if isinstance(model, dict) else {}
    for path, value in overrides:
        if path == ["model"]:
            return True
        if len(path) == 2 and path[0] == "model" and path[1] in _MODEL_CHOICE and value != current.get(path[1]):
            return True
    return False


def validate_config(raw: dict[str, Any] | None) -> Config:
    """Validate a raw mapping against the schema, with one-line :class:`ConfigError` messages."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config must be a mapping of sections (seed, model, data, ...). Received: {type(raw).__name__}")
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, Config)) from None
    for key in cfg.model.builder_kwargs():
        if not isinstance(key, str) or not key.isidentifier():
            raise ConfigError(f"config key model.{key}: not a valid keyword argument name")
    return cfg


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (or the embedded default run when ``path`` is None), apply ``--set`` overrides and validate.

    With no ``path`` the run is :data:`~cnnkit.config.defaults.DEFAULT_RUN` (LeNet-5 on the 8x8 digits); keys
    a config file leaves out take the schema's defaults.

    Example:
        >>> cfg = load_config(None, ["train.epochs=3", "optim.lr=1e-3"])
        >>> cfg.train.epochs, cfg.optim.lr
        (3, 0.001)
    """
    raw: Any = copy.deepcopy(DEFAULT_RUN) if path is None else {}
    if path is None:
        del raw["name"]  # named below after its model and dataset, which --set may change
    else:
        raw = read_yaml(path)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections (seed, model, data, ...)")
    raw = apply_overrides(raw, parse_overrides(overrides))
    cfg = validate_config(raw)
    if cfg.name is None:
        cfg.name = Path(path).stem if path is not None else _default_name(cfg)  # a file without `name:`
    return cfg


def _default_name(cfg: Config) -> str:
    """``<model>-<dataset>`` for a run without a config file (``lenet5-digits``, ``lenet5-fashion-mnist``)."""
    model = cfg.model.name or (Path(cfg.model.spec).stem if isinstance(cfg.model.spec, str) else "spec")
    return f"{model}-{cfg.data.name}"


def config_to_yaml(cfg: Config) -> str:
    """The resolved config (every default filled in) as YAML."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, default_flow_style=None)
