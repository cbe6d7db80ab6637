"""``.npz`` array files (``npz`` dataset) and ``.npy`` files (``predict`` inputs), read without pickle."""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from ...config.schema import DataConfig
from ...errors import DataError
from .._core import DATASETS, ArrayDataset, DatasetSpec, carve_test_split

__all__ = ["images_to_uint8_nchw", "load_npy"]


def images_to_uint8_nchw(x: np.ndarray, source: str) -> np.ndarray:
    """``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` arrays (uint8 0..255 or float 0..1) -> uint8 NCHW.

    A 4-D array is read as NCHW when its second axis is 1 or 3, else as NHWC when its last axis is 1 or 3.
    """
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if x.shape[1] not in (1, 3):
            if x.shape[-1] not in (1, 3):
                raise DataError(f"{source}: cannot tell the channel axis of shape {x.shape} (expected 1 or 3 channels)")
            x = x.transpose(0, 3, 1, 2)
    else:
        raise DataError(f"{source}: expected images of shape (N, H, W) or (N, H, W, C). Received: {x.shape}")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if np.issubdtype(x.dtype, np.floating):
        if x.size and (np.nanmin(x) < 0 or np.nanmax(x) > 1 or np.isnan(x).any()):
            raise DataError(f"{source}: float images must lie in [0, 1]")
        return np.ascontiguousarray(np.rint(x * 255.0).astype(np.uint8))
    if np.issubdtype(x.dtype, np.integer):
        if x.size and (x.min() < 0 or x.max() > 255):
            raise DataError(f"{source}: integer images must lie in 0..255")
        return np.ascontiguousarray(x.astype(np.uint8))
    raise DataError(f"{source}: unsupported image dtype {x.dtype}")


_NPY_MAGIC = b"\x93NUMPY"
_MAX_UNNAMED_CLASSES = 1_000_000
_ZIP_MAGIC = b"PK\x03\x04"


def _load_error(path: Path, kind: str, reason: str) -> DataError:
    fix = "numpy.save" if kind == ".npy" else "numpy.savez"
    return DataError(f"{path} is not a valid {kind} array file ({reason}); re-save it with {fix}")


def _reason(e: BaseException) -> str:
    # numpy's own messages point the user at allow_pickle= or pickle.load(), which would run whatever code
    # the file holds; never pass them on, only a short reason of our own.
    msg = str(e)
    if "bject arrays" in msg or "pickle" in msg:
        return "it holds Python objects, not numbers"
    if isinstance(e, (EOFError, zipfile.BadZipFile, zlib.error)) or "EOF" in msg or "Failed to read all" in msg:
        return "the file is truncated or corrupt"
    return "the header or data is corrupt"


def _load_arrays(path: str | os.PathLike[str], kind: str) -> dict[str, np.ndarray]:
    """The arrays in an ``.npy`` (key ``""``) or ``.npz`` file; every failure is a one-line DataError."""
    path = Path(path)
    magic = _NPY_MAGIC if kind == ".npy" else _ZIP_MAGIC
    try:
        # Our own handle, so that it is closed even when numpy fails half-way through opening an archive.
        with open(path, "rb") as f:
            head = f.read(len(magic))
            if head != magic:
                # Without this check np.load would try to read any other file as a pickle.
                reason = "the file is empty" if not head else f"it does not start with the {kind} signature"
                raise _load_error(path, kind, reason)
            f.seek(0)
            # allow_pickle=False: the file may come from anywhere, and object arrays would run pickle.
            if kind == ".npy":
                return {"": np.load(f, allow_pickle=False)}
            with np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DataError(f"{kind} file {path} does not exist; check the path") from None
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as e:
        if isinstance(e, DataError):
            raise
        raise _load_error(path, kind, _reason(e)) from None
    except OSError as e:
        raise DataError(f"cannot read {kind} file {path}: {e.strerror or e}") from None
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):  # np.load hands back raw bytes for a member that is not .npy
            raise _load_error(path, kind, f"member {key!r} is not a .npy array")
    return arrays


def load_npy(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one array from an ``.npy`` file, never unpickling anything.

    Raises:
        DataError: one line naming ``path`` when it is missing, truncated, corrupt, or holds Python
            objects (which only pickle could read).
    """
    return _load_arrays(path, ".npy")[""]


def _npz_path(folder: Path) -> Path:
    if folder.is_file():
        return folder
    files = sorted(folder.glob("*.npz"))
    if len(files) != 1:
        raise DataError(f"npz: data.root {folder} must be an .npz file or a folder holding exactly one")
    return files[0]


def _load_npz(folder: Path, split: str, cfg: DataConfig, **_: object) -> ArrayDataset:
    path = _npz_path(folder)
    arrays = _load_arrays(path, ".npz")
    for key in ("x_train", "y_train"):
        if key not in arrays:
            raise DataError(f"npz file {path} has no array {key!r} (found: {', '.join(arrays) or 'none'})")
    has_test = "x_test" in arrays and "y_test" in arrays
    xs = "x_test" if split == "test" and has_test else "x_train"
    ys = "y_test" if split == "test" and has_test else "y_train"
    x = images_to_uint8_nchw(arrays[xs], f"{path}:{xs}")
    y = np.asarray(arrays[ys]).reshape(-1)
    if len(x) != len(y):
        raise DataError(f"npz file {path}: {xs} has {len(x)} images but {ys} has {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise DataError(f"npz file {path}: {ys} must hold non-negative integer labels")
    y_all = np.concatenate([np.asarray(arrays["y_train"]).reshape(-1)] + ([arrays["y_test"].reshape(-1)] if has_test else []))
    if "class_names" in arrays:
        names = [str(s) for s in arrays["class_names"].tolist()]
        if y_all.size and y_all.max() >= len(names):
            raise DataError(f"npz file {path}: label {y_all.max()} but only {len(names)} class_names")
    else:
        top = int(y_all.max()) if y_all.size else -1
        if top >= _MAX_UNNAMED_CLASSES:  # a corrupt label would otherwise ask for billions of class names
            raise DataError(f"npz file {path}: label {top} implies over {_MAX_UNNAMED_CLASSES} classes; add class_names or fix the labels")
        names = [str(i) for i in range(top + 1)]
    ds = ArrayDataset(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)), names)
    return ds if has_test else carve_test_split(ds, split, cfg.test_fraction)


DATASETS.add(
    "npz",
    DatasetSpec(
        "npz",
        "arrays x_train, y_train[, x_test, y_test, class_names] in an .npz file (data.root: the file)",
        _load_npz,
        needs_root=True,
        has_test_split=False,
    ),
)
