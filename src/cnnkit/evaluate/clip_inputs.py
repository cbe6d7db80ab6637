"""Inputs of a clip model (``predict`` / ``explain`` on a run whose ``model.json`` says ``kind: clip``).

An input is

- a ``.npy`` array: one clip ``(C, T, H, W)`` (C 1 or 3) or gray ``(T, H, W)``, or a batch
  ``(N, C, T, H, W)`` (one prediction per clip, named ``file.npy[i]``); uint8 0..255 or float 0..1;
  read without pickle;
- a folder of frame images (PNG/JPEG, natural name order: ``frame2`` before ``frame10``): one clip;
- a folder of such folders (or of ``.npy`` clips), read recursively, hidden entries skipped.

Each clip is brought to the model's input with the run's recorded preprocessing (evenly spaced frames,
bilinear resize, the training normalization: :func:`cnnkit.data.clips.apply_clip_preprocessing`). A clip
that cannot be read is reported (name, reason) and skipped by the caller.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ..data import load_npy
from ..data.clips import apply_clip_preprocessing
from ..data.sources.video import clip_array, frame_files, read_clip_folder
from ..errors import CnnkitError, DataError

__all__ = ["is_clip_run", "iter_clip_inputs", "load_clip_inputs"]

_KINDS = ".npy clips or folders of frame images"


def is_clip_run(preprocessing: dict[str, Any]) -> bool:
    """Whether a run's recorded preprocessing is a clip pipeline."""
    return preprocessing.get("kind") == "clip"


def _npy_clips(path: Path) -> list[tuple[str, torch.Tensor]]:
    arr = load_npy(path)
    if arr.ndim == 3:
        arr = arr[None]  # gray (T, H, W)
    if arr.ndim == 4:
        return [(str(path), clip_array(arr[None], str(path))[0])]
    if arr.ndim == 5:
        x = clip_array(arr, str(path))
        if len(x) == 0:
            raise DataError(f"array {path} holds no clips")
        return [(f"{path}[{i}]", x[i]) for i in range(len(x))]
    raise DataError(f"array {path} has shape {arr.shape}: expected a clip (C, T, H, W) or (T, H, W), or clips (N, C, T, H, W)")


def _walk(item: Path) -> Iterator[tuple[Path, str | None]]:
    """``(clip folder or .npy file, None)`` for each clip under ``item``, or ``(item, why none)``."""
    if item.is_file():
        if item.suffix.lower() != ".npy":
            yield item, f"unsupported input {item}: a clip is a .npy array or a folder of frame images"
        else:
            yield item, None
        return
    if not item.is_dir():
        yield item, f"input not found: {item}"
        return
    if frame_files(item):
        yield item, None
        return
    found = False
    # os.walk does not follow symbolic links to folders, so a link cycle cannot loop.
    for root, dirs, files in os.walk(item):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(root)
        if here != item and frame_files(here):
            found = True
            dirs[:] = []  # a clip folder's sub-folders are not clips of their own
            yield here, None
            continue
        for f in sorted(files):
            if not f.startswith(".") and f.lower().endswith(".npy"):
                found = True
                yield here / f, None
    if not found:
        yield item, f"folder {item} holds no {_KINDS}"


def iter_clip_inputs(inputs: list[str | Path], preprocessing: dict[str, Any]) -> Iterator[tuple[str, torch.Tensor | None, str | None]]:
    """``(name, model input (1, C, T, H, W), None)`` per clip, or ``(name, None, error)`` for one that
    cannot be read or converted."""
    for item in inputs:
        for path, error in _walk(Path(item)):
            if error is not None:
                yield str(path), None, error
                continue
            try:
                items = _npy_clips(path) if path.is_file() else [(str(path), read_clip_folder(path))]
            except CnnkitError as exc:
                yield str(path), None, str(exc)
                continue
            for name, raw in items:
                try:
                    yield name, apply_clip_preprocessing(raw, preprocessing), None
                except CnnkitError as exc:
                    yield name, None, f"input {name}: {exc}"
                except (RuntimeError, ValueError) as exc:
                    want = tuple(preprocessing.get("input_shape") or ())
                    yield name, None, f"input {name} (shape {tuple(raw.shape)}) cannot be converted to the model input {want}: {exc}"


def load_clip_inputs(inputs: list[str | Path], preprocessing: dict[str, Any]) -> tuple[list[str], torch.Tensor]:
    """All clips of ``inputs`` as one batch ``(N, C, T, H, W)``.

    Raises:
        CnnkitError: no inputs, or the first clip that cannot be read or converted.
    """
    if not inputs:
        raise CnnkitError(f"no inputs given: pass {_KINDS}")
    names: list[str] = []
    xs: list[torch.Tensor] = []
    for name, x, error in iter_clip_inputs(inputs, preprocessing):
        if error is not None:
            raise DataError(error)
        names.append(name)
        xs.append(x)  # type: ignore[arg-type]
    return names, torch.cat(xs)
