"""Predict classes for image files and ``.npy`` arrays with a run folder's model.

Inputs are PNG/JPEG files (decoded by Pillow, restricted to those two formats, with the
decompression-bomb limit as an error: :func:`cnnkit.data.folder.read_image`), ``.npy`` arrays (read with
``allow_pickle=False``) or folders of them. Each is converted with the preprocessing recorded in
``model.json`` (:func:`cnnkit.data.apply_preprocessing`), the same code path as the evaluation loaders.

``.npy`` layouts: ``(H, W)``, ``(C, H, W)``, ``(H, W, C)`` with ``C`` in 1/3/4 when the first axis is not
a channel count, or a batch ``(N, C, H, W)`` (one prediction per item, named ``file.npy[i]``). ``uint8``
arrays are pixel values 0..255; float arrays must hold values in [0, 1].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CnnkitError, DataError

__all__ = ["IMAGE_SUFFIXES", "expand_inputs", "read_input", "load_inputs", "predict"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_SUFFIXES = IMAGE_SUFFIXES + (".npy",)


def expand_inputs(inputs: list[str | Path]) -> list[Path]:
    """Files as given, folders replaced by their PNG/JPEG/.npy files (sorted, not recursive)."""
    if not inputs:
        raise CnnkitError("no inputs given: pass image files, .npy files or folders of them")
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in _SUFFIXES)
            if not found:
                raise CnnkitError(f"folder {p} holds no PNG, JPEG or .npy files")
            files += found
        elif p.is_file():
            if p.suffix.lower() not in _SUFFIXES:
                raise CnnkitError(f"unsupported input {p}: expected a PNG, JPEG or .npy file")
            files.append(p)
        else:
            raise CnnkitError(f"input not found: {p}")
    return files


def _npy_items(path: Path) -> list[tuple[str, torch.Tensor]]:
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"unreadable array {path}: {exc} (object arrays are refused; save plain numbers)") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"unreadable array {path}: {exc}") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "uif" or arr.dtype.kind == "c":
        raise DataError(f"unreadable array {path}: expected numbers, found dtype {getattr(arr, 'dtype', type(arr))}")
    if arr.dtype != np.uint8:
        if arr.dtype.kind in "ui":
            if arr.min(initial=0) < 0 or arr.max(initial=0) > 255:
                raise DataError(f"array {path}: integer pixels must lie in 0..255")
            arr = arr.astype(np.uint8)
        else:
            arr = arr.astype(np.float32)
            if not np.isfinite(arr).all() or arr.min(initial=0) < 0 or arr.max(initial=0) > 1:
                raise DataError(f"array {path}: float pixels must be finite and lie in [0, 1]")
    if arr.ndim == 2:
        return [(str(path), torch.from_numpy(arr[None].copy()))]
    if arr.ndim == 3:
        if arr.shape[0] not in (1, 3) and arr.shape[-1] in (1, 3, 4):
            arr = np.transpose(arr[..., :3] if arr.shape[-1] == 4 else arr, (2, 0, 1))
        if arr.shape[0] not in (1, 3):
            raise DataError(f"array {path} has shape {arr.shape}: expected (H, W), (C, H, W) or (H, W, C) with C 1 or 3")
        return [(str(path), torch.from_numpy(np.ascontiguousarray(arr)))]
    if arr.ndim == 4:
        if arr.shape[1] not in (1, 3):
            raise DataError(f"array {path} has shape {arr.shape}: a batch must be (N, C, H, W) with C 1 or 3")
        return [(f"{path}[{i}]", torch.from_numpy(np.ascontiguousarray(arr[i]))) for i in range(len(arr))]
    raise DataError(f"array {path} has shape {arr.shape}: expected 2 to 4 dimensions")


def read_input(path: str | Path) -> list[tuple[str, torch.Tensor]]:
    """``[(name, raw (C, H, W) uint8 or float 0..1 tensor)]`` for one file (several for a ``.npy`` batch)."""
    from ..data.folder import read_image

    path = Path(path)
    if path.suffix.lower() == ".npy":
        return _npy_items(path)
    return [(str(path), read_image(path))]


def load_inputs(inputs: list[str | Path], preprocessing: dict[str, Any]) -> tuple[list[str], torch.Tensor]:
    """Read and convert inputs to one model-input batch ``(N, *input_shape)`` with ``preprocessing``."""
    from ..data import apply_preprocessing

    names: list[str] = []
    xs: list[torch.Tensor] = []
    want = tuple(preprocessing.get("input_shape") or ())
    for path in expand_inputs(inputs):
        for name, raw in read_input(path):
            try:
                x = apply_preprocessing(raw[None], preprocessing)
            except CnnkitError as exc:
                raise DataError(f"input {name}: {exc}") from None
            except (RuntimeError, ValueError) as exc:
                raise DataError(f"input {name} (shape {tuple(raw.shape)}) cannot be converted to the model input {want}: {exc}") from None
            if want and tuple(x.shape[1:]) != want:
                raise DataError(f"input {name} became shape {tuple(x.shape[1:])}, but the model expects {want}")
            names.append(name)
            xs.append(x)
    return names, torch.cat(xs)


@torch.no_grad()
def predict(
    run_dir: str | Path, inputs: list[str | Path], *, top_k: int = 5, batch_size: int = 64, device: str | None = None
) -> list[dict[str, Any]]:
    """Top-``k`` classes with probabilities for each input.

    Returns:
        ``[{"input": name, "top": [{"class": index, "name": class_name, "probability": p}, ...]}, ...]``,
        in the order of ``inputs`` (folders expanded in sorted order).
    """
    from ..runs import load_model
    from ._run import resolve_device

    if top_k < 1:
        raise CnnkitError(f"Expected top_k >= 1. Received: top_k={top_k}")
    if batch_size < 1:
        raise CnnkitError(f"Expected batch_size >= 1. Received: batch_size={batch_size}")
    loaded = load_model(run_dir, device=resolve_device(device))
    if not loaded.preprocessing:
        raise CnnkitError(f"{Path(run_dir) / 'model.json'} records no preprocessing; cannot convert inputs")
    names, x = load_inputs(inputs, loaded.preprocessing)
    model = loaded.model.eval()
    dev = next(iter(model.parameters()), torch.empty(0)).device
    results: list[dict[str, Any]] = []
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size].to(dev)).float()
        probs = torch.softmax(logits, dim=1).cpu()
        k = min(top_k, probs.shape[1])
        p, c = probs.topk(k, dim=1)
        for j in range(len(p)):
            cls_names = loaded.class_names or [str(n) for n in range(probs.shape[1])]
            results.append({
                "input": names[i + j],
                "top": [
                    {"class": int(ci), "name": str(cls_names[int(ci)]), "probability": float(pi)}
                    for pi, ci in zip(p[j], c[j])
                ],
            })
    return results
