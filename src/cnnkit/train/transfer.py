"""Transfer learning: ``--init-from RUN_DIR`` (weights only, matched by name and shape) and ``train.freeze``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from ..errors import CnnkitError, did_you_mean

__all__ = ["load_matching_weights", "freeze", "format_init_report"]


def load_matching_weights(model: nn.Module, source: str | Path) -> dict[str, list[str]]:
    """Copy every tensor of ``source`` whose name and shape match ``model``; leave the rest as initialized.

    ``source`` is a run folder (its ``model.safetensors``) or a ``.safetensors`` file. Returns the
    ``matched``, ``missing`` (in the model, not in the file), ``unexpected`` (in the file, not in the model)
    and ``shape_mismatch`` (e.g. a classifier head for another number of classes) tensor names.
    """

    path = Path(source)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise CnnkitError(f"--init-from: weights not found: {path}")
    own = model.state_dict()
    report: dict[str, list[str]] = {"matched": [], "missing": [], "unexpected": [], "shape_mismatch": []}
    update: dict[str, torch.Tensor] = {}
    try:
        # The header names every tensor's shape: only tensors that match the model are read, so a received
        # file can never make cnnkit allocate more than the model itself holds.
        with safe_open(str(path), framework="pt") as fh:
            names = list(fh.keys())
            for name, tensor in own.items():
                if name not in names:
                    report["missing"].append(name)
                    continue
                shape = tuple(fh.get_slice(name).get_shape())
                if shape != tuple(tensor.shape):
                    report["shape_mismatch"].append(f"{name} {shape} -> {tuple(tensor.shape)}")
                else:
                    update[name] = fh.get_tensor(name).to(dtype=tensor.dtype)
                    report["matched"].append(name)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CnnkitError(f"--init-from: weights file {path} is corrupt or truncated ({exc})") from None
    weights = names
    report["unexpected"] = [n for n in weights if n not in own]
    if not report["matched"]:
        raise CnnkitError(f"--init-from {source}: no tensor matches this model by name and shape")
    with torch.no_grad():
        for name, value in update.items():
            own[name].copy_(value)
    return report


def format_init_report(report: dict[str, Any], source: str | Path) -> str:
    def few(names: list[str]) -> str:
        return ", ".join(names[:4]) + (f", ... ({len(names)} in all)" if len(names) > 4 else "")

    lines = [f"init-from {source}: {len(report['matched'])} tensors matched"]
    for key in ("shape_mismatch", "missing", "unexpected"):
        if report[key]:
            label = {"shape_mismatch": "shape mismatch (re-initialized)", "missing": "missing (kept initialized)", "unexpected": "unused"}[key]
            lines.append(f"  {label}: {few(report[key])}")
    return "\n".join(lines)


def _feature_modules(model: nn.Module) -> set[int]:
    """Modules whose forward runs inside ``model.forward_features`` (found by tracing one call with hooks)."""
    if not hasattr(model, "forward_features"):
        raise CnnkitError("train.freeze: 'features' needs a model with forward_features; give parameter-name prefixes instead")
    shape = getattr(model, "input_shape", None)
    if not shape:
        raise CnnkitError("train.freeze: 'features' needs the model's input_shape; give parameter-name prefixes instead")
    seen: set[int] = set()
    hooks = [m.register_forward_hook(lambda mod, i, o: seen.add(id(mod))) for m in model.modules()]
    was_training = model.training
    try:
        p = next(model.parameters())
        model.eval()
        with torch.no_grad():
            model.forward_features(torch.zeros(1, *shape, device=p.device, dtype=p.dtype))  # type: ignore[operator]
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return seen


def freeze(model: nn.Module, spec: str | list[str] | None) -> list[str]:
    """Freeze parameters: ``'features'`` (all used by ``forward_features``) or name prefixes. Returns their names."""
    if not spec:
        return []
    frozen: list[str] = []
    if spec == "features":
        used = _feature_modules(model)
        for module in model.modules():
            if id(module) in used:
                for p in module.parameters(recurse=False):
                    p.requires_grad_(False)
        frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    else:
        prefixes = [spec] if isinstance(spec, str) else list(spec)
        names = [n for n, _ in model.named_parameters()]
        for prefix in prefixes:
            hits = [n for n in names if n == prefix or n.startswith(prefix.rstrip(".") + ".")]
            if not hits:

                tops = sorted({n.split(".")[0] for n in names})
                raise CnnkitError(f"train.freeze: no parameter starts with {prefix!r}{did_you_mean(prefix, tops)}")
            frozen += hits
        for n, p in model.named_parameters():
            if n in frozen:
                p.requires_grad_(False)
    return frozen
