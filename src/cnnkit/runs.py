"""Run folders and the pickle-free model format.

A run folder holds ``config.yaml`` (resolved), ``env.json``, ``metrics.jsonl``, ``summary.json``,
``model.safetensors`` + ``model.json``, ``plots/`` and ``checkpoints/``, plus the ``.cnnkit-run`` marker that
says cnnkit created it: ``--overwrite`` replaces only folders that carry it. ``model.json`` carries everything
needed to rebuild the model (registry name + builder kwargs, or the inlined model spec) and its input
preprocessing, so a run folder received from someone else is loaded without running pickle.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CnnkitError

__all__ = [
    "MODEL_FORMAT",
    "RUN_MARKER",
    "LoadedModel",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_run_dir",
    "is_run_dir",
    "make_run_dir",
    "environment_info",
    "save_model",
    "load_model",
    "read_json",
    "write_error",
]

MODEL_FORMAT = "cnnkit-model/1"
RUN_MARKER = ".cnnkit-run"
_RUN_FORMAT = "cnnkit-run/1"

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}  # EDQUOT: over quota
_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


# What to do once the disk has room (or the folder is writable) again: right wherever the write failed, since
# a start that fails removes its folder and a run that has started tells the rerun to pass --resume.
_AGAIN = ", then run the command again"
_NEW_RUN = " or choose another --out"


def write_error(path: str | Path, exc: OSError, *, then: str = _AGAIN) -> CnnkitError:
    """A one-line error for a failed write: the path, the system's reason and what to do about it.

    Example: ``cannot write runs/a/config.yaml: No space left on device; free some disk space, then run the
    command again``.
    """
    if exc.errno in _DISK_FULL:
        action = "free some disk space"
    elif exc.errno in _NOT_WRITABLE:
        action = "make it writable"
    else:
        action = "check the disk"
    return CnnkitError(f"cannot write {path}: {exc.strerror or exc}; {action}{then}")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not every platform can open a directory
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def atomic_write_bytes(path: str | Path, data: bytes, *, then: str = _AGAIN) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one, never a torn one.

    Temp file in the same folder, fsync, rename over the target, fsync the folder (so the rename itself is
    durable). A failed write (disk full, read-only folder) leaves the old file and no temp file, and raises
    :class:`CnnkitError` naming the path; ``then`` finishes its advice (see :func:`write_error`).
    """
    path = Path(path)
    tmp = _temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # os.open with mode 0o666 lets the user's umask decide the permissions, as for every other file in
        # the run folder (tempfile.mkstemp would make this one 0600).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(path, exc, then=then) from None
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str, *, then: str = _AGAIN) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), then=then)


def read_json(path: str | Path, *, what: str = "file") -> Any:
    p = Path(path)
    if not p.is_file():
        raise CnnkitError(f"{what} not found: {p}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CnnkitError(f"{what} {p} is not valid JSON ({exc}); the file is corrupt") from None


def is_run_dir(path: str | Path) -> bool:
    """Whether cnnkit created ``path`` as a run folder (it holds the ``.cnnkit-run`` marker)."""
    marker = Path(path) / RUN_MARKER
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("format") == _RUN_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _protected(path: Path) -> str | None:
    """Why ``path`` must never be deleted (the current folder, one above it, home, the root), or None."""
    here, target = Path.cwd().resolve(), path.resolve()
    if target == here:
        return "it is the current folder"
    if target in here.parents:
        return "it holds the current folder"
    if target == Path.home().resolve():
        return "it is the home folder"
    if target == Path(target.anchor):
        return "it is the root folder"
    return None


def check_run_dir(path: str | Path | None, *, overwrite: bool = False) -> None:
    """Raise unless ``path`` may become a run folder: absent, empty, or a cnnkit run folder with ``overwrite``.

    ``overwrite`` replaces only a folder that carries cnnkit's run marker, and never the current folder, one
    that holds it, the home folder or the root. Called before any slow work, so that a clash is reported at
    once rather than after loading data.
    """
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CnnkitError(f"run folder {path} exists and is not a folder; choose another --out")
    if not path.is_dir() or not any(path.iterdir()):
        return
    if not is_run_dir(path):
        raise CnnkitError(
            f"{path} already exists and is not a cnnkit run folder (no {RUN_MARKER} marker); "
            "cnnkit replaces only folders it created: choose another --out"
        )
    reason = _protected(path)
    if overwrite and reason is not None:
        raise CnnkitError(f"--overwrite refuses to delete {path}: {reason}; choose another --out")
    if not overwrite:
        replace = "pass --overwrite to replace it, or " if reason is None else "pass "
        raise CnnkitError(f"run folder {path} already exists; {replace}--resume {path} to continue it")


def _run_dir_path(name: str, out: str | Path | None, root: str | Path) -> Path:
    if out is not None:
        return Path(out)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{name}-{stamp}"
    n = 1
    while path.exists():  # two runs in the same second
        n += 1
        path = Path(root) / f"{name}-{stamp}-{n}"
    return path


def make_run_dir(name: str, *, out: str | Path | None = None, overwrite: bool = False, root: str | Path = "runs") -> Path:
    """Create the run folder: ``out`` if given, else ``runs/<name>-<timestamp>``, with its ``.cnnkit-run`` marker.

    An existing non-empty folder is replaced only with ``overwrite`` and only if cnnkit created it as a run
    folder (see :func:`check_run_dir`). A folder that cannot be written raises :class:`CnnkitError`.
    """
    path = _run_dir_path(name, out, root)
    check_run_dir(path, overwrite=overwrite)
    existed = path.is_dir()
    try:
        if existed and any(path.iterdir()):
            shutil.rmtree(path)
            existed = False
        _populate_run_dir(path)
    except BaseException:
        if not existed:  # a failed creation (full disk, read-only) leaves nothing behind
            shutil.rmtree(path, ignore_errors=True)
        raise
    return path


def _populate_run_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(path, exc, then=_NEW_RUN) from None
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    # The marker first: whatever happens next, the folder is recognisably cnnkit's.
    marker = json.dumps({"format": _RUN_FORMAT, "created": created}) + "\n"
    atomic_write_text(path / RUN_MARKER, marker, then=_NEW_RUN)
    try:
        (path / "plots").mkdir(exist_ok=True)
    except OSError as exc:
        raise write_error(path / "plots", exc, then=_NEW_RUN) from None


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
    target = run_dir / "model.safetensors"
    tmp = _temp_path(target)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        # safetensors writes its files 0600; a probe file created 0666 shows what the user's umask makes of
        # it, so model.safetensors gets the same permissions as the rest of the run folder.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        mode = tmp.stat().st_mode & 0o777
        # safetensors' save_model handles shared tensors (tied weights); write to a temp name, then rename.
        _save(_unwrap(model), str(tmp))
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

    A run folder may come from someone else, so ``model.json`` is data: a spec path in it may only name a
    file inside the folder; sizes (``num_classes``, channels, input shape, the weight count, the tensors
    in the weights file) are checked before anything is allocated (see :mod:`cnnkit.models.build`), and
    strings quoted from it in errors are sanitised.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_model as _load

    from ._text import safe_text
    from .models import build_model
    from .models.build import check_input_shape

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
