"""Run folders and the pickle-free model format.

A run folder holds ``config.yaml`` (resolved), ``env.json``, ``metrics.jsonl``, ``summary.json``,
``model.safetensors`` + ``model.json``, ``plots/`` and ``checkpoints/``. ``model.json`` carries everything
needed to rebuild the model (registry name + builder kwargs, or the inlined model spec) and its input
preprocessing, so a run folder received from someone else is loaded without running pickle.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CnnkitError

__all__ = [
    "MODEL_FORMAT",
    "LoadedModel",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_run_dir",
    "make_run_dir",
    "environment_info",
    "save_model",
    "load_model",
    "read_json",
]

MODEL_FORMAT = "cnnkit-model/1"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not every platform can open a directory
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one, never a torn one.

    Temp file in the same folder, fsync, rename over the target, fsync the folder (so the rename itself is
    durable).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def read_json(path: str | Path, *, what: str = "file") -> Any:
    p = Path(path)
    if not p.is_file():
        raise CnnkitError(f"{what} not found: {p}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CnnkitError(f"{what} {p} is not valid JSON ({exc}); the file is corrupt") from None


def check_run_dir(path: str | Path | None, *, overwrite: bool = False) -> None:
    """Raise unless ``path`` may become a run folder: absent, empty, or ``overwrite`` given.

    Called before any slow work, so that a clash is reported at once rather than after loading data.
    """
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CnnkitError(f"run folder {path} exists and is not a folder; choose another --out")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise CnnkitError(
            f"run folder {path} already exists; pass --overwrite to replace it, or --resume {path} to continue it"
        )


def make_run_dir(name: str, *, out: str | Path | None = None, overwrite: bool = False, root: str | Path = "runs") -> Path:
    """Create the run folder: ``out`` if given, else ``runs/<name>-<timestamp>``.

    An existing non-empty folder is never overwritten unless ``overwrite`` (then it is emptied first).
    """
    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path(root) / f"{name}-{stamp}"
        n = 1
        while path.exists():  # two runs in the same second
            n += 1
            path = Path(root) / f"{name}-{stamp}-{n}"
    else:
        path = Path(out)
    check_run_dir(path, overwrite=overwrite)
    if path.is_dir() and any(path.iterdir()):
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "plots").mkdir(exist_ok=True)
    return path


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_info(device: torch.device | str | None = None) -> dict[str, Any]:
    """Versions, device and git commit, for ``env.json``."""
    from . import __version__

    import numpy

    info: dict[str, Any] = {
        "cnnkit": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device) if device is not None else "cpu",
        "cuda": torch.version.cuda,
        "git_commit": _git_commit(),
        "command": sys.argv,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


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
    from safetensors.torch import save_model as _save

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # safetensors' save_model handles shared tensors (tied weights); write to a temp name, then rename.
    tmp = run_dir / ".model.safetensors.tmp"
    _save(_unwrap(model), str(tmp))
    os.replace(tmp, run_dir / "model.safetensors")
    meta = {
        "format": MODEL_FORMAT,
        "build": build,
        "preprocessing": preprocessing,
        "class_names": list(class_names) if class_names is not None else None,
        "input_shape": list(preprocessing.get("input_shape", getattr(model, "input_shape", ()) or ())),
        **(extra or {}),
    }
    atomic_write_text(run_dir / "model.json", json.dumps(meta, indent=2))


def _unwrap(model: nn.Module) -> nn.Module:
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
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_model as _load

    from .models import build_model

    root = Path(path)
    if not root.is_dir():
        raise CnnkitError(f"run folder not found: {root}")
    info = read_json(root / "model.json", what="model description")
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT or "build" not in info:
        raise CnnkitError(f"{root / 'model.json'} is not a cnnkit model description (format {MODEL_FORMAT!r})")
    weights = root / "model.safetensors"
    if not weights.is_file():
        raise CnnkitError(f"weights not found: {weights}")
    model = build_model(dict(info["build"]))
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
        preprocessing=dict(info.get("preprocessing") or {}),
        class_names=info.get("class_names"),
    )
