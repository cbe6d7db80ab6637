"""The ``.ts`` text format of the UCR/UEA time-series archives (sktime/aeon), read by cnnkit.

A file is ``#`` comment lines, a header of ``@key value`` lines, ``@data``, then one case per line:
dimensions separated by ``:``, values within a dimension by ``,``, ``?`` for a missing value, and the
class label last when ``@classLabel true``::

    @problemName GunPoint
    @univariate true
    @equalLength true
    @seriesLength 150
    @classLabel true 1 2
    @data
    -0.64,-0.64,...,-0.64:1

Written by hand (not with aeon's ``load_from_ts_file``) because the reader must check the header against
the contents and report one line naming the file and line, never a traceback, and because cnnkit must
read the archive without aeon installed. ``@timeStamps true`` files (``(t, v)`` tuples) are refused.

Reference: the format's definition in sktime's ``load_from_tsfile`` documentation and the archive files
themselves (Dau et al. 2019, "The UCR time series archive"; Bagnall et al. 2018, "The UEA multivariate
time series classification archive").
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..._text import safe_text
from ...errors import DataError

__all__ = ["TsFile", "read_ts"]

_BOOL_KEYS = ("timestamps", "missing", "univariate", "equallength")
_MAX_BYTES = 2 << 30  # a .ts file larger than 2 GiB is not one to read into memory as text


@dataclass
class TsFile:
    """The contents of one ``.ts`` file.

    Attributes:
        series: one float64 array ``(C, L_i)`` per case; missing values are NaN.
        labels: one class label (a string, as written) per case, or None without ``@classLabel true``.
        class_labels: the labels the header declares, in its order (None without class labels).
        header: the header's values, keys lower-cased (``{"problemname": "GunPoint", ...}``).
        path: the file read.
    """

    series: list[np.ndarray]
    labels: list[str] | None
    class_labels: list[str] | None
    header: dict[str, object] = field(default_factory=dict)
    path: Path | None = None

    @property
    def num_channels(self) -> int:
        return int(self.series[0].shape[0]) if self.series else 0

    @property
    def lengths(self) -> np.ndarray:
        return np.array([s.shape[1] for s in self.series], dtype=np.int64)

    @property
    def has_missing(self) -> bool:
        return any(np.isnan(s).any() for s in self.series)


def _bool(path: Path, lineno: int, key: str, value: str) -> bool:
    v = value.strip().lower()
    if v not in ("true", "false"):
        raise DataError(f"{path}:{lineno}: @{key} must be true or false. Received: {safe_text(value, 40)!r}")
    return v == "true"


def _parse_header(path: Path, lineno: int, line: str, header: dict[str, object]) -> None:
    key, _, value = line[1:].partition(" ")
    key = key.strip().lower()
    value = value.strip()
    if key in _BOOL_KEYS:
        header[key] = _bool(path, lineno, key, value)
    elif key in ("dimensions", "serieslength"):
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise DataError(f"{path}:{lineno}: @{key} must be a positive integer. Received: {safe_text(value, 40)!r}")
        header[key] = n
    elif key == "classlabel":
        words = value.split()
        if not words:
            raise DataError(f"{path}:{lineno}: @classLabel needs true or false")
        has = _bool(path, lineno, key, words[0])
        if has and len(words) < 2:
            raise DataError(f"{path}:{lineno}: @classLabel true must list the class labels")
        if len(set(words[1:])) != len(words[1:]):
            raise DataError(f"{path}:{lineno}: @classLabel lists a label twice")
        header[key] = has
        header["class_labels"] = words[1:] if has else None
    elif key == "targetlabel":
        header[key] = _bool(path, lineno, key, value.split()[0] if value else "")
    else:  # problemName and keys this reader has no use for are kept as text
        header[key] = value


def _parse_dimension(path: Path, lineno: int, text: str) -> np.ndarray:
    text = text.strip()
    if not text:
        raise DataError(f"{path}:{lineno}: a dimension holds no values (a series of length 0)")
    if text.startswith("("):
        raise DataError(f"{path}:{lineno}: time-stamped values '(t, v)' are not supported; write plain values")
    out = np.empty(text.count(",") + 1, dtype=np.float64)
    for i, tok in enumerate(text.split(",")):
        tok = tok.strip()
        if tok == "?" or tok.lower() == "nan":
            out[i] = math.nan
            continue
        try:
            out[i] = float(tok)
        except ValueError:
            raise DataError(f"{path}:{lineno}: value {i + 1} is not a number: {safe_text(tok, 40)!r}") from None
        if not math.isfinite(out[i]):
            raise DataError(f"{path}:{lineno}: value {i + 1} is infinite")
    return out


def read_ts(path: str | os.PathLike[str]) -> TsFile:
    """Read a ``.ts`` file, checking that the header tells the truth about the data.

    Checked: ``@data`` present and at least one case; every case has the same number of dimensions, equal
    to ``@dimensions`` when given and to 1 when ``@univariate true``; ``@equalLength true`` cases all of one
    length, equal to ``@seriesLength`` when given; no ``?`` with ``@missing false``; each label among those
    ``@classLabel true`` declares; no dimension of length 0.

    Raises:
        DataError: one line naming the file (and line) and what is wrong.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "tiny.ts"
        >>> _ = p.write_text("@univariate true\\n@classLabel true a b\\n@data\\n1,2,3:a\\n4,?,6:b\\n")
        >>> ts = read_ts(p)
        >>> ts.labels, ts.series[1].tolist()
        (['a', 'b'], [[4.0, nan, 6.0]])
    """
    path = Path(path)
    try:
        if path.stat().st_size > _MAX_BYTES:
            raise DataError(f"{path} is larger than 2 GiB; split it or convert it to .npz")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f".ts file {path} does not exist; check the path") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not a .ts file") from None
    except OSError as e:
        raise DataError(f"cannot read .ts file {path}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text (byte {e.start}); it is not a .ts file") from None
    header: dict[str, object] = {}
    series: list[np.ndarray] = []
    labels: list[str] = []
    saw_missing = False
    in_data = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(("#", "%")):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise DataError(f"{path}:{lineno}: expected a header line '@key value' or '@data' before the data")
            if line.lower() == "@data":
                in_data = True
            else:
                _parse_header(path, lineno, line, header)
            continue
        if header.get("timestamps"):
            raise DataError(f"{path}: @timeStamps true files are not supported; write plain values")
        parts = line.split(":")
        if header.get("classlabel") or header.get("targetlabel"):
            if len(parts) < 2:
                raise DataError(f"{path}:{lineno}: the header declares class labels but this case has none")
            labels.append(parts[-1].strip())
            parts = parts[:-1]
        dims = [_parse_dimension(path, lineno, p) for p in parts]
        saw_missing = saw_missing or any(np.isnan(d).any() for d in dims)
        if series and len(dims) != series[0].shape[0]:
            raise DataError(f"{path}:{lineno}: {len(dims)} dimensions, but the first case has {series[0].shape[0]}")
        n = max(len(d) for d in dims)
        # Cases of unequal length may also differ between dimensions: pad the short ones with NaN.
        arr = np.full((len(dims), n), np.nan)
        for i, d in enumerate(dims):
            arr[i, : len(d)] = d
        series.append(arr)
    if not in_data:
        raise DataError(f"{path} has no @data line; it is not a .ts file")
    if not series:
        raise DataError(f"{path} holds no cases after @data")
    _check_header(path, header, series, labels, saw_missing)
    class_labels = header.get("class_labels")
    return TsFile(
        series=series,
        labels=labels if (header.get("classlabel") or header.get("targetlabel")) else None,
        class_labels=list(class_labels) if isinstance(class_labels, list) else None,
        header=header,
        path=path,
    )


def _check_header(
    path: Path, header: dict[str, object], series: list[np.ndarray], labels: list[str], saw_missing: bool
) -> None:
    channels = series[0].shape[0]
    if header.get("univariate") is True and channels != 1:
        raise DataError(f"{path}: the header says @univariate true but the cases have {channels} dimensions")
    if "dimensions" in header and header["dimensions"] != channels:
        raise DataError(f"{path}: the header says @dimensions {header['dimensions']} but the cases have {channels}")
    lengths = {s.shape[1] for s in series}
    if header.get("equallength") is True and len(lengths) > 1:
        raise DataError(
            f"{path}: the header says @equalLength true but the cases have lengths {min(lengths)} to {max(lengths)}"
        )
    if "serieslength" in header and header.get("equallength") is not False and lengths != {header["serieslength"]}:
        got = ", ".join(str(n) for n in sorted(lengths)[:3])
        raise DataError(f"{path}: the header says @seriesLength {header['serieslength']} but the cases have length {got}")
    if header.get("missing") is False and saw_missing:
        raise DataError(f"{path}: the header says @missing false but the data holds '?' values")
    declared = header.get("class_labels")
    if isinstance(declared, list) and labels:
        allowed = set(declared)
        for i, lab in enumerate(labels):
            if lab not in allowed:
                raise DataError(
                    f"{path}: case {i + 1} has label {safe_text(lab, 40)!r}, which @classLabel does not declare "
                    f"({safe_text(' '.join(declared), 80)})"
                )
