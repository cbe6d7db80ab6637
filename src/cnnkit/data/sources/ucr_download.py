"""``cnnkit datasets download ucr --problem NAME``: one UCR/UEA problem from the archive's mirror.

The archive (timeseriesclassification.com, the mirror aeon's loaders use) serves each problem as
``NAME.zip`` holding ``NAME_TRAIN.ts`` and ``NAME_TEST.ts`` among other formats. The zip is fetched with
:func:`cnnkit.data.download.fetch_file` (mirrors in order, resumed ``.part`` files, size limits, atomic
moves), checked, and the two ``.ts`` files are extracted into ``<root>/ucr/NAME/`` (where the ``ucr``
reader looks), each written to a temporary name and moved into place.

Checksums: the archive publishes none, and the zips cannot be fetched where this code was written, so no
SHA-256 is pinned here. What is checked instead, in order:

1. a SHA-256 the user gives (``--sha256 HEX``: the download must match it);
2. else the SHA-256 recorded at the problem's first download (``SHA256SUMS`` beside the files: trust on
   first use; a later download that differs is refused, the zip deleted);
3. always: the zip's own CRC-32 of each member (:meth:`zipfile.ZipFile.testzip`) and the ``.ts`` reader's
   header checks (a header that lies is refused), before anything is moved into place.

The first download of a problem without ``--sha256`` prints its SHA-256 as recorded, so it can be checked
against another copy.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

from ..._text import safe_text
from ...errors import DataError
from .._core import default_download_dir
from ..download import RemoteFile, fetch_file
from .ts_format import read_ts

__all__ = ["UCR_MIRRORS", "download_problem", "download_problems"]

UCR_MIRRORS: tuple[str, ...] = ("https://timeseriesclassification.com/aeon-toolkit/",)
_SUMS = "SHA256SUMS"
# The largest univariate problem's zip (FordA, ElectricDevices) is tens of MB; a .ts member past this is
# not a UCR/UEA file, whatever the zip claims.
_MAX_MEMBER = 2 << 30


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _recorded(folder: Path, zip_name: str) -> str | None:
    sums = folder / _SUMS
    if not sums.is_file():
        return None
    for line in sums.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == zip_name:
            return parts[0].lower()
    return None


def _record(folder: Path, zip_name: str, digest: str) -> None:
    sums = folder / _SUMS
    lines = [ln for ln in (sums.read_text(encoding="utf-8").splitlines() if sums.is_file() else []) if not ln.endswith(f"  {zip_name}")]
    tmp = folder / f".{_SUMS}.part"
    tmp.write_text("\n".join([*lines, f"{digest}  {zip_name}"]) + "\n", encoding="utf-8")
    os.replace(tmp, sums)


def _check_name(name: str) -> None:
    ok = name and all(c.isalnum() or c in "_-" for c in name)
    if not ok:
        raise DataError(f"ucr: a problem name is letters, digits, '_' and '-' (GunPoint). Received: {safe_text(name, 80)!r}")


def _extract(zip_path: Path, name: str, folder: Path) -> list[Path]:
    """Verify the zip and move ``NAME_TRAIN.ts`` / ``NAME_TEST.ts`` into ``folder``; returns them."""
    try:
        with zipfile.ZipFile(zip_path) as z:
            bad = z.testzip()
            if bad is not None:
                raise DataError(f"{zip_path}: member {safe_text(bad, 80)!r} fails its CRC check; download it again")
            # Members by their base name: archives nest them in a folder, and no path of theirs is used.
            members = {Path(i.filename).name: i for i in z.infolist() if not i.is_dir()}
            wanted = [f"{name}_TRAIN.ts", f"{name}_TEST.ts"]
            missing = [w for w in wanted if w not in members]
            if missing:
                raise DataError(f"{zip_path} has no {', '.join(missing)}: not the UCR/UEA problem {name}")
            parts = []
            for w in wanted:
                info = members[w]
                if info.file_size > _MAX_MEMBER:
                    raise DataError(f"{zip_path}: {w} claims {info.file_size} bytes, more than any UCR/UEA file")
                part = folder / f".{w}.part"
                with z.open(info) as src, open(part, "wb") as dst:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        dst.write(block)
                parts.append(part)
    except zipfile.BadZipFile:
        raise DataError(f"{zip_path} is not a zip file (is {name} a UCR/UEA problem name?)") from None
    try:
        for part in parts:
            read_ts(part)  # the header checks: a file that lies about itself is not moved into place
    except DataError:
        for part in parts:
            part.unlink(missing_ok=True)
        raise
    out = []
    for part, w in zip(parts, wanted):
        os.replace(part, folder / w)
        out.append(folder / w)
    return out


def download_problem(name: str, root: str | os.PathLike[str] | None = None, *, sha256: str | None = None,
                     mirrors: Sequence[str] | None = None, timeout: float = 30.0) -> tuple[Path, str]:
    """Fetch problem ``name`` into ``<root>/ucr/<name>/`` (default root: ``$CNNKIT_DATA`` or
    ``~/.cache/cnnkit``); returns ``(folder, how its zip was verified)``.

    Raises:
        DataError: a bad name, an unreachable mirror, a checksum that does not match (``sha256`` or the one
            recorded before), a damaged zip, or ``.ts`` files that fail the reader's header checks.
    """
    _check_name(name)
    if sha256 is not None and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower())):
        raise DataError(f"--sha256 must be 64 hexadecimal digits. Received: {safe_text(sha256, 80)!r}")
    folder = default_download_dir("ucr", root) / name
    folder.mkdir(parents=True, exist_ok=True)
    zip_name = f"{name}.zip"
    recorded = _recorded(folder, zip_name)
    expected = sha256.lower() if sha256 else recorded
    created = not (folder / zip_name).exists()
    path = fetch_file(RemoteFile(zip_name, sha256=expected), folder, tuple(mirrors or UCR_MIRRORS), timeout=timeout)
    digest = _sha256(path)  # fetch_file has checked it against `expected` when there is one
    try:
        _extract(path, name, folder)
    finally:
        if created:
            path.unlink(missing_ok=True)  # only a zip this call fetched: the .ts files are what the reader uses
    _record(folder, zip_name, digest)
    if sha256:
        how = f"sha256 {digest} as given"
    elif recorded:
        how = f"sha256 {digest} as recorded at its first download"
    else:
        how = f"sha256 {digest} recorded now (the archive publishes no checksum; later downloads must match it)"
    return folder, how


def download_problems(names: Sequence[str], root: str | os.PathLike[str] | None = None, *, sha256: str | None = None,
                      mirrors: Sequence[str] | None = None, timeout: float = 30.0) -> list[tuple[str, Path, str]]:
    """:func:`download_problem` for each name; ``sha256`` only with one name."""
    if not names:
        raise DataError("cnnkit datasets download ucr: name the problems (--problem GunPoint --problem ...)")
    if sha256 is not None and len(names) != 1:
        raise DataError("--sha256 checks one file: give it with a single --problem")
    return [(n, *download_problem(n, root, sha256=sha256, mirrors=mirrors, timeout=timeout)) for n in names]
