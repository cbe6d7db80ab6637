"""The one atomic writer of run-folder files, and the one-line errors for failed writes.

Every file cnnkit writes into a run folder goes through :func:`atomic_write_bytes` (temp file in the same
folder, fsync, rename, fsync the folder), so a crash leaves the old file or the new one, never a torn one,
and a full disk or a read-only folder is one line naming the file and the fix.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
from pathlib import Path
from typing import Any

from ..errors import CnnkitError

__all__ = ["atomic_write_bytes", "atomic_write_text", "read_json", "temp_path", "write_error"]

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}  # EDQUOT: over quota
_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


# What to do once the disk has room (or the folder is writable) again: right wherever the write failed, since
# a start that fails removes its folder and a run that has started tells the rerun to pass --resume.
_AGAIN = ", then run the command again"
NEW_RUN = " or choose another --out"


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


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def atomic_write_bytes(path: str | Path, data: bytes, *, then: str = _AGAIN) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one, never a torn one.

    Temp file in the same folder, fsync, rename over the target, fsync the folder (so the rename itself is
    durable). A failed write (disk full, read-only folder) leaves the old file and no temp file, and raises
    :class:`CnnkitError` naming the path; ``then`` finishes its advice (see :func:`write_error`).
    """
    path = Path(path)
    tmp = temp_path(path)
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
