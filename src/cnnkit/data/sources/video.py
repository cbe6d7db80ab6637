"""Video clips from files: ``video-folder`` (a folder of frame images per clip) and ``video-npz``.

``video-folder`` layouts: ``root/<class>/<clip>/<frame>.png`` (the test split is then carved with a fixed
seeded stratified split of ``data.test_fraction``), or ``root/train/<class>/<clip>/...`` plus
``root/test/<class>/<clip>/...``. Frames are PNG or JPEG, decoded by the image folder's decoder, in
natural name order (``frame2`` before ``frame10``). Every clip must have the same number of frames and
every frame the same size: a clip that differs, or a clip folder without frames, is a one-line error
naming the folder. Clips are brought to the model's input ``(C, T, H, W)`` by evenly spaced frames and a
bilinear resize (:func:`cnnkit.data.clips.fit_clips`), recorded in ``model.json`` for ``predict``.

``video-npz``: one ``.npz`` file (``data.root``) with ``x_train``, ``y_train`` and optionally ``x_test``,
``y_test``; clips ``(N, C, T, H, W)`` or gray ``(N, T, H, W)``, uint8 0..255 or float 0..1; read without
pickle. Without a test split it is carved as for folders.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ...config.schema import DataConfig
from ...errors import DataError
from .._core import DATASETS, TEST_SPLIT_SEED, DatasetSpec, check_root
from ..clips import clip_bundle, fit_clips
from ..splits import split_indices
from .arrays import _load_arrays
from .folder import read_image

__all__ = ["read_clip_folder", "scan_video_folder", "clip_array"]

_FRAME_SUFFIXES = {".png", ".jpg", ".jpeg"}


def _natural_key(name: str) -> list[object]:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name)]


def _dirs(folder: Path) -> list[Path]:
    return sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: _natural_key(d.name))


def frame_files(clip_dir: Path) -> list[Path]:
    """The frame images of one clip folder, in natural name order."""
    files = [f for f in clip_dir.iterdir() if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in _FRAME_SUFFIXES]
    return sorted(files, key=lambda f: _natural_key(f.name))


def read_clip_folder(clip_dir: str | Path) -> torch.Tensor:
    """One clip folder as uint8 ``(C, T, H, W)`` (C = 1 when every frame is gray, else 3).

    Raises:
        DataError: no frames, frames of different sizes, or an unreadable frame (one line naming it).
    """
    clip_dir = Path(clip_dir)
    files = frame_files(clip_dir)
    if not files:
        raise DataError(f"clip folder {clip_dir} holds no PNG/JPEG frames; remove it or add its frames")
    frames = [read_image(f) for f in files]
    sizes = {tuple(f.shape[1:]) for f in frames}
    if len(sizes) > 1:
        raise DataError(f"clip folder {clip_dir} has frames of different sizes ({', '.join('x'.join(map(str, s)) for s in sorted(sizes))}); resize them to one size")
    c = max(f.shape[0] for f in frames)
    frames = [f.expand(c, -1, -1) if f.shape[0] != c else f for f in frames]
    return torch.stack(frames, dim=1).contiguous()


def scan_video_folder(root: Path) -> tuple[list[str], dict[str, tuple[list[Path], np.ndarray]]]:
    """Class names and ``{split: (clip folders, labels)}`` (``"test"`` only when the folder has one)."""
    if not root.is_dir():
        raise DataError(f"video folder {root} does not exist or is not a folder")
    layout = {"train": root / "train", "test": root / "test"} if (root / "train").is_dir() else {"train": root}
    names = [d.name for d in _dirs(layout["train"])]
    if not names:
        raise DataError(f"video folder {layout['train']} has no class folders (expected <class>/<clip>/<frame>.png)")
    out: dict[str, tuple[list[Path], np.ndarray]] = {}
    for split, folder in layout.items():
        if not folder.is_dir():
            continue
        clips: list[Path] = []
        labels: list[int] = []
        for d in _dirs(folder):
            if d.name not in names:
                raise DataError(f"class folder {d} is not a training class ({', '.join(names)})")
            found = _dirs(d)
            if not found:
                raise DataError(f"class folder {d} holds no clip folders (expected {d}/<clip>/<frame>.png)")
            clips += found
            labels += [names.index(d.name)] * len(found)
        out[split] = (clips, np.asarray(labels, dtype=np.int64))
    return names, out


def _read_clips(clips: list[Path]) -> torch.Tensor:
    """Every clip folder, checked to agree in frame count and frame size with the first."""
    tensors: list[torch.Tensor] = []
    for d in clips:
        x = read_clip_folder(d)
        if tensors and x.shape[1:] != tensors[0].shape[1:]:
            ref = tensors[0].shape
            what = "frames" if x.shape[1] != ref[1] else "frame size"
            got = f"{x.shape[1]} frames" if what == "frames" else "x".join(map(str, x.shape[2:]))
            want = f"{ref[1]} frames" if what == "frames" else "x".join(map(str, ref[2:]))
            raise DataError(f"clip folder {d} has {got} but {clips[0]} has {want}; every clip needs the same {what}")
        tensors.append(x)
    c = max(t.shape[0] for t in tensors)
    return torch.stack([t.expand(c, -1, -1, -1) for t in tensors])


def _carve(x: torch.Tensor, y: np.ndarray, split: str, fraction: float) -> tuple[torch.Tensor, np.ndarray]:
    keep, held = split_indices(y, fraction, TEST_SPLIT_SEED)
    idx = keep if split == "train" else held
    return x[torch.as_tensor(idx)], y[idx]


def _shape(input_shape: tuple[int, ...], cfg: DataConfig, name: str) -> tuple[int, int, int, int]:
    if len(input_shape) != 4:
        raise DataError(f"{name}: the model's input {tuple(input_shape)} is not a clip (C, T, H, W); use a video model (c3d, two_stream, cnn_lstm, single_frame)")
    c, t, h, w = input_shape
    if cfg.input_size is not None:
        h, w = cfg.input_size
    return int(c), int(t), int(h), int(w)


def _finish(cfg: DataConfig, spec: DatasetSpec, shape: tuple[int, int, int, int], names: list[str],
            parts: dict[str, tuple[torch.Tensor, np.ndarray]], device: torch.device, seed: int, rank: int,
            world_size: int, where: str) -> object:
    # The clips keep their own channel count (gray stays gray: fit.py builds the model for it).
    c = int(parts["train"][0].shape[1])
    target = (c, *shape[1:])
    fitted = {k: (fit_clips(x, target, where=where), torch.as_tensor(y).long()) for k, (x, y) in parts.items()}
    source = {"frames": int(parts["train"][0].shape[2]), "frame_size": list(parts["train"][0].shape[3:])}
    return clip_bundle(cfg, train=fitted["train"], test=fitted["test"], class_names=names, dataset=spec.name,
                       device=device, seed=seed, rank=rank, world_size=world_size, source=source)


def _build_folder(cfg: DataConfig, *, spec: DatasetSpec, input_shape: tuple[int, ...], device: torch.device,
                  seed: int, rank: int = 0, world_size: int = 1) -> object:
    root = check_root(cfg.root)
    if root is None:
        raise DataError("video-folder needs data.root: a folder of <class>/<clip>/<frame>.png")
    shape = _shape(input_shape, cfg, spec.name)
    names, splits = scan_video_folder(root)
    x_train = _read_clips(splits["train"][0])
    parts: dict[str, tuple[torch.Tensor, np.ndarray]] = {}
    if "test" in splits:
        x_test = _read_clips(splits["test"][0])
        if x_test.shape[2:] != x_train.shape[2:]:
            raise DataError(
                f"video folder {root}: test clips are {tuple(x_test.shape[2:])} (frames, height, width) but "
                f"training clips {tuple(x_train.shape[2:])}; every clip needs the same frames and frame size"
            )
        parts = {"train": (x_train, splits["train"][1]), "test": (x_test, splits["test"][1])}
    else:
        y = splits["train"][1]
        parts = {s: _carve(x_train, y, s, cfg.test_fraction) for s in ("train", "test")}
    if parts["test"][0].shape[1] != parts["train"][0].shape[1]:  # gray training clips, colour test clips
        c = max(parts["test"][0].shape[1], parts["train"][0].shape[1])
        parts = {k: (x.expand(-1, c, -1, -1, -1), y) for k, (x, y) in parts.items()}
    return _finish(cfg, spec, shape, names, parts, device, seed, rank, world_size, str(root))


def clip_array(arr: np.ndarray, where: str) -> torch.Tensor:
    """A clips array ``(N, C, T, H, W)`` or gray ``(N, T, H, W)``, uint8 0..255 or float 0..1, as a tensor.

    Raises:
        DataError: another rank, a non-numeric dtype, or values out of range.
    """
    if arr.dtype.kind not in "uif":
        raise DataError(f"{where}: expected numbers, found dtype {arr.dtype}")
    if arr.ndim == 4:
        arr = arr[:, None]
    if arr.ndim != 5 or arr.shape[1] not in (1, 3):
        raise DataError(f"{where} has shape {arr.shape}: expected clips (N, C, T, H, W) with C 1 or 3, or (N, T, H, W)")
    if arr.dtype != np.uint8:
        lo, hi = (0, 255) if arr.dtype.kind in "ui" else (0, 1)
        if not np.isfinite(arr).all() or arr.min(initial=0) < lo or arr.max(initial=0) > hi:
            raise DataError(f"{where}: values must lie in {lo}..{hi} ({'integers' if hi == 255 else 'floats'})")
        arr = arr.astype(np.uint8) if hi == 255 else arr.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr))


def _build_npz(cfg: DataConfig, *, spec: DatasetSpec, input_shape: tuple[int, ...], device: torch.device,
               seed: int, rank: int = 0, world_size: int = 1) -> object:
    root = check_root(cfg.root)
    if root is None:
        raise DataError("video-npz needs data.root: an .npz file with x_train, y_train (and x_test, y_test)")
    path = root
    if root.is_dir():
        files = sorted(root.glob("*.npz"))
        if len(files) != 1:
            raise DataError(f"video-npz: data.root {root} must be an .npz file or a folder holding exactly one")
        path = files[0]
    shape = _shape(input_shape, cfg, spec.name)
    arrays = _load_arrays(path, ".npz")
    for key in ("x_train", "y_train"):
        if key not in arrays:
            raise DataError(f"npz file {path} has no array {key!r} (found: {', '.join(arrays) or 'none'})")
    parts: dict[str, tuple[torch.Tensor, np.ndarray]] = {}
    for split in ("train", "test"):
        if f"x_{split}" not in arrays:
            continue
        x = clip_array(arrays[f"x_{split}"], f"{path}:x_{split}")
        y = np.asarray(arrays.get(f"y_{split}", np.zeros(0))).reshape(-1)
        if len(y) != len(x) or y.dtype.kind not in "ui" or (len(y) and y.min() < 0):
            raise DataError(f"{path}: y_{split} must hold one non-negative integer label per clip ({len(x)} clips, {len(y)} labels)")
        parts[split] = (x, y.astype(np.int64))
    if "test" not in parts:
        x, y = parts["train"]
        parts = {s: _carve(x, y, s, cfg.test_fraction) for s in ("train", "test")}
    tr, te = parts["train"][0], parts["test"][0]
    if tr.shape[1:] != te.shape[1:]:
        raise DataError(f"{path}: x_test clips are {tuple(te.shape[1:])} but x_train clips {tuple(tr.shape[1:])}")
    k = int(max(parts["train"][1].max(initial=0), parts["test"][1].max(initial=0))) + 1
    return _finish(cfg, spec, shape, [str(i) for i in range(k)], parts, device, seed, rank, world_size, str(path))


DATASETS.add(
    "video-folder",
    DatasetSpec(
        "video-folder",
        "video clips as folders of PNG/JPEG frames, one folder per class (root/<class>/<clip>/<frame>.png)",
        needs_root=True,
        kind="clip",
        build=_build_folder,
    ),
)
DATASETS.add(
    "video-npz",
    DatasetSpec(
        "video-npz",
        "video clips in an .npz file: x_train (N, C, T, H, W), y_train [, x_test, y_test] (no pickle)",
        needs_root=True,
        kind="clip",
        build=_build_npz,
    ),
)
