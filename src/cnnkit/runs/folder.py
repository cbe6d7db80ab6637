"""The run folder's contract: what cnnkit may create and replace, and the environment record.

A run folder holds ``config.yaml`` (resolved), ``env.json``, ``metrics.jsonl``, ``summary.json``,
``model.safetensors`` + ``model.json``, ``plots/`` and ``checkpoints/``, plus the ``.cnnkit-run`` marker that
says cnnkit created it: ``--overwrite`` replaces only folders that carry it, and never the current folder,
one that holds it, the home folder or the root.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy
import torch

from .. import __version__
from ..errors import CnnkitError
from .io import NEW_RUN, atomic_write_text, write_error

__all__ = ["RUN_MARKER", "check_run_dir", "environment_info", "is_run_dir", "make_run_dir"]

RUN_MARKER = ".cnnkit-run"
_RUN_FORMAT = "cnnkit-run/1"


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
        raise write_error(path, exc, then=NEW_RUN) from None
    created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    # The marker first: whatever happens next, the folder is recognisably cnnkit's.
    marker = json.dumps({"format": _RUN_FORMAT, "created": created}) + "\n"
    atomic_write_text(path / RUN_MARKER, marker, then=NEW_RUN)
    try:
        (path / "plots").mkdir(exist_ok=True)
    except OSError as exc:
        raise write_error(path / "plots", exc, then=NEW_RUN) from None


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
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info
