"""Crash-safe training checkpoints: tensors in safetensors, everything else in JSON, never pickle.

A checkpoint is a folder ``checkpoints/step-<global step>/`` (and ``checkpoints/best/``) holding

- ``state.safetensors``: model, optimizer-state, EMA, best-weights and torch RNG tensors;
- ``state.json``: epoch, step, schedule position, early-stopping and best-metric state, the metric rows
  so far, optimizer hyper-parameters, numpy/python RNG states as JSON lists;
- ``COMPLETE``: the completion marker with the SHA-256 and size of both files, written last.

Writing is atomic: the folder is assembled under a temporary name (each file fsynced, the marker last),
renamed into place, and the parent folder fsynced. A reader skips (with a message naming the reason) any
checkpoint whose marker is missing, whose hashes do not match, or whose safetensors header is unreadable,
and falls back to the previous one.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from ..errors import CnnkitError

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "Checkpoint",
    "write_checkpoint",
    "read_checkpoint",
    "list_checkpoints",
    "load_latest_checkpoint",
    "prune_checkpoints",
    "optimizer_state_to_flat",
    "optimizer_state_from_flat",
    "rng_state",
    "set_rng_state",
]

CHECKPOINT_FORMAT = "cnnkit-checkpoint/1"
_TENSORS = "state.safetensors"
_META = "state.json"
_MARKER = "COMPLETE"


class CheckpointError(CnnkitError):
    """A checkpoint is missing, torn or corrupt, or none usable was found."""


@dataclass
class Checkpoint:
    path: Path
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]


def _write_file(path: Path, data: bytes) -> str:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(folder: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Atomically write a checkpoint folder (replacing an existing one of the same name).

    A failed write (``OSError``: disk full, read-only folder) is re-raised after removing the temporary
    folder, so the checkpoints already there stay as they were and nothing half-written is left behind.
    """

    folder = Path(folder)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    # safetensors refuses tensors that share storage (tied weights, views): give each its own contiguous copy.
    flat = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    blob = save(flat)
    meta_bytes = json.dumps({"format": CHECKPOINT_FORMAT, **meta}).encode("utf-8")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        marker = {
            "format": CHECKPOINT_FORMAT,
            "files": {
                _TENSORS: {"sha256": _write_file(tmp / _TENSORS, blob), "bytes": len(blob)},
                _META: {"sha256": _write_file(tmp / _META, meta_bytes), "bytes": len(meta_bytes)},
            },
        }
        _write_file(tmp / _MARKER, json.dumps(marker).encode("utf-8"))  # last: its presence means "complete"
        _fsync_dir(tmp)
        _swap_into_place(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _swap_into_place(tmp: Path, folder: Path) -> None:
    """Rename ``tmp`` to ``folder``; an existing ``folder`` is set aside first and put back if the rename fails."""
    trash = None
    if folder.exists():
        trash = folder.parent / f".{folder.name}.old-{os.getpid()}"
        if trash.exists():
            shutil.rmtree(trash)
        os.replace(folder, trash)
    try:
        os.replace(tmp, folder)
    except BaseException:
        if trash is not None:
            os.replace(trash, folder)
        raise
    _fsync_dir(folder.parent)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def read_checkpoint(folder: str | Path, *, device: str | torch.device = "cpu") -> Checkpoint:
    """Read and verify a checkpoint; :class:`CheckpointError` says why one is unusable."""

    folder = Path(folder)
    marker_path = folder / _MARKER
    if not marker_path.is_file():
        raise CheckpointError(f"checkpoint {folder} is incomplete (no {_MARKER} marker)")
    try:
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
        files = marker["files"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise CheckpointError(f"checkpoint {folder} has a corrupt {_MARKER} marker") from None
    if marker.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {folder} has format {marker.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
    data: dict[str, bytes] = {}
    for name in (_TENSORS, _META):
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"checkpoint {folder} is missing {name}")
        blob = path.read_bytes()
        want = files.get(name, {})
        if len(blob) != want.get("bytes") or hashlib.sha256(blob).hexdigest() != want.get("sha256"):
            raise CheckpointError(
                f"checkpoint {folder}: {name} does not match its recorded hash "
                f"({len(blob)} bytes, expected {want.get('bytes')}); the file is torn or corrupt"
            )
        data[name] = blob
    try:
        tensors = load(data[_TENSORS])
    except (SafetensorError, ValueError, OSError) as exc:
        raise CheckpointError(f"checkpoint {folder}: unreadable safetensors header ({exc})") from None
    try:
        meta = json.loads(data[_META].decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(f"checkpoint {folder}: {_META} is not valid JSON") from None
    if str(device) != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return Checkpoint(path=folder, tensors=tensors, meta=meta)


def list_checkpoints(root: str | Path) -> list[Path]:
    """Checkpoint folders under ``root`` (``step-*`` and ``best``), newest (highest global step) first.

    The step is read from the folder name for ``step-*``; ``best`` is placed by its recorded step when its
    metadata is readable, and last otherwise.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    found: list[tuple[int, int, Path]] = []
    for p in root.iterdir():
        if not p.is_dir() or p.name.startswith("."):
            continue
        if p.name.startswith("step-"):
            try:
                found.append((int(p.name[5:]), 1, p))
            except ValueError:
                continue
        elif p.name == "best":
            try:
                step = int(json.loads((p / _META).read_text(encoding="utf-8"))["global_step"])
            except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
                step = -1
            found.append((step, 0, p))
    return [p for _, _, p in sorted(found, key=lambda t: (t[0], t[1]), reverse=True)]


def load_latest_checkpoint(
    root: str | Path, *, device: str | torch.device = "cpu", log: Callable[[str], None] | None = None
) -> Checkpoint:
    """The newest usable checkpoint under ``root``; torn or corrupt ones are skipped with a message."""
    candidates = list_checkpoints(root)
    problems = []
    for path in candidates:
        try:
            return read_checkpoint(path, device=device)
        except CheckpointError as exc:
            problems.append(str(exc))
            if log is not None:
                log(f"skipping {exc}; falling back to the previous checkpoint")
    detail = f" ({'; '.join(problems)})" if problems else ""
    raise CheckpointError(f"no usable checkpoint in {root}{detail}")


def prune_checkpoints(root: str | Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` ``step-*`` folders, and leftover temporary folders."""
    root = Path(root)
    steps = [p for p in list_checkpoints(root) if p.name.startswith("step-")]
    for p in steps[keep_last:]:
        shutil.rmtree(p, ignore_errors=True)
    for p in root.glob(".*.tmp-*"):
        if p.is_dir() and not p.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(p, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# Optimizer and RNG state <-> (tensors, JSON)


def optimizer_state_to_flat(optimizer: torch.optim.Optimizer, prefix: str = "optim/") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (``optim/<param index>/<key>``) and JSON."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}{idx}/{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_state_from_flat(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any], prefix: str = "optim/"
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if not name.startswith(prefix):
            continue
        idx, key = name[len(prefix) :].split("/", 1)
        state.setdefault(int(idx), {})[key] = value
    for idx, entry in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(entry)
    groups = [
        {k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in g.items()} for g in meta["param_groups"]
    ]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """torch (CPU and CUDA) RNG states as uint8 tensors; numpy and python states as JSON-able lists."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng/cuda"] = torch.cuda.get_rng_state()
    np_state = np.random.get_state()
    py_state = random.getstate()
    meta = {
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],  # type: ignore[index]
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any], *, torch_key: str = "rng/torch", cuda_key: str = "rng/cuda") -> None:
    if torch_key in tensors:
        torch.set_rng_state(tensors[torch_key].cpu())
    if cuda_key in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors[cuda_key].cpu())
    if "numpy" in meta:
        n = meta["numpy"]
        np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    if "python" in meta:
        p = meta["python"]
        random.setstate((p[0], tuple(p[1]), p[2]))
