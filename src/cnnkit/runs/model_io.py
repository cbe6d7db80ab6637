"""The pickle-free model format: ``model.safetensors`` (weights) + ``model.json`` (how to rebuild it).

``model.json`` carries everything needed to rebuild the model (registry name + builder kwargs, or the
inlined model spec) and its input preprocessing, so a run folder received from someone else is loaded
without running pickle, and its sizes are bounded before anything is allocated.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model as _load
from safetensors.torch import save_model as _save
from torch import nn

from .._text import safe_text
from ..errors import CnnkitError
from ..models import build_model
from ..models.build import check_input_shape
from .io import atomic_write_text, read_json, temp_path, write_error

__all__ = ["MODEL_FORMAT", "LoadedModel", "load_model", "save_model", "unwrap_model"]

MODEL_FORMAT = "cnnkit-model/1"


def save_model(
    run_dir: str | Path,
    model: nn.Module,
    *,
    build: dict[str, Any],
    preprocessing: dict[str, Any],
    class_names: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write ``model.safetensors`` + ``model.json``.

    Args:
        build: what :func:`cnnkit.models.build_model` takes to rebuild the architecture
            (``{"name": ..., **kwargs}`` or ``{"spec": <inlined spec dict>}``, including ``num_classes``).
        preprocessing: the data pipeline's record of how raw images become model input.
    """
    run_dir = Path(run_dir)
    target = run_dir / "model.safetensors"
    tmp = temp_path(target)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        # safetensors writes its files 0600; a probe file created 0666 shows what the user's umask makes of
        # it, so model.safetensors gets the same permissions as the rest of the run folder.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        mode = tmp.stat().st_mode & 0o777
        # safetensors' save_model handles shared tensors (tied weights); write to a temp name, then rename.
        _save(unwrap_model(model), str(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(target, exc) from None
        raise
    meta = {
        "format": MODEL_FORMAT,
        "build": build,
        "preprocessing": preprocessing,
        "class_names": list(class_names) if class_names is not None else None,
        "input_shape": list(preprocessing.get("input_shape", getattr(model, "input_shape", ()) or ())),
        **(extra or {}),
    }
    atomic_write_text(run_dir / "model.json", json.dumps(meta, indent=2))


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside DDP / torch.compile wrappers (their state_dict keys carry prefixes)."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


@dataclass
class LoadedModel:
    model: nn.Module
    info: dict[str, Any]
    path: Path
    preprocessing: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] | None = None


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild a model from a run folder (or a folder holding ``model.json`` + ``model.safetensors``).

    No pickle is involved: the architecture comes from the registry/spec named in ``model.json`` and the
    weights from safetensors. Missing, corrupt or mismatched files raise :class:`CnnkitError`.

    A run folder may come from someone else, so ``model.json`` is data: a spec path in it may only name a
    file inside the folder; sizes (``num_classes``, channels, input shape, the weight count, the tensors
    in the weights file) are checked before anything is allocated (see :mod:`cnnkit.models.build`), and
    strings quoted from it in errors are sanitised.
    """
    root = Path(path)
    if not root.is_dir():
        raise CnnkitError(f"run folder not found: {root}")
    desc = root / "model.json"
    # A description is a few kilobytes, an inlined spec included; a far larger file is not one.
    if desc.is_file() and desc.stat().st_size > 16 << 20:
        raise CnnkitError(f"{desc} is larger than 16 MB; it is not a cnnkit model description")
    info = read_json(desc, what="model description")
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT or not isinstance(info.get("build"), dict):
        raise CnnkitError(f"{desc} is not a cnnkit model description (format {MODEL_FORMAT!r})")
    names = info.get("class_names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise CnnkitError(f"{desc}: expected class_names to be a list of strings")
    preprocessing = info.get("preprocessing") or {}
    if not isinstance(preprocessing, dict):
        raise CnnkitError(f"{desc}: expected preprocessing to be a mapping")
    for key, shape in (("input_shape", info.get("input_shape")), ("preprocessing.input_shape", preprocessing.get("input_shape"))):
        if shape is None or shape == []:
            continue
        if not isinstance(shape, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape):
            raise CnnkitError(f"{desc}: expected {key} to be a list of positive ints. Received: {safe_text(repr(shape), 80)}")
        try:
            check_input_shape(shape, key)
        except CnnkitError as exc:
            raise CnnkitError(f"{desc}: {exc}") from None
    weights = root / "model.safetensors"
    if not weights.is_file():
        raise CnnkitError(f"weights not found: {weights}")
    try:
        model = build_model(dict(info["build"]), spec_root=root)
    except CnnkitError as exc:
        raise CnnkitError(f"{desc}: {safe_text(exc, 500)}") from None
    # The file's header names every tensor's shape: compare before loading, so a weights file cannot make
    # cnnkit allocate more than the (bounded) model it must fit.
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    try:
        with safe_open(str(weights), framework="pt") as fh:
            for key in fh.keys():  # noqa: SIM118 - a safetensors handle, not a dict
                shape = tuple(fh.get_slice(key).get_shape())
                if expected.get(key) != shape:
                    what = f"shape {shape} where the model has {expected[key]}" if key in expected else "not in the model"
                    raise CnnkitError(
                        f"weights in {weights} do not match the architecture in model.json "
                        f"(tensor {safe_text(repr(key), 80)}: {what})"
                    )
    except (SafetensorError, OSError, ValueError) as exc:
        raise CnnkitError(f"weights file {weights} is corrupt or truncated ({safe_text(exc, 200)})") from None
    try:
        # safetensors' load_model restores tied weights that save_model de-duplicated.
        missing, unexpected = _load(model, str(weights), strict=False)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CnnkitError(f"weights file {weights} is corrupt or truncated ({exc})") from None
    except RuntimeError as exc:
        raise CnnkitError(f"weights in {weights} do not fit the architecture in model.json ({str(exc).splitlines()[0]})") from None
    if missing or unexpected:
        raise CnnkitError(
            f"weights in {weights} do not match the architecture in model.json "
            f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]})"
        )
    model.to(device).eval()
    return LoadedModel(
        model=model,
        info=info,
        path=root,
        preprocessing=dict(preprocessing),
        class_names=names,
    )
