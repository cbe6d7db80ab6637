"""``cnnkit datasets download NAME``: fetching a dataset's files from its mirrors, resuming partial files,
verifying checksums and moving each into place atomically.

This module is the generic machinery; what to fetch for each dataset (mirrors, file names, checksums) is a
:class:`Resources` on the dataset's spec, next to its reader in :mod:`cnnkit.data.sources`.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import stat
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import DataError
from ._core import DATASETS, default_download_dir

__all__ = ["RemoteFile", "Resources", "download_dataset", "fetch_file"]

_CHUNK = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: its name on the mirror and on disk, and what it must hash to.

    ``sha256`` is checked when known; otherwise ``md5`` (and ``size`` when known).
    """

    name: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Resources:
    """Where a dataset's files are fetched from: base URLs tried in order, and the files with checksums."""

    mirrors: tuple[str, ...]
    files: tuple[RemoteFile, ...]


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check(path: Path, spec: RemoteFile) -> str | None:
    """None when ``path`` matches ``spec``, else a description of the mismatch."""
    if spec.size is not None and path.stat().st_size != spec.size:
        return f"expected {spec.size} bytes, got {path.stat().st_size}"
    if spec.sha256:
        got = _digest(path, "sha256")
        return None if got == spec.sha256 else f"expected sha256 {spec.sha256}, got {got}"
    if spec.md5:
        got = _digest(path, "md5")
        return None if got == spec.md5 else f"expected md5 {spec.md5}, got {got}"
    return None


# A file whose size its resources do not record still may not grow without bound (the largest recorded
# size, CIFAR-10's archive, is 170,052,171 bytes).
_MAX_UNKNOWN_SIZE = 1 << 30
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class _TooLarge(Exception):
    """The mirror sent more bytes than the file can have; the partial file has been deleted."""


def _partial_size(part: Path) -> int:
    """Bytes already in ``part`` (0 when absent); a symlink or other non-file there is refused, never followed."""
    try:
        st = os.lstat(part)
    except FileNotFoundError:
        return 0
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        raise DataError(f"partial download {part} is {kind}; refusing to write through it. Remove it and retry")
    return st.st_size


def _open_part(part: Path, *, append: bool) -> BinaryIO:
    # O_NOFOLLOW: a symlink planted at the partial path must not redirect our writes elsewhere; O_EXCL
    # when starting afresh: the file is ours alone, never one that appeared since we looked.
    flags = os.O_WRONLY | _NOFOLLOW | getattr(os, "O_BINARY", 0)
    if append:
        flags |= os.O_APPEND
    else:
        part.unlink(missing_ok=True)  # removes a link itself, never its target
        flags |= os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(part, flags, 0o644)
    except OSError as e:
        if e.errno in (errno.EEXIST, errno.ELOOP):
            raise DataError(f"partial download {part} changed under us (a symlink?); refusing to write through it") from None
        raise
    return os.fdopen(fd, "wb")


def _get(url: str, part: Path, timeout: float, size: int | None) -> None:
    """Append the rest of ``url`` to ``part`` (HTTP Range); restart when the server ignores the range.

    Stops reading as soon as more than ``size`` bytes in all (or 1 GiB when ``size`` is unknown) would be on
    disk: deletes ``part`` and raises :class:`_TooLarge`.
    """
    have = _partial_size(part)
    if size is not None and have > size:  # longer than the file can be: start again
        part.unlink()
        have = 0
    headers = {"User-Agent": "cnnkit", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to fetch: the partial file is already whole
            return
        raise
    with resp:
        append = bool(have) and resp.status == 206
        limit = (size if size is not None else _MAX_UNKNOWN_SIZE) - (have if append else 0)
        expected = f"the expected {size} bytes" if size is not None else f"the limit of {_MAX_UNKNOWN_SIZE} bytes"
        announced = resp.headers.get("Content-Length")
        if announced is not None and announced.isdigit() and int(announced) > limit:
            part.unlink(missing_ok=True)
            raise _TooLarge(f"announced {int(announced) + (have if append else 0)} bytes, more than {expected}")
        written = 0
        with _open_part(part, append=append) as f:
            while block := resp.read(min(_CHUNK, limit - written + 1)):
                written += len(block)
                if written > limit:
                    break
                f.write(block)
        if written > limit:
            part.unlink(missing_ok=True)
            raise _TooLarge(f"sent more than {expected}; stopped reading")


def fetch_file(spec: RemoteFile, dest_dir: Path, mirrors: list[str] | tuple[str, ...], *, timeout: float = 30.0) -> Path:
    """Download one file into ``dest_dir`` (trying each mirror), verified, moved into place atomically.

    A ``.part`` file left by an interrupted download is resumed. Returns the final path; an already present,
    verified file is kept without any network access.

    Raises:
        DataError: every mirror failed (unreachable, or the bytes did not verify).
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / spec.name
    if final.is_file() and _check(final, spec) is None:
        return final
    part = dest_dir / f".{spec.name}.part"
    errors: list[str] = []
    offline = True
    for base in mirrors:
        url = base.rstrip("/") + "/" + spec.name
        for _attempt in range(2):  # a resumed file that fails the check is fetched again from scratch
            try:
                _get(url, part, timeout, spec.size)
            except _TooLarge as e:
                offline = False
                errors.append(f"{url}: {e}")
                break
            except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as e:
                if isinstance(e, urllib.error.HTTPError):
                    offline = False
                reason = getattr(e, "reason", None) or e
                errors.append(f"{url}: {reason}")
                break
            offline = False
            problem = _check(part, spec)
            if problem is None:
                os.replace(part, final)  # same folder, so the move is atomic: no half file ever at `final`
                return final
            part.unlink(missing_ok=True)
            errors.append(f"{url}: checksum mismatch ({problem})")
    if offline:
        reason = errors[0].split(": ", 1)[-1] if errors else "no mirrors"
        raise DataError(f"cannot download {spec.name}: no mirror reachable (offline? {reason})")
    raise DataError(f"download of {spec.name} failed: {'; '.join(errors[-3:])}")


def download_dataset(
    name: str, root: str | os.PathLike[str] | None = None, *, mirrors: list[str] | None = None, timeout: float = 30.0
) -> Path:
    """Fetch dataset ``name`` into ``root/<name>`` (default ``$CNNKIT_DATA/<name>`` or
    ``~/.cache/cnnkit/<name>``) from the mirrors of its :class:`Resources` (or ``mirrors``, base URLs);
    returns the folder.

    Raises:
        DataError: the dataset cannot be downloaded, or the network is unreachable; the one-line message
            says where to put the files by hand (and, for Fashion-MNIST, the apt package).
    """
    spec = DATASETS.get(name)
    if spec.resources is None:
        if spec.bundled is not None:
            raise DataError(f"{spec.name} ships with {spec.bundled}: there is nothing to download")
        raise DataError(f"{spec.name} reads your own files (data.root); there is nothing to download")
    dest = default_download_dir(spec.name, root)
    try:
        for f in spec.resources.files:
            fetch_file(f, dest, mirrors or spec.resources.mirrors, timeout=timeout)
    except DataError as e:
        names = ", ".join(f.name for f in spec.resources.files)
        hint = f" (or `apt-get install {spec.apt_package}`)" if spec.apt_package else ""
        raise DataError(f"{e}. Put {names} in {dest}{hint}") from None
    return dest
